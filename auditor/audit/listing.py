"""What a report lists and what it only counts: findings at or above the listing floor
(``--min-severity``) are rendered one by one; those below are counted by the server, per check,
severity and app, and never rendered (no message, ``related`` list or evidence is built for them).

The floor is decided before the statement is built, per check and per *level* the check's SQL
emits (its ``levels``), after the config file's severity overrides: a level whose reported
severity is listed is selected row by row, the others go to the check's counting SELECT.
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor.core.catalogue import Check
from auditor.core.findings import at_least, lowest
from auditor.core.overrides import Resolved
from auditor.core.overrides import apply as apply_override


@dataclass(frozen=True)
class Listing:
    """The lowest severity listed (``info``: every finding is listed, as the library's callers expect)."""

    floor: str = "info"

    @classmethod
    def of(cls, min_severity: str, fail_on: str) -> Listing:
        """What a report lists: from ``min_severity`` up, and from ``fail_on`` up (a finding that
        makes the exit code non-zero is always listed, so the baseline can judge it)."""
        return cls(min_severity if fail_on == "never" else lowest(min_severity, fail_on))

    def lists(self, severity: str) -> bool:
        """Whether a finding reported at ``severity`` is listed."""
        return at_least(severity, self.floor)

    def split(self, check: Check, overrides: Resolved,
              levels: tuple[str, ...] | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The levels of ``check`` (or only ``levels``, those its SQL can give) whose findings are
        listed, and those counted only."""
        levels = check.levels if levels is None else levels
        listed = tuple(level for level in levels if self.lists(apply_override(overrides, check.id, level)))
        return listed, tuple(level for level in levels if level not in listed)


#: Every finding listed.
EVERYTHING = Listing("info")
