"""The check catalogue: every check, its id, severity, rationale and SQL.

A check is declared in its own module under ``checks/`` as a module-level ``CHECK``
(think Django's system checks registry or sqlfluff's rule modules).  Its SQL is one
``SELECT`` over the shared passes (:mod:`auditor.core.passes`) returning the columns in
:data:`RESULT_COLUMNS`; the runner unions the selected checks into one statement.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from auditor.core.detect import Generation
from auditor.core.findings import SEVERITIES

#: The columns, in order, every check's SELECT returns.
RESULT_COLUMNS: tuple[str, ...] = (
    "severity",  # text: critical | warning | info (a check may escalate per row)
    "app_uuid",  # uuid or NULL
    "app_name",  # text or NULL
    "object_table",  # text
    "object_id",  # text: a uuid, or a name for objects without one
    "message",  # text: one line
    "related",  # json array of objects
    "evidence",  # json object
)


@dataclass(frozen=True)
class Check:
    """One kind of damage, found by one set-based query."""

    id: str
    severity: str  # the default (highest usual) severity; rows may carry a lower/higher one
    title: str
    rationale: str  # what the damage is and what the controller will do wrong because of it
    #: SELECT returning RESULT_COLUMNS; may use {scope}, {app_scope}, {partial}, %(grace_seconds)s,
    #: %(skew_seconds)s.
    #: A callable gets the schema generation and returns the SELECT for its columns.
    sql: str | Callable[[Generation], str]
    passes: tuple[str, ...]  # shared passes it reads
    repair: str | None = None  # id of the repair that fixes it, if any
    min_migration: int = 1  # first api migration it applies to
    needs_failed: bool = False  # only where api_release.failed exists
    database_level: bool = False  # about the whole database (catalogue), not about apps
    #: For servers older than PostgreSQL 16 (no pg_input_is_valid): another SELECT whose
    #: rows ``legacy_filter`` checks client-side, returning the row to report or None.
    legacy_sql: str | Callable[[Generation], str] | None = None
    legacy_filter: Callable[[tuple], tuple | None] | None = None
    #: Every severity the check's SQL can give a finding, most severe first (default: just
    #: ``severity``); a config-file override must map each of them (:mod:`auditor.core.overrides`).
    levels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        assert self.severity in SEVERITIES, self.severity
        if not self.levels:
            object.__setattr__(self, "levels", (self.severity,))
        assert set(self.levels) <= set(SEVERITIES) and self.severity in self.levels, (self.id, self.levels)
        object.__setattr__(self, "levels", tuple(s for s in SEVERITIES if s in self.levels))

    def applies_to(self, generation: Generation) -> bool:
        """Whether the check means anything on this schema generation."""
        if self.needs_failed and not generation.has_failed:
            return False
        return generation.migration >= self.min_migration

    def sql_for(self, generation: Generation, legacy: bool = False) -> str:
        """The SELECT to run on ``generation``: ``legacy_sql`` (if any) when ``legacy``."""
        chosen = self.legacy_sql if legacy and self.legacy_sql is not None else self.sql
        return chosen(generation) if callable(chosen) else chosen

    @property
    def generations(self) -> str:
        """Human description of the generations the check applies to."""
        if self.needs_failed:
            return "deis 0020+ and hephy (needs api_release.failed)"
        return "all (deis and hephy)"


def load_catalogue() -> dict[str, Check]:
    """Every check in the ``checks`` package, by id, in catalogue order."""
    import checks

    found: dict[str, Check] = {}
    for module in sorted(pkgutil.iter_modules(checks.__path__), key=lambda m: m.name):
        check = getattr(importlib.import_module(f"checks.{module.name}"), "CHECK", None)
        if isinstance(check, Check):
            if check.id in found:
                raise RuntimeError(f"duplicate check id {check.id}")
            found[check.id] = check
    order = {cid: i for i, cid in enumerate(CATALOGUE_ORDER)}
    return dict(sorted(found.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


#: The public ids, in the order the catalogue lists them.
CATALOGUE_ORDER: tuple[str, ...] = (
    "orphan-config",
    "orphan-build",
    "latest-config-not-live",
    "latest-build-not-live",
    "release-order",
    "future-dated",
    "shared-config",
    "shared-build",
    "cross-app-reference",
    "dangling-reference",
    "missing-constraint",
    "release-version-gap",
    "latest-ambiguous",
    "invalid-json",
    "app-without-release",
)
