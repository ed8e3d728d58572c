"""unshare: give every release its own config and build (the 1:1 ledger).

For each config (build) used by more than one release, the earliest release using it (by
version) keeps the original; every other release gets a copy: a fresh uuid generated here,
the original's ``app_id`` and ``owner_id``, every content column verbatim, and ``created``
just before its release's (one microsecond, further back if that would tie another row of
the app; never after the plan's ``now()``, even for a release dated in the future; by the
dates release-order plans, if it is in the plan).  Only the release's ``config_id`` /
``build_id`` changes.  The rows are exactly those the shared-config and shared-build checks
report (their findings, in the plan's snapshot and scope): sharing is counted by row, across
apps; the releases of the row's own app are unshared, releases of other apps using it
(cross-app references) are left alone and listed as not repaired (which row they should use
cannot be known); a release pointing at a row that does not exist (dangling) shares nothing.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterable
from datetime import datetime
from itertools import groupby
from typing import NamedTuple

from psycopg import sql
from psycopg.rows import args_row

from repairs.context import PlanningContext, iso
from repairs.dating import Calendar
from repairs.model import POINTER, Action, kind_of

REPAIR = "unshare"

#: Every release using a row to unshare, numbered in version order per row, with the row's owner
#: and fingerprint, and whether the moment just before the release is taken by a row of its app.
_USERS = """
WITH users AS (
    SELECT r.uuid, r.app_id, r.version, r.created, r.{pointer} AS row_id, md5(r::text) AS fp,
           row_number() OVER (PARTITION BY r.{pointer} ORDER BY r.version, r.created, r.uuid) AS n
    FROM api_release r JOIN unnest(%(rows)s::uuid[]) AS s(row_id) ON s.row_id = r.{pointer}
)
SELECT u.row_id::text AS row_id, u.n, u.uuid::text AS release, u.app_id::text AS app, u.version, u.created,
       u.fp AS release_fp, x.app_id::text AS row_app, md5(x::text) AS row_fp, tk.app_id IS NOT NULL AS taken
FROM users u
JOIN {table} x ON x.uuid = u.row_id
LEFT JOIN (SELECT DISTINCT app_id, created FROM {table}
           WHERE %(everything)s OR app_id = ANY(%(apps)s::uuid[])) tk
       ON tk.app_id = u.app_id AND tk.created = u.created - interval '1 microsecond'
ORDER BY u.row_id, u.n
"""


class _User(NamedTuple):
    """A release using a row to unshare (:data:`_USERS`)."""

    row_id: str
    n: int
    release: str
    app: str
    version: int
    created: datetime
    release_fp: str
    row_app: str
    row_fp: str
    taken: bool


def plan(ctx: PlanningContext) -> None:
    """Plan a copy for every release of the row's app but the first, for each row the shared-config
    and shared-build checks report (a finding they mark for fixing by hand is refused with their reason)."""
    findings = ctx.findings(REPAIR)
    unshared_apps: set[str] = set()
    refused_apps: set[str] = set()
    for table, pointer in POINTER.items():
        mine = [f for f in findings if f.object_table == table]
        for finding in mine:
            if finding.manual is not None:
                ctx.refuse(REPAIR, table, str(finding.app_uuid), finding.object_id, finding.manual)
        rows = sorted(f.object_id for f in mine if f.manual is None)
        if not rows:
            continue
        calendar = Calendar(ctx.conn, table)
        copies = ctx.copies.setdefault(table, {})
        query = sql.SQL(_USERS).format(table=sql.Identifier(table), pointer=sql.Identifier(pointer))
        with ctx.conn.cursor(row_factory=args_row(_User)) as cur:
            users_of_rows = cur.execute(query, {**ctx.scope_params, "rows": rows}).fetchall()
        calendar.prefetch(u.app for u in users_of_rows if u.taken or u.release in ctx.release_created)
        for row_id, group in groupby(users_of_rows, key=lambda u: u.row_id):
            users = list(group)
            row_app = users[0].row_app
            foreign = [u for u in users if u.app != row_app]
            for app in sorted({u.app for u in foreign}):
                ctx.refuse(REPAIR, table, app, row_id,
                           f"releases {_versions(u for u in foreign if u.app == app)} use {kind_of(table)} {row_id} of "
                           f"app {ctx.app_names.get(row_app) or row_app} (cross-app reference): left alone, since "
                           "which row they should use cannot be known; fix them by hand")
                refused_apps.add(app)
            own = [u for u in users if u.app == row_app]
            if len(own) < 2:
                continue
            why = (f"shared by {len(own)} releases ({_versions(own)}); the original stays with v{own[0].version}, "
                   "each copy is dated just before its release")
            if foreign:
                why += f" (releases of other apps using it are left alone: {_versions(foreign)})"
            for user in own[1:]:
                moment = min(ctx.release_created.get(user.release, user.created), ctx.now)
                new_created = calendar.slot_before(user.app, moment, user.taken or moment != user.created)
                copies[user.release] = ctx.add(
                    repair=REPAIR, kind="copy", table=table, app_uuid=user.app, row=row_id, fingerprint=user.row_fp,
                    release=user.release, release_version=user.version, release_fingerprint=user.release_fp,
                    new_uuid=str(uuidlib.uuid4()), new_created=iso(new_created), why=why)
                unshared_apps.add(user.app)
    ctx.invariants.unshared = sorted(unshared_apps - refused_apps)


def _versions(users: Iterable[_User]) -> str:
    versions = [f"v{u.version}" for u in users]
    return ", ".join(versions[:6]) + (", ..." if len(versions) > 6 else "")


def copy_of(ctx: PlanningContext, table: str, release: str) -> Action | None:
    """The copy planned for ``release`` in ``table``, if any."""
    return ctx.copies.get(table, {}).get(release)
