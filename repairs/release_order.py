"""release-order (opt-in): make each app's highest version its newest release by ``created``.

The controller numbers the next release ``release_set.latest().version + 1`` (newest by
``created`` over all releases) and takes the newest non-failed release by ``created`` as the
live one.  When the newest is not the highest version, or releases tie on ``created``, every
deploy of the app fails on ``UNIQUE(app_id, version)`` (``controller-schema.md`` §8).  The
smallest change that fixes it, for exactly the apps the release-order check reports (its findings, in
the plan's snapshot, scope and clock): date the highest version 1 µs after the app's newest other
release (a release dated in the future is moved back just before it instead: no repair dates
a row after ``now()``).  Where the highest version failed and releases that did not fail tie
for the live release, the highest of those is first made the newest among them the same way.
Only ``created`` of the releases named changes (an invariant checks it); doing so can change
which release the controller considers live, and each action says so.  Apps whose versions
repeat are refused: which row keeps the number cannot be known.  Opt-in (``--repair
release-order``), planned before unshare and restore-latest, which plan on its dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import groupby

from psycopg import sql

from repairs.context import PlanningContext, iso
from repairs.dating import Calendar, Dated, make_newest

REPAIR = "release-order"

_RELEASES = """
SELECT app_id::text, uuid::text, version, created, {failed}, md5(r::text)
FROM api_release r WHERE app_id = ANY(%s::uuid[]) ORDER BY app_id, version, created, uuid
"""


@dataclass
class _Release:
    uuid: str
    version: int
    created: datetime
    failed: bool
    fingerprint: str


def _newest(releases: list[_Release], dates: dict[str, datetime]) -> list[_Release]:
    """The releases at the greatest ``created`` (by ``dates``), highest version first."""
    if not releases:
        return []
    top = max(dates[r.uuid] for r in releases)
    return sorted((r for r in releases if dates[r.uuid] == top), key=lambda r: r.version, reverse=True)


def _versions(releases: list[_Release]) -> str:
    return ", ".join(f"v{r.version}" for r in sorted(releases, key=lambda r: r.version))


def plan(ctx: PlanningContext) -> None:
    """Plan, for every app the release-order check reports, the re-dating that fixes it (an app it
    marks for fixing by hand, whose versions repeat, is refused with its reason)."""
    failed = sql.SQL("failed" if ctx.generation.has_failed else "false")
    apps = []
    for finding in ctx.findings(REPAIR):
        if finding.manual is not None:
            ctx.refuse(REPAIR, "api_release", str(finding.app_uuid), None, finding.manual)
        else:
            apps.append(str(finding.app_uuid))
    if not apps:
        return
    rows = ctx.conn.execute(sql.SQL(_RELEASES).format(failed=failed), (apps,)).fetchall()
    calendar = Calendar(ctx.conn, "api_release")
    for app, group in groupby(rows, key=lambda r: r[0]):
        releases = [_Release(*r[1:]) for r in group]
        calendar.know(app, (r.created for r in releases))
        _plan_app(ctx, app, releases, calendar)


def _plan_app(ctx: PlanningContext, app: str, releases: list[_Release], calendar: Calendar) -> None:
    young = [r for r in releases if ctx.in_flight(r.created)]
    if young:
        ctx.refuse(REPAIR, "api_release", app, young[0].uuid,
                   f"release v{young[0].version} was created within the in-flight window ({ctx.grace_seconds:g}s "
                   f"before now to {ctx.skew_seconds:g}s after): a deploy may be in flight")
        return
    dates = {r.uuid: r.created for r in releases}
    ok = [r for r in releases if not r.failed]
    live_before = _newest(ok, dates)
    newest_before = _newest(releases, dates)
    highest = releases[-1]
    # The highest version failed and releases that did not fail tie for the live release: the
    # highest of those becomes the newest among them first (it stays before the highest version).
    if highest.failed and len(live_before) > 1:
        top_ok = max(ok, key=lambda r: r.version)
        if not _settle(ctx, app, top_ok, [r for r in ok if r is not top_ok], dates, calendar):
            return
    if not _settle(ctx, app, highest, [r for r in releases if r is not highest], dates, calendar):
        return
    changed = [r for r in releases if dates[r.uuid] != r.created]
    live_after = _newest(ok, dates)
    why = _why(newest_before, live_before, live_after, highest)
    for release in sorted(changed, key=lambda r: r.version):
        ctx.release_created[release.uuid] = dates[release.uuid]
        what = (f"v{release.version}'s created {iso(release.created)} becomes {iso(dates[release.uuid])}"
                + (" (it was dated in the future; moved back, never overtaken)" if release.created > ctx.future_after
                   else ""))
        ctx.add(repair=REPAIR, kind="redate", table="api_release", app_uuid=app, row=release.uuid,
                fingerprint=release.fingerprint, release=release.uuid, release_version=release.version,
                release_fingerprint=release.fingerprint, new_created=iso(dates[release.uuid]),
                why=f"{why}; {what}")
    ctx.invariants.release_order.append(app)


def _settle(ctx: PlanningContext, app: str, row: _Release, others: list[_Release], dates: dict[str, datetime],
            calendar: Calendar) -> bool:
    """Make ``row`` strictly the newest of ``others`` (in ``dates``); False (refused) if that
    would date it after now."""
    newest = make_newest(app, dates[row.uuid], [Dated(o.uuid, dates[o.uuid]) for o in others], now=ctx.now,
                         future_after=ctx.future_after, not_after=ctx.in_flight_before, calendar=calendar)
    if newest is None:
        ctx.refuse(REPAIR, "api_release", app, row.uuid,
                   f"making v{row.version} the newest release would date it after now(): a release is dated "
                   "(almost) now; plan again later")
        return False
    dates[row.uuid] = newest.created
    for moved, at in newest.moves:
        dates[moved.uuid] = at
    return True


def _why(newest: list[_Release], live_before: list[_Release], live_after: list[_Release], highest: _Release) -> str:
    """Why an app's releases are re-dated, and what it changes for the controller."""
    if len(newest) > 1:
        problem = (f"releases {_versions(newest)} share the newest created: release_set.latest() returns any of "
                   "them and numbers the next release from it")
    elif newest[0] is not highest:
        problem = (f"release_set.latest() (the newest release by created) is v{newest[0].version}, not the highest "
                   f"version v{highest.version}: the next release would be v{newest[0].version + 1}, and deploys "
                   "fail on UNIQUE(app_id, version)")
    else:
        problem = f"releases {_versions(live_before)} did not fail and share the live release's created"
    if len(live_before) > 1:
        live = f"the live release, ambiguous between {_versions(live_before)}, becomes v{live_after[0].version}"
    elif live_before and live_after and live_before[0] is not live_after[0]:
        live = (f"THIS CHANGES THE LIVE RELEASE: the controller's live release (newest by created, not failed) "
                f"becomes v{live_after[0].version} instead of v{live_before[0].version}")
    else:
        live = "the live release stays " + (f"v{live_after[0].version}" if live_after else "none")
    return f"{problem}; after this v{highest.version} is the newest release and {live}"
