"""The plan file: what ``plan`` writes and ``plan show``, ``plan sql`` and ``apply`` read."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from auditor import __version__
from auditor.core.collector import gc_paused
from auditor.core.detect import Generation
from auditor.core.errors import BadInput, PlanRefused
from repairs.actions import ActionTable
from repairs.identity import Identity
from repairs.invariants import derive
from repairs.model import POINTER, Invariants, Refusal
from repairs.sealed import read_sealed, write_sealed

FORMAT = "controller-audit-plan"
#: 2: actions as compact rows (:mod:`repairs.actions`) instead of one object each.
FORMAT_VERSION = 2
#: The tables whose columns a plan records.
COLUMN_TABLES = ("api_config", "api_build", "api_release")
#: The actions a plan may hold: (repair, kind) on a table of :data:`repairs.model.POINTER`.
#: ``uncopy`` and ``reinsert`` exist only in undo files.
PLAN_OPS: frozenset[tuple[str, str]] = frozenset({
    ("prune-orphans", "prune"), ("unshare", "copy"), ("restore-latest", "redate"), ("release-order", "redate"),
})
#: The tables each repair's actions change (release-order re-dates releases; the others configs and builds).
PLAN_TABLES: dict[str, tuple[str, ...]] = {"release-order": ("api_release",)}


@dataclass
class Plan:
    """A reviewed set of repairs for one database."""

    identity: Identity
    created: str
    apps: list[str]  # the --app names (empty: every app)
    repairs: list[str]
    grace_seconds: float
    actions: ActionTable = field(default_factory=ActionTable)
    refusals: list[Refusal] = field(default_factory=list)
    invariants: Invariants = field(default_factory=Invariants)
    #: The columns of the tables a repair writes, as planned (the statements are built from them).
    columns: dict[str, list[str]] = field(default_factory=dict)
    tool_version: str = __version__
    checksum: str | None = None

    @property
    def empty(self) -> bool:
        return not self.actions

    def checked_invariants(self) -> Invariants:
        """The invariants ``apply`` verifies: derived from the actions (:mod:`repairs.invariants`)."""
        return derive(self.actions, self.repairs, self.refusals)

    def generation(self) -> Generation:
        """The schema generation the plan was made for, with its columns."""
        release = tuple(self.columns["api_release"])
        return Generation(name=self.identity.generation, migration=self.identity.migration,
                          migration_name=self.identity.migration_name, has_failed="failed" in release,
                          has_exception="exception" in release,
                          columns={t: tuple(c) for t, c in self.columns.items()})

    def to_json(self) -> dict[str, Any]:
        """The document written to the plan file (before sealing)."""
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "tool_version": self.tool_version,
            "created": self.created, "database": self.identity.to_json(), "columns": self.columns,
            "scope": {"apps": self.apps, "repairs": self.repairs, "grace_seconds": self.grace_seconds},
            "actions": self.actions.to_json(),
            "refused": [r.to_json() for r in self.refusals],
            "expected_changes": self.actions.expected_changes(),
            "invariants": self.invariants.to_json(),
        }

    def write(self, path: str | os.PathLike[str]) -> str:
        """Write the sealed plan atomically; returns its checksum."""
        self.checksum = write_sealed(path, self.to_json())
        return self.checksum


def load_plan(path: str | os.PathLike[str]) -> Plan:
    """Read and verify a plan file (see :func:`repairs.sealed.read_sealed` for the refusals)."""
    with gc_paused():
        return _load_plan(path)


def _load_plan(path: str | os.PathLike[str]) -> Plan:
    doc = read_sealed(path, FORMAT, FORMAT_VERSION)
    if doc["format_version"] < FORMAT_VERSION:
        raise PlanRefused(f"{path} is plan format version {doc['format_version']}, written by an older "
                          f"controller-audit; make a new plan", kind="older plan format")
    try:
        scope = doc["scope"]
        plan = Plan(
            identity=Identity.from_json(doc["database"]), created=doc["created"],
            apps=list(scope["apps"]), repairs=list(scope["repairs"]), grace_seconds=float(scope["grace_seconds"]),
            actions=ActionTable.from_json(doc["actions"]),
            refusals=[Refusal.from_json(r) for r in doc.get("refused", [])],
            invariants=Invariants.from_json(doc.get("invariants", {})),
            columns={t: list(c) for t, c in doc["columns"].items()},
            tool_version=doc.get("tool_version", "?"), checksum=doc["checksum"],
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise BadInput(f"{path} is not a valid plan file ({type(exc).__name__}: {exc})", kind="bad plan file") from None
    if not all(t in plan.columns for t in COLUMN_TABLES):
        raise BadInput(f"{path} is not a valid plan file (columns of {', '.join(COLUMN_TABLES)} missing)",
                       kind="bad plan file")
    if plan.actions.expected_changes() != doc.get("expected_changes"):
        raise PlanRefused(f"{path}: the expected row changes do not match its actions", kind="edited plan")
    _check_ops(path, plan)
    return plan


def _check_ops(path: str | os.PathLike[str], plan: Plan) -> None:
    """Refuse a plan holding an action no planner makes (an undo-only kind, an unknown table)."""
    used = {row.op for row in plan.actions.rows}
    for index, (repair, kind, table) in enumerate(plan.actions.ops):
        if index in used and ((repair, kind) not in PLAN_OPS or table not in PLAN_TABLES.get(repair, tuple(POINTER))):
            first = next(row.id for row in plan.actions.rows if row.op == index)
            undo_only = kind in ("uncopy", "reinsert")
            raise PlanRefused(
                f"{path}: action #{first} is {'an' if repair[:1] in 'aeiou' else 'a'} {repair} {kind} of {table}, which "
                + ("only an undo file may hold" if undo_only else "no planner makes")
                + "; refusing (the plan was edited and re-sealed)", kind="foreign action")
