"""restore-latest: make ``latest()`` return the live release's config and build again.

The controller reads "the app's config" with ``config_set.latest()`` (newest ``created``):
boot re-saves it, ``App.create`` builds on it, and Deis up to 0019 diffs pushes against
``build_set.latest()``.  The live release is the controller's: the newest by ``created``
that did not fail (with release-order in the plan, by the dates it plans); an app whose live
release is ambiguous (releases tied on ``created``) is refused.  The apps are those the
latest-config-not-live, latest-build-not-live and latest-ambiguous checks report in the plan's
snapshot, scope and clock (so the repair plans exactly what they report), and every app the plan
touches, in both tables (``apply`` verifies ``latest()`` of both in each of them).  When ``latest()`` is not the
live release's row (an orphan, a failed release's row, a rollback), the fix is to date the
live release's own row after every other row of the app: the app's newest plus one
microsecond.  A row dated in the future (after now() + skew) is never overtaken, since no
repair dates a row after ``now()``: it is moved back to just before the live release's row
instead, and a live release's own row dated in the future moves back to just after the
app's newest other row.  Nothing else changes - no release is rewritten, no row is added or orphaned - so
a second plan is empty.  If the live release gets a copy from unshare in the same plan, the
copy is dated that way instead.  Planned on the state the earlier repairs leave (pruned rows
gone, releases re-dated, copies present).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from psycopg import sql

from repairs.context import PlanningContext, iso
from repairs.dating import Calendar, Dated, make_newest
from repairs.model import POINTER, Action, kind_of
from repairs.unshare import copy_of

REPAIR = "restore-latest"

#: Each app's live release(s): the newest by created that did not fail, by the dates
#: release-order plans (several rows: the live release is ambiguous).
_LIVE = """
SELECT s.app_id::text, s.uuid::text, s.version, s.row_id::text, s.fp FROM (
    SELECT r.app_id, r.uuid, r.version, r.{pointer} AS row_id, md5(r::text) AS fp,
           rank() OVER (PARTITION BY r.app_id ORDER BY coalesce(m.created, r.created) DESC) AS rk
    FROM api_release r
    LEFT JOIN unnest(%(moved)s::uuid[], %(moved_at)s::timestamptz[]) AS m(uuid, created) ON m.uuid = r.uuid
    WHERE r.app_id = ANY(%(targets)s::uuid[]) AND {not_failed}
) s
WHERE s.rk = 1
ORDER BY s.app_id, s.version DESC
"""

#: Per app, the rows that decide what must change: the newest rows not dated in the future,
#: every row dated in the future, every row in flight (pruned rows left out).
_CANDIDATES = """
WITH x AS (
    SELECT t.app_id, t.uuid, t.created, md5(t::text) AS fp, t.created > %(future_after)s AS future,
           t.created > %(in_flight_before)s AND t.created <= %(future_after)s AS in_flight
    FROM {table} t
    LEFT JOIN unnest(%(pruned)s::uuid[]) AS d(uuid) ON d.uuid = t.uuid
    WHERE t.app_id = ANY(%(targets)s::uuid[]) AND d.uuid IS NULL
), ranked AS (
    SELECT x.*, rank() OVER (PARTITION BY x.app_id, x.future ORDER BY x.created DESC) AS rk FROM x
)
SELECT app_id::text, uuid::text, created, fp, future, in_flight FROM ranked
WHERE rk = 1 OR future OR in_flight
ORDER BY app_id, created DESC
"""

_ROWS = "SELECT uuid::text, app_id::text, created, md5(t::text) FROM {table} t WHERE uuid = ANY(%s::uuid[])"


@dataclass(frozen=True)
class _Row:
    uuid: str
    created: datetime
    fingerprint: str | None  # None: a copy planned by unshare
    future: bool = False
    in_flight: bool = False


@dataclass
class _Fix:
    """An app whose live release's row must become the newest."""

    app: str
    release: str
    version: int
    release_fp: str
    own: str
    copy: Action | None
    rows: list[_Row]


def plan(ctx: PlanningContext) -> None:
    """Plan, per app and table, what makes ``latest()`` the live release's row."""
    touched = _touched(ctx)
    for table, pointer in POINTER.items():
        verified = _plan_table(ctx, table, pointer, touched)
        if table == "api_config":
            ctx.invariants.latest_config = sorted(set(verified))
        else:
            ctx.invariants.latest_build = sorted(set(verified))


