"""The JSON report's finding lines spooled per severity (its summary comes first, known only at the end).

:func:`auditor.reports.report_json.write_json` spools the findings it is given; the second backend's
thread (:mod:`auditor.audit.split`) spools its half's lines itself, with their counts
(:class:`Spooled`), and the report copies them after the first half's, severity by severity.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO

from auditor.core.findings import SEVERITIES

#: Lines joined into one write to their spool (a few MB of text).
BATCH = 2000
#: The separator before every line in the spools (the first one of the document drops its comma).
SEPARATOR = ",\n  "


class SeveritySpools:
    """One temporary file per severity (most severe first); each line follows :data:`SEPARATOR`, UTF-8."""

    def __init__(self) -> None:
        self.files: dict[str, BinaryIO] = {}
        try:
            for severity in SEVERITIES:
                self.files[severity] = tempfile.TemporaryFile("w+b")
        except BaseException:
            self.close()
            raise
        self._pending: dict[str, list[str]] = {s: [] for s in SEVERITIES}

    def __enter__(self) -> SeveritySpools:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, severity: str, line: str) -> None:
        """Spool ``line`` (written with :data:`BATCH` - 1 others of its severity)."""
        lines = self._pending[severity]
        lines.append(line)
        if len(lines) >= BATCH:
            self._write(severity)

    def flush(self) -> None:
        """Write every line still held."""
        for severity in SEVERITIES:
            self._write(severity)

    def _write(self, severity: str) -> None:
        lines = self._pending[severity]
        if lines:
            self.files[severity].write((SEPARATOR + SEPARATOR.join(lines)).encode())
            lines.clear()

    def close(self) -> None:
        """Remove the spools."""
        for spool in self.files.values():
            spool.close()


@dataclass
class Spooled:
    """Findings already spooled as report lines (by another thread): the report copies their lines
    after its own of each severity and counts them as listed."""

    spools: SeveritySpools
    #: How many per (check, severity, app name).
    counts: Counter[tuple[str, str, str | None]] = field(default_factory=Counter)
