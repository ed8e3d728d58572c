"""restore-latest: make ``latest()`` return the live release's config and build again.

The controller picks "the app's config" with ``config_set.latest()`` (newest ``created``):
boot re-saves it, and older controllers merge the next ``config:set`` over it.  When that row
is not the live release's (an orphan, a failed release's row, a rollback), the fix is to date
the live release's own row after every other row of the app: its ``created`` becomes the
app's newest plus one microsecond.  Nothing else changes - no release is rewritten, no row
is added or orphaned - so a second plan is empty.  If the live release gets a copy from
unshare in the same plan, the copy is dated that way instead.  Planned on the state the
earlier repairs leave (pruned rows gone, copies present).
"""

from __future__ import annotations

from datetime import datetime

from psycopg import sql

from repairs.context import MICROSECOND, PlanningContext, iso
from repairs.model import POINTER, kind_of
from repairs.unshare import copy_of

REPAIR = "restore-latest"

#: The newest ``created`` of an app's rows, and the uuids of the rows holding it.
Newest = tuple[datetime, set[str]]

_LIVE = """
SELECT DISTINCT ON (r.app_id) r.app_id::text, r.uuid::text, r.version, r.{pointer}::text, md5(r::text)
FROM api_release r
WHERE (%(everything)s OR r.app_id = ANY(%(apps)s::uuid[])) AND {not_failed}
ORDER BY r.app_id, r.version DESC
"""

_NEWEST = """
WITH ranked AS (
    SELECT t.app_id, t.uuid, t.created, rank() OVER (PARTITION BY t.app_id ORDER BY t.created DESC) AS rk
    FROM {table} t
    LEFT JOIN unnest(%(pruned)s::uuid[]) AS d(uuid) ON d.uuid = t.uuid
    WHERE (%(everything)s OR t.app_id = ANY(%(apps)s::uuid[])) AND d.uuid IS NULL
)
SELECT app_id::text, created, array_agg(uuid::text ORDER BY uuid) FROM ranked WHERE rk = 1
GROUP BY app_id, created
"""

_ROWS = "SELECT uuid::text, app_id::text, created, md5(t::text) FROM {table} t WHERE uuid = ANY(%s::uuid[])"


def plan(ctx: PlanningContext) -> None:
    """Plan, per app and table, what makes ``latest()`` the live release's row."""
    for table, pointer in POINTER.items():
        not_failed = sql.SQL("NOT r.failed" if ctx.generation.has_failed else "true")
        live = ctx.conn.execute(
            sql.SQL(_LIVE).format(pointer=sql.Identifier(pointer), not_failed=not_failed), ctx.scope_params
        ).fetchall()
        newest: dict[str, Newest] = {
            app: (created, set(uuids))
            for app, created, uuids in ctx.conn.execute(
                sql.SQL(_NEWEST).format(table=sql.Identifier(table)),
                {**ctx.scope_params, "pruned": sorted(ctx.pruned.get(table, ()))},
            )
        }
        copied = _newest_copies(ctx, table)
        fixes: list[tuple[str, str, int, str, str, Newest]] = []
        verified: list[str] = []
        for app, release, version, row, release_fp in live:
            copy = copy_of(ctx, table, release)
            own = copy.new_uuid if copy else row
            top = _newest(newest.get(app), copied.get(app))
            if top is None:
                continue
            top_created, holders = top
            if own is None:
                ctx.refuse(REPAIR, table, app, None,
                           f"the live release v{version} has no {kind_of(table)}, but {kind_of(table)}_set.latest() "
                           f"returns {sorted(holders)[0]}: nothing of the live release's to date after it")
                continue
            if holders == {own}:
                verified.append(app)
                continue
            existing = newest.get(app)
            if existing and existing[0] > ctx.in_flight_before:
                ctx.refuse(REPAIR, table, app, sorted(existing[1])[0],
                           f"the app's newest {kind_of(table)} is younger than the grace period "
                           f"({ctx.grace_seconds:g}s): a deploy may be in flight")
                continue
            target = top_created + MICROSECOND
            if copy is not None:
                copy.new_created = iso(target)
                copy.why += (f"; dated after the app's newest {kind_of(table)} instead (restore-latest), so "
                             f"{kind_of(table)}_set.latest() returns the live release's")
                verified.append(app)
            else:
                fixes.append((app, release, version, release_fp, own, top))
        verified += _plan_redates(ctx, table, fixes)
        if table == "api_config":
            ctx.invariants.latest_config = sorted(set(verified))
        else:
            ctx.invariants.latest_build = sorted(set(verified))


def _newest_copies(ctx: PlanningContext, table: str) -> dict[str, Newest]:
    """Per app, the newest ``created`` among the copies planned so far, and the copies holding it."""
    best: dict[str, Newest] = {}
    for copy in ctx.copies.get(table, {}).values():
        assert copy.new_created is not None and copy.new_uuid is not None
        created = datetime.fromisoformat(copy.new_created)
        known = best.get(copy.app_uuid)
        if known is None or created > known[0]:
            best[copy.app_uuid] = (created, {copy.new_uuid})
        elif created == known[0]:
            known[1].add(copy.new_uuid)
    return best


def _newest(existing: Newest | None, copied: Newest | None) -> Newest | None:
    """The newest ``created`` of an app's rows after the earlier repairs, and the rows holding it."""
    if existing is None or copied is None:
        return existing or copied
    if existing[0] == copied[0]:
        return existing[0], existing[1] | copied[1]
    return max(existing, copied, key=lambda n: n[0])


def _plan_redates(ctx: PlanningContext, table: str, fixes: list[tuple[str, str, int, str, str, Newest]]) -> list[str]:
    """Re-date the live releases' own rows; returns the apps verified afterwards."""
    if not fixes:
        return []
    query = sql.SQL(_ROWS).format(table=sql.Identifier(table))
    rows = {r[0]: r for r in ctx.conn.execute(query, ([f[4] for f in fixes],))}
    done = []
    for app, release, version, release_fp, own, (top_created, holders) in fixes:
        found = rows.get(own)
        if found is None:
            ctx.refuse(REPAIR, table, app, own, f"the live release v{version} points at {kind_of(table)} {own}, "
                                                "which does not exist (dangling reference)")
            continue
        if found[1] != app:
            ctx.refuse(REPAIR, table, app, own, f"the live release v{version} uses {kind_of(table)} {own} of "
                                                f"app {found[1]} (cross-app reference): not re-dating another "
                                                "app's row")
            continue
        others = sorted(holders - {own})
        ctx.add(repair=REPAIR, kind="redate", table=table, app_uuid=app, row=own, fingerprint=found[3],
                release=release, release_version=version, release_fingerprint=release_fp,
                new_created=iso(top_created + MICROSECOND),
                why=f"{kind_of(table)}_set.latest() would return {', '.join(others)} (created {iso(top_created)}), "
                    f"not the live release v{version}'s {kind_of(table)}; its created {iso(found[2])} becomes the "
                    "app's newest plus 1 microsecond")
        done.append(app)
    return done
