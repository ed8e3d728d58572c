"""The check catalogue rendered for people: the ``checks`` command and the README section.

``docs/catalogue.md`` and the README's ``<!-- catalogue:start -->`` section are generated
with ``controller-audit checks --markdown``; a test keeps them equal to this rendering.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

from auditor.core.catalogue import Check

MARK_START = "<!-- catalogue:start -->"
MARK_END = "<!-- catalogue:end -->"


def applies_to(check: Check) -> str:
    """The generations a check runs on, with its first migration if it needs one."""
    text = check.generations
    if check.min_migration > 1 and not check.needs_failed:
        text += f", from api migration {check.min_migration:04d}"
    return text


def repair_text(check: Check) -> str:
    """The repair that fixes a check's findings, as a command, or why there is none."""
    if check.repair:
        return f"`{check.repair}` (controller-audit plan --repair {check.repair})"
    return "none automatic (reported for a person to decide)"


def check_details(check: Check) -> str:
    """Everything about one check, as plain text for the terminal."""
    return "\n".join([
        f"{check.id}: {check.title}",
        f"severity:    {check.severity}" + (" (database-level)" if check.database_level else "")
        + (f"; findings may be {', '.join(check.levels)} (override each level)" if len(check.levels) > 1 else ""),
        f"applies to:  {applies_to(check)}",
        f"repair:      {repair_text(check)}",
        "",
        check.rationale.strip(),
    ])


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(catalogue: Mapping[str, Check]) -> str:
    """The catalogue as Markdown: a summary table, then one section per check."""
    lines = [
        "| id | severity | title | repair | applies to |",
        "|---|---|---|---|---|",
    ]
    for check in catalogue.values():
        repair = f"`{check.repair}`" if check.repair else "-"
        lines.append(f"| [`{check.id}`](#{check.id}) | {check.severity} | {_cell(check.title)} | {repair} | "
                     f"{_cell(applies_to(check))} |")
    for check in catalogue.values():
        lines += [
            "",
            f"### {check.id}",
            "",
            f"**{check.title}.** Severity: {check.severity}. Applies to: {applies_to(check)}. "
            f"Repair: {repair_text(check)}.",
            "",
            textwrap.dedent(check.rationale).strip(),
        ]
    return "\n".join(lines) + "\n"


def readme_section(text: str) -> str | None:
    """The text between the catalogue markers of a README, or None without markers."""
    if MARK_START not in text or MARK_END not in text:
        return None
    return text.split(MARK_START, 1)[1].split(MARK_END, 1)[0]