def _touched(ctx: PlanningContext) -> set[str]:
    """The apps the plan may change: those the repairs planned before this one change (the state
    they leave is what counts: release-order can change which release is live, unshare gives it a
    copy), and those this one may re-date a row of (a finding of either table not marked for fixing
    by hand).  ``apply`` verifies ``latest()`` in both tables of every app a plan touches, so each is
    planned (verified, fixed or refused) in both: an app whose config alone was copied, with a tie
    or a build in flight, was otherwise refused by its own plan's apply."""
    apps = {a.app_uuid for a in ctx.actions} | {str(f.app_uuid) for f in ctx.findings(REPAIR) if f.manual is None}
    if not ctx.scope.everything:
        apps &= set(ctx.scope.uuids)
    return apps


def _targets(ctx: PlanningContext, table: str, touched: set[str]) -> list[str]:
    """The apps to plan for in ``table``: those the latest-*-not-live and latest-ambiguous checks
    report in it (a finding they mark for fixing by hand is refused with their reason, unless the
    app is ``touched``: then the planning refuses it), and the ``touched`` apps."""
    findings = [f for f in ctx.findings(REPAIR) if f.object_table == table]
    targets = {str(f.app_uuid) for f in findings if f.manual is None}
    manual: dict[str, str] = {}
    for finding in findings:
        if finding.manual is not None and str(finding.app_uuid) not in targets:
            manual.setdefault(str(finding.app_uuid), finding.manual)
    for app, why in sorted(manual.items()):
        if app not in touched:
            ctx.refuse(REPAIR, table, app, None, why)
    return sorted(targets | touched)


def _plan_table(ctx: PlanningContext, table: str, pointer: str, touched: set[str]) -> list[str]:
    kind = kind_of(table)
    targets = _targets(ctx, table, touched)
    if not targets:
        return []
    not_failed = sql.SQL("NOT r.failed" if ctx.generation.has_failed else "true")
    live: dict[str, list[tuple]] = defaultdict(list)
    for row in ctx.conn.execute(sql.SQL(_LIVE).format(pointer=sql.Identifier(pointer), not_failed=not_failed),
                                {"targets": targets, **ctx.moved_releases}):
        live[row[0]].append(row[1:])
    rows: dict[str, list[_Row]] = defaultdict(list)
    params = {"targets": targets, "pruned": sorted(ctx.pruned.get(table, ())), "future_after": ctx.future_after,
              "in_flight_before": ctx.in_flight_before}
    for app, uuid, created, fp, future, in_flight in ctx.conn.execute(
            sql.SQL(_CANDIDATES).format(table=sql.Identifier(table)), params):
        rows[app].append(_Row(uuid, created, fp, future, in_flight))
    for copy in ctx.copies.get(table, {}).values():
        assert copy.new_created is not None and copy.new_uuid is not None
        rows[copy.app_uuid].append(_Row(copy.new_uuid, datetime.fromisoformat(copy.new_created), None))
    verified: list[str] = []
    fixes: list[_Fix] = []
    for app, tied in live.items():
        present = rows.get(app)
        if not present:
            continue
        top = max(r.created for r in present)
        holders = sorted(r.uuid for r in present if r.created == top)
        if len(tied) > 1:
            ctx.refuse(REPAIR, table, app, None,
                       f"the live release is ambiguous: v{', v'.join(str(t[1]) for t in sorted(tied, key=lambda t: t[1]))} "
                       "did not fail and share the newest created; make the order unambiguous first "
                       "(plan --repair release-order)")
            continue
        release, version, row, release_fp = tied[0]
        planned = copy_of(ctx, table, release)
        own = planned.new_uuid if planned else row
        if own is None:
            ctx.refuse(REPAIR, table, app, None,
                       f"the live release v{version} has no {kind}, but {kind}_set.latest() returns {holders[0]}: "
                       f"nothing of the live release's to date after it")
            continue
        own_row = next((r for r in present if r.uuid == own), None)
        if holders == [own] and not (own_row is not None and own_row.future):
            verified.append(app)
            continue
        young = [r for r in present if r.in_flight and r.uuid != own]
        if young:
            ctx.refuse(REPAIR, table, app, young[0].uuid,
                       f"the app has a {kind} created within the in-flight window ({ctx.grace_seconds:g}s before now "
                       f"to {ctx.skew_seconds:g}s after): a deploy may be in flight")
            continue
        fixes.append(_Fix(app, release, version, release_fp, own, planned, present))
    return verified + _plan_fixes(ctx, table, fixes)


