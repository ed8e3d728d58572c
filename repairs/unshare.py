"""unshare: give every release its own config and build (the 1:1 ledger).

For each config (build) used by more than one release, the earliest release using it (by
version) keeps the original; every other release gets a copy: a fresh uuid generated here,
the original's ``app_id`` and ``owner_id``, every content column verbatim, and ``created``
just before its release's (one microsecond, further back if that would tie another row of
the app).  Only the release's ``config_id`` / ``build_id`` changes.  A shared row used across
apps, or a release pointing at a row that does not exist, is refused, never guessed at.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterable
from datetime import datetime
from itertools import groupby

from psycopg import sql

from repairs.context import MICROSECOND, PlanningContext, iso
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

_CREATED_OF_APPS = "SELECT app_id::text, created FROM {table} WHERE app_id = ANY(%s::uuid[])"


class _Calendar:
    """Which ``created`` values each app's rows of one table hold, loaded only where needed."""

    def __init__(self, ctx: PlanningContext, table: str) -> None:
        self.ctx = ctx
        self.table = table
        self.loaded: dict[str, set[datetime]] = {}
        self.new: dict[str, set[datetime]] = {}

    def prefetch(self, apps: Iterable[str]) -> None:
        """Load the taken ``created`` values of ``apps`` in one query (those known to collide)."""
        wanted = sorted(set(apps) - set(self.loaded))
        if not wanted:
            return
        for app in wanted:
            self.loaded[app] = set()
        query = sql.SQL(_CREATED_OF_APPS).format(table=sql.Identifier(self.table))
        for app, created in self.ctx.conn.execute(query, (wanted,)):
            self.loaded[app].add(created)

    def _existing(self, app: str) -> set[datetime]:
        if app not in self.loaded:
            query = sql.SQL(_CREATED_OF_APPS).format(table=sql.Identifier(self.table))
            self.loaded[app] = {row[1] for row in self.ctx.conn.execute(query, ([app],))}
        return self.loaded[app]

    def slot_before(self, app: str, moment: datetime, known_taken: bool) -> datetime:
        """The latest free moment strictly before ``moment`` for a new row of ``app``."""
        new = self.new.setdefault(app, set())
        candidate = moment - MICROSECOND
        if known_taken or candidate in new:
            taken = self._existing(app)
            while candidate in taken or candidate in new:
                candidate -= MICROSECOND
        elif app in self.loaded:
            while candidate in self.loaded[app] or candidate in new:
                candidate -= MICROSECOND
        new.add(candidate)
        return candidate


def plan(ctx: PlanningContext) -> None:
    """Plan a copy for every release but the first of each shared config and build."""
    unshared_apps: set[str] = set()
    refused_apps: set[str] = set()
    for table, pointer in POINTER.items():
        calendar = _Calendar(ctx, table)
        copies = ctx.copies.setdefault(table, {})
        query = sql.SQL(_USERS).format(table=sql.Identifier(table), pointer=sql.Identifier(pointer))
        rows = ctx.conn.execute(query, ctx.scope_params).fetchall()
        calendar.prefetch(row[3] for row in rows if row[10])
        for row_id, group in groupby(rows, key=lambda r: r[0]):
            users = list(group)
            refusal = _refusal(table, row_id, users)
            if refusal:
                for app in {u[3] for u in users}:
                    ctx.refuse(REPAIR, table, app, row_id, refusal)
                    refused_apps.add(app)
                continue
            why = (f"shared by {len(users)} releases ({_versions(users)}); the original stays with v{users[0][4]}, "
                   "each copy is dated just before its release")
            for _, _, release, app, version, created, fp, _, _, row_fp, taken in users[1:]:
                new_created = calendar.slot_before(app, created, taken)
                copies[release] = ctx.add(
                    repair=REPAIR, kind="copy", table=table, app_uuid=app, row=row_id, fingerprint=row_fp,
                    release=release, release_version=version, release_fingerprint=fp,
                    new_uuid=str(uuidlib.uuid4()), new_created=iso(new_created), why=why)
                unshared_apps.add(app)
    ctx.invariants.unshared = sorted(unshared_apps - refused_apps)


def _refusal(table: str, row_id: str, users: list[tuple]) -> str | None:
    exists, row_app = users[0][7], users[0][8]
    if not exists:
        return (f"releases {_versions(users)} point at {kind_of(table)} {row_id}, which does not exist "
                "(dangling reference): nothing to copy")
    foreign = sorted({u[3] for u in users if u[3] != row_app})
    if foreign:
        return (f"{kind_of(table)} {row_id} of app {row_app} is used by releases of other apps ({', '.join(foreign)}) "
                "(cross-app reference): not copying another app's row")
    return None


def _versions(users: Iterable[tuple]) -> str:
    versions = [f"v{u[4]}" for u in users]
    return ", ".join(versions[:6]) + (", ..." if len(versions) > 6 else "")


def copy_of(ctx: PlanningContext, table: str, release: str) -> Action | None:
    """The copy planned for ``release`` in ``table``, if any."""
    return ctx.copies.get(table, {}).get(release)
