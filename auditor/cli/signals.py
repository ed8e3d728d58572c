"""SIGTERM and SIGHUP stop a run the way Ctrl-C does.

A supervisor's SIGTERM (``timeout``, ``kubectl delete``, systemd) or the SIGHUP of a terminal that
went away (an ssh session dropped at 3 a.m.) used to end the process at once: ``apply`` left its
reserved undo file behind, empty, though nothing was committed, and said nothing.  Raised as
:class:`KeyboardInterrupt` in the main thread, they take Ctrl-C's path: rolled back before
``COMMIT`` (exit 130, one line naming the signal), the outcome found out during it, the undo file
kept only when the repair committed or its outcome is unknown.  A signal the caller ignores
(``nohup`` ignores SIGHUP) stays ignored.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from auditor.core.errors import forget_interrupts, note_interrupt

#: The signals handled like Ctrl-C (SIGINT is Python's own KeyboardInterrupt).
SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    note_interrupt(signal.Signals(signum).name)
    raise KeyboardInterrupt


@contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP raise :class:`KeyboardInterrupt` (where their
    action is the default one); the previous handlers are restored afterwards."""
    forget_interrupts()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in SIGNALS:
            if signal.getsignal(sig) is signal.SIG_DFL:
                previous[sig] = signal.signal(sig, _interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
