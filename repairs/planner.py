"""Make a plan: run the chosen planners, in the order that composes, in one read-only snapshot."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import psycopg

from auditor.audit.runner import resolve_scope
from auditor.core.errors import AuditFailed, BadInput
from auditor.core.session import read_session
from auditor.core.settings import Settings
from repairs import prune_orphans, release_order, restore_latest, unshare
from repairs.actions import ActionTable
from repairs.context import PlanningContext, iso
from repairs.identity import identify, pin_settings
from repairs.model import DEFAULT_REPAIRS, REPAIRS, Invariants
from repairs.planfile import COLUMN_TABLES, Plan

PLANNERS: dict[str, Callable[[PlanningContext], None]] = {
    "prune-orphans": prune_orphans.plan,
    "release-order": release_order.plan,
    "unshare": unshare.plan,
    "restore-latest": restore_latest.plan,
}


def chosen_repairs(requested: Iterable[str]) -> list[str]:
    """The requested repairs (the default set when none: release-order only when asked), in
    composing order."""
    wanted = set(requested) or set(DEFAULT_REPAIRS)
    unknown = wanted - set(REPAIRS)
    if unknown:
        raise BadInput(f"unknown repair {', '.join(sorted(unknown))} (choose from {', '.join(REPAIRS)})")
    return [r for r in REPAIRS if r in wanted]


def make_plan(settings: Settings, *, repairs: Iterable[str] = ()) -> Plan:
    """Plan the repairs on the settings' target, for the settings' apps, grace and skew; writes
    nothing to the database."""
    order = chosen_repairs(repairs)
    with read_session(settings) as (conn, generation):
        try:
            pin_settings(conn)
            scope = resolve_scope(conn, settings.scope, settings.allowed_apps)
            identity = identify(conn, generation, settings.target)
            row = conn.execute("SELECT now()").fetchone()
            assert row is not None
            names = conn.execute(
                "SELECT uuid::text, id FROM api_app WHERE %s OR uuid = ANY(%s::uuid[])",
                (scope.everything, list(scope.uuids)),
            ).fetchall()
            ctx = PlanningContext(conn, generation, scope, settings.grace_seconds, row[0], dict(names),
                                  skew_seconds=settings.skew_seconds, repairs=tuple(order))
            for name in order:
                PLANNERS[name](ctx)
        except psycopg.errors.QueryCanceled:
            raise AuditFailed("statement_timeout reached while planning; raise --statement-timeout or narrow "
                              "with --app", kind="timeout") from None
    touched = {a.app_uuid for a in ctx.actions}
    invariants = ctx.invariants
    for field, _ in Invariants.FIELDS:
        setattr(invariants, field, [app for app in getattr(invariants, field) if app in touched])
    return Plan(identity=identity, created=iso(ctx.now), apps=list(scope.names), repairs=order,
                grace_seconds=settings.grace_seconds, actions=ActionTable.of(ctx.actions), refusals=ctx.refusals,
                invariants=invariants, columns={t: list(generation.columns[t]) for t in COLUMN_TABLES})
