"""The human report: findings grouped by severity and app, then a summary line.

Every value from the database is shown with its control characters escaped
(:func:`auditor.core.text.escape`), so a report read in a terminal shows what is there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from tabulate import tabulate

from auditor.core.findings import Finding
from auditor.core.text import escape
from auditor.reports.report import Report

#: A group longer than this is printed in several tables (memory stays bounded).
_CHUNK = 500
_HEADERS = ("check", "object", "message")


def _heading(severity: str, app: str | None) -> str:
    return f"{severity.upper()} - {'app ' + escape(app) if app else 'database'}"


def _message(finding: Finding) -> str:
    """The finding's message, saying when a baseline accepted it at a lower severity."""
    if finding.baseline is None:
        return escape(finding.message)
    return f"{escape(finding.message)} (was {finding.baseline['accepted_severity']} when accepted)"


def write_table(out: TextIO, report: Report, findings: Iterable[Finding]) -> None:
    """Stream ``findings`` (already ordered by severity and app) as tables, then the summary."""
    group: tuple[str, str | None] | None = None
    rows: list[tuple[str, str, str]] = []

    def flush() -> None:
        if rows:
            out.write(tabulate(rows, headers=_HEADERS, tablefmt="simple") + "\n")
            rows.clear()

    for finding in findings:
        key = (finding.severity, finding.app_name)
        if key != group:
            flush()
            out.write(("\n" if group is not None else "") + _heading(*key) + "\n")
            group = key
        rows.append((finding.check, escape(f"{finding.object_table} {finding.object_id}"), _message(finding)))
        if len(rows) >= _CHUNK:
            flush()
    flush()
    if group is not None:
        out.write("\n")
    out.write(report.summary_line() + "\n")
    for line in report.baseline_lines():
        out.write(escape(line) + "\n")
