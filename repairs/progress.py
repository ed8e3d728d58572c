"""Which step a long ``apply`` or ``undo`` is in, on one redrawn stderr line (terminals only).

``controller-audit: apply: locking the rows (12s)``: the step (loading, locking, checking,
changing, verifying, writing the undo file, committing) and the seconds it has taken so far,
redrawn every second by a small thread, cleared when the run ends.  Silent when stderr is not
a terminal (cron, pipes, tests), so it never mixes with the one-line results.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class StepLine:
    """Call it with each step's name; :meth:`close` clears the line."""

    def __init__(self, command: str, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.command = command
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._step = ""
        self._since = time.monotonic()
        self._width = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __call__(self, step: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._step, self._since = step, time.monotonic()
            self._draw()
        if self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                if self._step:
                    self._draw()

    def _draw(self) -> None:
        text = f"controller-audit: {self.command}: {self._step} ({time.monotonic() - self._since:.0f}s)"
        self.stream.write("\r" + text + " " * max(0, self._width - len(text)))
        self.stream.flush()
        self._width = len(text)

    def message(self, text: str) -> None:
        """A line that stays (e.g. COMMIT waits for a synchronous standby): printed whether or not
        stderr is a terminal."""
        with self._lock:
            self._clear()
            self.stream.write(f"controller-audit: {text}\n")
            self.stream.flush()
            if self._step and self.enabled:
                self._draw()

    def _clear(self) -> None:
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        with self._lock:
            self._step = ""
            self._clear()
