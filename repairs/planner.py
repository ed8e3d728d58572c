"""Make a plan: run the chosen planners, in the order that composes, in one read-only snapshot."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import psycopg

from auditor.audit.runner import DEFAULT_GRACE_SECONDS, DEFAULT_SKEW_SECONDS, resolve_scope
from auditor.core.connection import DEFAULT_LOCK_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT, Target, audit_session
from auditor.core.detect import detect
from auditor.core.errors import AuditFailed, BadInput
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


def make_plan(
    target: Target,
    *,
    apps: Iterable[str] = (),
    repairs: Iterable[str] = (),
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    skew_seconds: float = DEFAULT_SKEW_SECONDS,
    statement_timeout: str = DEFAULT_STATEMENT_TIMEOUT,
    lock_timeout: str = DEFAULT_LOCK_TIMEOUT,
) -> Plan:
    """Plan the repairs on ``target``; writes nothing to the database."""
    order = chosen_repairs(repairs)
    if grace_seconds < 0:
        raise BadInput("--grace must not be negative")
    if skew_seconds < 0:
        raise BadInput("--skew must not be negative")
    with audit_session(target, statement_timeout=statement_timeout, lock_timeout=lock_timeout) as conn:
        try:
            pin_settings(conn)
            generation = detect(conn)
            scope = resolve_scope(conn, apps)
            identity = identify(conn, generation, target)
            row = conn.execute("SELECT now()").fetchone()
            assert row is not None
            names = conn.execute(
                "SELECT uuid::text, id FROM api_app WHERE %s OR uuid = ANY(%s::uuid[])",
                (scope.everything, list(scope.uuids)),
            ).fetchall()
            ctx = PlanningContext(conn, generation, scope, grace_seconds, row[0], dict(names),
                                  skew_seconds=skew_seconds)
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
                grace_seconds=grace_seconds, actions=ActionTable.of(ctx.actions), refusals=ctx.refusals, invariants=invariants,
                columns={t: list(generation.columns[t]) for t in COLUMN_TABLES})
