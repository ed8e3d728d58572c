"""What the planners share while they plan, one after another, in one read-only snapshot.

Each planner reads the database as it is and the changes the planners before it have
planned (rows to be pruned, releases re-dated, copies to be made), so that the repairs
compose: restore-latest is planned on the state prune-orphans, release-order and unshare leave.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg

from auditor.audit.runner import Located, Scope, locate
from auditor.core.detect import Generation
from auditor.core.errors import AuditFailed
from auditor.core.settings import DEFAULT_SKEW_SECONDS
from checks import CATALOGUE
from repairs.dating import MICROSECOND
from repairs.model import Action, Invariants, Refusal

__all__ = ["MICROSECOND", "PlanningContext", "iso"]


def iso(moment: datetime) -> str:
    """A timestamp as the plan stores it: ISO 8601 in UTC with microseconds."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


@dataclass
class PlanningContext:
    """The snapshot, the scope, and the plan so far."""

    conn: psycopg.Connection
    generation: Generation
    scope: Scope
    grace_seconds: float
    now: datetime
    app_names: dict[str, str | None]
    actions: list[Action] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    invariants: Invariants = field(default_factory=Invariants)
    #: table -> uuids of rows planned for deletion
    pruned: dict[str, set[str]] = field(default_factory=dict)
    #: table -> release uuid -> the copy planned for it
    copies: dict[str, dict[str, Action]] = field(default_factory=dict)
    #: release uuid -> the ``created`` release-order planned for it
    release_created: dict[str, datetime] = field(default_factory=dict)
    skew_seconds: float = DEFAULT_SKEW_SECONDS
    #: The repairs of the plan (their checks are located in one statement).
    repairs: tuple[str, ...] = ()
    _findings: dict[str, list[Located]] = field(default_factory=dict, repr=False)

    @property
    def scope_params(self) -> dict[str, Any]:
        """``%(everything)s`` / ``%(apps)s`` for the planners' scope predicates."""
        return {"everything": self.scope.everything, "apps": list(self.scope.uuids)}

    @property
    def in_flight_before(self) -> datetime:
        """Rows created after this (up to :attr:`future_after`) are a deploy in flight (the grace period)."""
        return self.now - timedelta(seconds=self.grace_seconds)

    @property
    def future_after(self) -> datetime:
        """Rows created after this are future-dated (a controller clock ahead of the database's)."""
        return self.now + timedelta(seconds=self.skew_seconds)

    def in_flight(self, created: datetime) -> bool:
        """Whether a row created then is a deploy in flight: within ``[now - grace, now + skew]``."""
        return self.in_flight_before < created <= self.future_after

    @property
    def moved_releases(self) -> dict[str, list]:
        """``%(moved)s`` / ``%(moved_at)s``: the releases release-order re-dates, and their new dates."""
        uuids = sorted(self.release_created)
        return {"moved": uuids, "moved_at": [self.release_created[u] for u in uuids]}

    def findings(self, repair: str) -> list[Located]:
        """Where the findings of the checks whose repair is ``repair`` are, in this snapshot, with the
        plan's scope and clock: where every planner starts (the planner repairs exactly what they
        report, and refuses, with their reason, what they mark ``manual``)."""
        if repair not in self._findings:
            # One statement for the checks of every repair of the plan: their passes are read once.
            wanted = set(self.repairs) | {repair}
            checks = [c for c in CATALOGUE.values() if c.repair in wanted and c.applies_to(self.generation)]
            try:
                located = locate(self.conn, self.generation, checks, self.scope,
                                 grace_seconds=self.grace_seconds, skew_seconds=self.skew_seconds)
            except AuditFailed as exc:
                if exc.kind != "timeout":
                    raise
                raise AuditFailed("statement_timeout reached while planning; raise --statement-timeout or narrow "
                                  "with --app", kind="timeout") from None
            repair_of = {c.id: c.repair for c in checks}
            for name in wanted:
                self._findings[name] = [f for f in located if repair_of[f.check] == name]
        return self._findings[repair]

    def add(self, **fields: Any) -> Action:
        """Append an action with the next id."""
        action = Action(id=len(self.actions) + 1, app_name=self.app_names.get(fields["app_uuid"]), **fields)
        self.actions.append(action)
        return action

    def refuse(self, repair: str, table: str, app_uuid: str, row: str | None, why: str) -> None:
        """Record a repair not planned, and why."""
        self.refusals.append(Refusal(repair, table, app_uuid, self.app_names.get(app_uuid), row, why))