def _plan_fixes(ctx: PlanningContext, table: str, fixes: list[_Fix]) -> list[str]:
    """Date each live release's own row (or its planned copy) after the app's other rows, moving
    future-dated rows back before it; returns the apps verified afterwards."""
    if not fixes:
        return []
    kind = kind_of(table)
    query = sql.SQL(_ROWS).format(table=sql.Identifier(table))
    own_rows = {r[0]: r for r in ctx.conn.execute(query, ([f.own for f in fixes if f.copy is None],))}
    calendar = Calendar(ctx.conn, table)
    calendar.prefetch(f.app for f in fixes if any(r.future for r in f.rows))
    for copy in ctx.copies.get(table, {}).values():
        calendar.reserve(copy.app_uuid, datetime.fromisoformat(str(copy.new_created)))
    done = []
    for fix in fixes:
        if fix.copy is not None:
            own_created = datetime.fromisoformat(str(fix.copy.new_created))
            own_fp = None
        else:
            found = own_rows.get(fix.own)
            if found is None:
                ctx.refuse(REPAIR, table, fix.app, fix.own, f"the live release v{fix.version} points at {kind} "
                                                            f"{fix.own}, which does not exist (dangling reference)")
                continue
            if found[1] != fix.app:
                ctx.refuse(REPAIR, table, fix.app, fix.own,
                           f"the live release v{fix.version} uses {kind} {fix.own} of app {found[1]} (cross-app "
                           "reference): not re-dating another app's row")
                continue
            own_created, own_fp = found[2], found[3]
        others = [Dated(r.uuid, r.created, movable=r.fingerprint is not None) for r in fix.rows if r.uuid != fix.own]
        newest = make_newest(fix.app, own_created, others, now=ctx.now, future_after=ctx.future_after,
                             not_after=ctx.in_flight_before, calendar=calendar)
        if newest is None:
            ctx.refuse(REPAIR, table, fix.app, fix.own,
                       f"making the live release v{fix.version}'s {kind} the newest would date it after now() "
                       "(a row is dated about now); plan again later")
            continue
        _record(ctx, table, fix, own_created, own_fp, newest.created, newest.moves)
        done.append(fix.app)
    return done


def _record(ctx: PlanningContext, table: str, fix: _Fix, own_created: datetime, own_fp: str | None,
            target: datetime, moves: tuple) -> None:
    """The actions of one fix: the live row re-dated (or its copy dated), future-dated rows moved back."""
    kind = kind_of(table)
    label = f"{kind}_set.latest()"
    release = dict(release=fix.release, release_version=fix.version, release_fingerprint=fix.release_fp)
    fingerprints = {r.uuid: r.fingerprint for r in fix.rows}
    if target != own_created and own_created > ctx.future_after:
        ctx.add(repair=REPAIR, kind="redate", table=table, app_uuid=fix.app, row=fix.own, fingerprint=own_fp,
                new_created=iso(target), **release,
                why=f"{label} is the live release v{fix.version}'s {kind}, dated {iso(own_created)}, after now() + "
                    f"{ctx.skew_seconds:g}s (future-dated): every {kind} the controller writes until then is dated "
                    f"before it, so {label} stays this row through every new {kind}; its created moves back to the "
                    f"app's newest other {kind} plus 1 microsecond (no repair dates a row after now())")
    elif target != own_created:
        newest = max(r.created for r in fix.rows if r.uuid != fix.own and not r.future)
        overtaken = sorted(r.uuid for r in fix.rows if r.uuid != fix.own and not r.future and r.created == newest)
        if fix.copy is not None:
            fix.copy.new_created = iso(target)
            fix.copy.why += (f"; dated after the app's newest {kind} instead (restore-latest), so {label} returns "
                             "the live release's")
        else:
            ctx.add(repair=REPAIR, kind="redate", table=table, app_uuid=fix.app, row=fix.own, fingerprint=own_fp,
                    new_created=iso(target), **release,
                    why=f"{label} would return {', '.join(overtaken)} (created {iso(newest)}), not the live release "
                        f"v{fix.version}'s {kind}; its created {iso(own_created)} becomes the app's newest plus "
                        "1 microsecond")
    for moved, at in moves:
        ctx.add(repair=REPAIR, kind="redate", table=table, app_uuid=fix.app, row=moved.uuid,
                fingerprint=fingerprints[moved.uuid], new_created=iso(at), **release,
                why=f"{kind} {moved.uuid} is dated {iso(moved.created)}, after now() + {ctx.skew_seconds:g}s "
                    f"(future-dated), so {label} returns it through every new {kind}; it moves back to just before "
                    f"the live release v{fix.version}'s {kind} (no repair dates a row after now(), so the live row "
                    "is never dated after it)")
