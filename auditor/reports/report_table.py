"""The human report: findings grouped by severity and app, then what was counted but not listed
(below ``--min-severity``) with the flag that lists it, the summary line and the baseline's lines.

The table fits the terminal (:func:`table_width`): messages are wrapped to the columns left, and
never inside a word, so a uuid (in the object column or a message) is always whole.  When the
terminal is too narrow for three columns, each finding takes a line for its check and object and
the lines below for its message.

Every value from the database is shown with its control characters escaped
(:func:`auditor.core.text.escape`), so a report read in a terminal shows what is there.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterable
from typing import TextIO

from tabulate import tabulate

from auditor.core.findings import Finding
from auditor.core.text import escape
from auditor.reports.report import Report

#: A group longer than this is printed in several tables (memory stays bounded).
_CHUNK = 500
_HEADERS = ("check", "object", "message")
#: The width when the output is not a terminal (and ``COLUMNS`` is not set).
DEFAULT_WIDTH = 100
#: The narrowest message column worth a table (and never narrower than the longest word of a
#: message, so that a uuid fits); narrower terminals get one finding per block.
_MIN_MESSAGE = 40
#: What ``tabulate``'s simple format puts between two columns.
_GAP = 2
_INDENT = "    "


def table_width() -> int:
    """The terminal's width (``COLUMNS`` first), :data:`DEFAULT_WIDTH` when not a terminal."""
    return max(20, shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns)


def wrap(text: str, width: int, indent: str = "") -> list[str]:
    """``text`` in lines of at most ``width`` columns, broken only at spaces (a word longer than the
    line, such as a uuid, overflows rather than being split)."""
    return textwrap.wrap(text, width=max(1, width), initial_indent=indent, subsequent_indent=indent,
                         break_long_words=False, break_on_hyphens=False) or [indent]


def _heading(severity: str, app: str | None) -> str:
    return f"{severity.upper()} - {'app ' + escape(app) if app else 'database'}"


def _message(finding: Finding) -> str:
    """The finding's message, saying when a baseline accepted it at a lower severity."""
    if finding.baseline is None:
        return escape(finding.message)
    return f"{escape(finding.message)} (was {finding.baseline['accepted_severity']} when accepted)"


def _row(finding: Finding) -> tuple[str, str, str, str]:
    """(check, object table, object id, message), escaped."""
    return finding.check, escape(finding.object_table), escape(finding.object_id), _message(finding)


def _render(rows: list[tuple[str, str, str, str]], width: int) -> str:
    """``rows`` laid out to ``width``: a table if the message column keeps :data:`_MIN_MESSAGE`
    columns (the object on one line, else its table above its id), otherwise one block per finding."""
    check_w = max(len(r[0]) for r in rows + [("check", "", "", "")])
    longest_word = max(len(word) for r in rows for word in r[3].split() or [""])
    for split in (False, True):
        objects = [f"{t}\n{i}" if split else f"{t} {i}" for _, t, i, _ in rows]
        object_w = max(len(line) for o in objects + ["object"] for line in o.split("\n"))
        message_w = width - check_w - object_w - 2 * _GAP
        if message_w >= max(_MIN_MESSAGE, longest_word):
            table = [(r[0], o, "\n".join(wrap(r[3], message_w))) for r, o in zip(rows, objects, strict=True)]
            return tabulate(table, headers=_HEADERS, tablefmt="simple", disable_numparse=True)
    lines: list[str] = []
    for check, table_name, object_id, message in rows:
        head = f"{check}  {table_name} {object_id}"
        lines += [head] if len(head) <= width else [check, f"  {table_name} {object_id}"]
        lines += wrap(message, width - len(_INDENT), _INDENT) if width > 2 * len(_INDENT) else [_INDENT + message]
    return "\n".join(lines)


def write_table(out: TextIO, report: Report, findings: Iterable[Finding], width: int | None = None) -> None:
    """Stream ``findings`` (already ordered by severity and app) as tables ``width`` columns wide
    (default: :func:`table_width`), then the summary and what was counted but not listed."""
    width = width or table_width()
    group: tuple[str, str | None] | None = None
    rows: list[tuple[str, str, str, str]] = []

    def flush() -> None:
        if rows:
            out.write(_render(rows, width) + "\n")
            rows.clear()

    for finding in findings:
        key = (finding.severity, finding.app_name)
        if key != group:
            flush()
            out.write(("\n" if group is not None else "") + _heading(*key) + "\n")
            group = key
        rows.append(_row(finding))
        if len(rows) >= _CHUNK:
            flush()
    flush()
    if group is not None:
        out.write("\n")
    for line in [*report.footer_lines(), report.summary_line(), *report.baseline_lines()]:
        out.write("\n".join(_wrapped_line(escape(line), width)) + "\n")


def _wrapped_line(text: str, width: int) -> list[str]:
    """A footer line wrapped to ``width``, its continuation lines indented two more columns."""
    indent = text[:len(text) - len(text.lstrip(" "))]
    return textwrap.wrap(text.strip(), width=max(1, width), initial_indent=indent, subsequent_indent=indent + "  ",
                         break_long_words=False, break_on_hyphens=False) or [text]
