"""A one-line progress display on stderr for long audits; silent when stderr is not a terminal."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

from auditor.audit.streamed import StreamedFinding
from auditor.core.findings import Finding
from auditor.core.text import escape

#: A finding as a report streams it (read on the client, or rendered by the server).
F = TypeVar("F", Finding, StreamedFinding)

#: Seconds between redraws (redrawing for every one of 100k findings would cost more than the audit).
REDRAW_EVERY = 0.1


class Progress:
    """``\\r``-redrawn line: the checks running and the findings counted so far, per check."""

    def __init__(self, stream: TextIO, checks: list[str], enabled: bool | None = None,
                 until_first: bool = False) -> None:
        """``until_first``: clear the line at the first finding and stay quiet (the findings
        themselves are being printed to the same terminal)."""
        self.stream = stream
        self.checks = checks
        self.enabled = stream.isatty() if enabled is None else enabled
        self.until_first = until_first
        self.counts: Counter[str] = Counter()
        self._last = 0.0
        self._width = 0

    def _draw(self, text: str) -> None:
        text = escape(text)
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)

    def _line(self) -> str:
        total = sum(self.counts.values())
        per_check = ", ".join(f"{c} {n}" for c, n in self.counts.most_common(4))
        return (f"controller-audit: {len(self.checks)} checks, {total} findings"
                + (f" ({per_check})" if per_check else ""))

    def track(self, findings: Iterable[F]) -> Iterator[F]:
        """Pass ``findings`` through, redrawing the line as they stream."""
        if not self.enabled:
            yield from findings
            return
        self._draw(f"controller-audit: running {len(self.checks)} checks ({', '.join(self.checks[:6])}"
                   f"{', ...' if len(self.checks) > 6 else ''})")
        stream = iter(findings)
        try:
            for finding in stream:
                if self.until_first:
                    self._clear()
                    yield finding
                    yield from stream
                    return
                self.counts[finding.check] += 1
                now = time.monotonic()
                if now - self._last >= REDRAW_EVERY:
                    self._last = now
                    self._draw(self._line())
                yield finding
        finally:
            self._clear()

    def _clear(self) -> None:
        if self._width:
            self._draw("")
            self.stream.write("\r")
            self.stream.flush()
            self._width = 0
