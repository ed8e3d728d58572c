"""Standard output whose reader went away (``controller-audit check | head``).

The audit still runs to the end and the command exits with its own code (2 when critical
findings exist, even if the reader stopped after the first line): a cron job with ``set -o
pipefail`` reads the real verdict, never a broken pipe's.  Once the pipe breaks, what is left to
write goes to ``/dev/null``.
"""

from __future__ import annotations

import os
import sys
from typing import Any


class ReaderGone:
    """A stand-in for a stream (text, or its binary ``buffer``): writes go through until the reader
    goes away, then the descriptor is pointed at ``/dev/null`` and the rest is dropped."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, data: Any) -> int:
        try:
            return int(self._stream.write(data))
        except BrokenPipeError:
            self._divert()
            return len(data)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._divert()
            self._stream.flush()  # what was buffered now goes to /dev/null

    @property
    def buffer(self) -> ReaderGone:
        return ReaderGone(self._stream.buffer)

    def _divert(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        finally:
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def drop_stdout() -> None:
    """Point standard output at ``/dev/null`` after a write to it failed (a full disk, ``>/dev/full``):
    what is still buffered goes there at exit instead of failing again."""
    try:
        number = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real descriptor (a test runner's capture)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, number)
    finally:
        os.close(devnull)


def open_closed_standard_streams() -> None:
    """Open ``/dev/null`` on a standard descriptor the caller closed (``check >&-``, a cron line's
    ``2>&-``): Python leaves ``sys.stdout`` / ``sys.stderr`` ``None`` then (the next write was an
    internal error), and the next file the tool opened would take the descriptor's number.  What
    would have gone there is dropped, as for a reader that went away, and the command keeps its code."""
    for number, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(number)
        except OSError:
            fd = os.open(os.devnull, os.O_RDONLY if number == 0 else os.O_WRONLY)
            if fd != number:
                os.dup2(fd, number)
                os.close(fd)
        if getattr(sys, name) is None:
            setattr(sys, name, open(number, "r" if number == 0 else "w", closefd=False))


def guard_stdout() -> None:
    """Put :class:`ReaderGone` in front of ``sys.stdout`` when it is a real descriptor (not a test
    runner's capture)."""
    try:
        sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return
    if not isinstance(sys.stdout, ReaderGone):
        sys.stdout = ReaderGone(sys.stdout)
