"""unshare: give every release its own config and build (the 1:1 ledger).

For each config (build) used by more than one release, the earliest release using it (by
version) keeps the original; every other release gets a copy: a fresh uuid generated here,
the original's ``app_id`` and ``owner_id``, every content column verbatim, and ``created``
just before its release's (one microsecond, further back if that would tie another row of
the app; never after the plan's ``now()``, even for a release dated in the future; by the
dates release-order plans, if it is in the plan).  Only the release's ``config_id`` /
``build_id`` changes.  Sharing is counted by row, across apps: the releases of the row's own
app are unshared, releases of other apps using it (cross-app references) are left alone and
listed as not repaired (which row they should use cannot be known), and a release pointing
at a row that does not exist (dangling) is refused, never guessed at.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterable
from itertools import groupby

from psycopg import sql

from repairs.context import PlanningContext, iso
from repairs.dating import Calendar
from repairs.model import POINTER, Action, kind_of

REPAIR = "unshare"

_USERS = """
WITH scoped AS (
    SELECT {pointer} AS row_id FROM api_release
    WHERE {pointer} IS NOT NULL AND (%(everything)s OR app_id = ANY(%(apps)s::uuid[]))
), shared AS (
    SELECT {pointer} AS row_id FROM api_release
    WHERE {pointer} IN (SELECT row_id FROM scoped)
    GROUP BY {pointer} HAVING count(*) > 1
), users AS (
    SELECT r.uuid, r.app_id, r.version, r.created, r.{pointer} AS row_id, md5(r::text) AS fp,
           row_number() OVER (PARTITION BY r.{pointer} ORDER BY r.version, r.created, r.uuid) AS n
    FROM api_release r JOIN shared s ON s.row_id = r.{pointer}
)
SELECT u.row_id::text, u.n, u.uuid::text, u.app_id::text, u.version, u.created, u.fp,
       x.uuid IS NOT NULL, x.app_id::text, md5(x::text), tk.app_id IS NOT NULL
FROM users u
LEFT JOIN {table} x ON x.uuid = u.row_id
LEFT JOIN (SELECT DISTINCT app_id, created FROM {table}
           WHERE %(everything)s OR app_id = ANY(%(apps)s::uuid[])) tk
       ON tk.app_id = u.app_id AND tk.created = u.created - interval '1 microsecond'
ORDER BY u.row_id, u.n
"""


def plan(ctx: PlanningContext) -> None:
    """Plan a copy for every release of the row's app but the first, for each shared config and build."""
    unshared_apps: set[str] = set()
    refused_apps: set[str] = set()
    for table, pointer in POINTER.items():
        calendar = Calendar(ctx.conn, table)
        copies = ctx.copies.setdefault(table, {})
        query = sql.SQL(_USERS).format(table=sql.Identifier(table), pointer=sql.Identifier(pointer))
        rows = ctx.conn.execute(query, ctx.scope_params).fetchall()
        calendar.prefetch(row[3] for row in rows if row[10] or row[2] in ctx.release_created)
        for row_id, group in groupby(rows, key=lambda r: r[0]):
            users = list(group)
            refusal = _refusal(table, row_id, users)
            if refusal:
                for app in {u[3] for u in users}:
                    ctx.refuse(REPAIR, table, app, row_id, refusal)
                    refused_apps.add(app)
                continue
            row_app = users[0][8]
            foreign = [u for u in users if u[3] != row_app]
            for app in sorted({u[3] for u in foreign}):
                ctx.refuse(REPAIR, table, app, row_id,
                           f"releases {_versions(u for u in foreign if u[3] == app)} use {kind_of(table)} {row_id} of "
                           f"app {ctx.app_names.get(row_app) or row_app} (cross-app reference): left alone, since "
                           "which row they should use cannot be known; fix them by hand")
                refused_apps.add(app)
            own = [u for u in users if u[3] == row_app]
            if len(own) < 2:
                continue
            why = (f"shared by {len(own)} releases ({_versions(own)}); the original stays with v{own[0][4]}, "
                   "each copy is dated just before its release")
            if foreign:
                why += f" (releases of other apps using it are left alone: {_versions(foreign)})"
            for _, _, release, app, version, created, fp, _, _, row_fp, taken in own[1:]:
                moment = min(ctx.release_created.get(release, created), ctx.now)
                new_created = calendar.slot_before(app, moment, taken or moment != created)
                copies[release] = ctx.add(
                    repair=REPAIR, kind="copy", table=table, app_uuid=app, row=row_id, fingerprint=row_fp,
                    release=release, release_version=version, release_fingerprint=fp,
                    new_uuid=str(uuidlib.uuid4()), new_created=iso(new_created), why=why)
                unshared_apps.add(app)
    ctx.invariants.unshared = sorted(unshared_apps - refused_apps)


def _refusal(table: str, row_id: str, users: list[tuple]) -> str | None:
    exists = users[0][7]
    if not exists:
        return (f"releases {_versions(users)} point at {kind_of(table)} {row_id}, which does not exist "
                "(dangling reference): nothing to copy")
    return None


def _versions(users: Iterable[tuple]) -> str:
    versions = [f"v{u[4]}" for u in users]
    return ", ".join(versions[:6]) + (", ..." if len(versions) > 6 else "")


def copy_of(ctx: PlanningContext, table: str, release: str) -> Action | None:
    """The copy planned for ``release`` in ``table``, if any."""
    return ctx.copies.get(table, {}).get(release)
