"""What deleting a config, build or app through the controller's ORM would delete with it.

Derived from the ORM's ``on_delete`` rules (``../shared/controller-schema.md`` section 2),
not from the database's foreign keys (which are ``NO ACTION``): App cascades to its
configs, builds, releases, domains, settings, TLS and services; a Config or Build cascades
to every release referencing it, whatever app that release belongs to; a Release cascades
to nothing.  Counts come first; the release list is capped.  Every query is indexed
(``app_id``, ``config_id``, ``build_id``, primary keys).  Releases are counted by row, across
apps: when they belong to other apps the cascade crosses into them (``foreign_apps``).  The
live release of each app is the controller's: the newest by ``created`` that did not fail.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import sql

from auditor.audit.apps import app_uuids, unknown_app
from auditor.core.detect import Generation
from auditor.core.errors import BadInput
from auditor.core.values import DEFAULT_LIMIT

#: Tables whose rows the ORM deletes with their app (``app_id`` CASCADE), where they exist.
APP_CHILDREN: tuple[str, ...] = (
    "api_config", "api_build", "api_release", "api_domain", "api_appsettings", "api_tls", "api_service",
    "api_push", "api_container",
)


@dataclass(frozen=True)
class DoomedRelease:
    """A release the delete would take with it."""

    app: str | None
    version: int
    uuid: str
    created: datetime
    failed: bool
    live: bool


@dataclass
class BlastRadius:
    """Rows per table a delete would remove, and the releases among them."""

    kind: str  # config | build | app
    subject: str  # the uuid, or the app name
    app: str | None
    counts: dict[str, int] = field(default_factory=dict)
    releases: list[DoomedRelease] = field(default_factory=list)  # capped
    release_total: int = 0
    live_hit: list[DoomedRelease] = field(default_factory=list)
    foreign_releases: int = 0  # other apps' releases taken along (cross-app references)
    foreign_apps: list[str] = field(default_factory=list)  # the apps the cascade crosses into

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _not_failed(generation: Generation, alias: str) -> sql.Composable:
    if generation.has_failed:
        return sql.SQL("NOT {}.failed").format(sql.Identifier(alias))
    return sql.SQL("true")


def _newest(alias: str) -> sql.Composable:
    """``ORDER BY`` of ``latest()``: newest ``created`` first (ties: the highest version stands for them)."""
    return sql.SQL("{0}.created DESC, {0}.version DESC, {0}.uuid DESC").format(sql.Identifier(alias))


def _failed(generation: Generation) -> sql.Composable:
    return sql.SQL("r.failed") if generation.has_failed else sql.SQL("false")


def _release_select(generation: Generation, where: sql.Composable) -> sql.Composed:
    """Releases matching ``where`` with their app name and whether each is its app's live one.

    Parameters: those of ``where`` and ``%(limit)s``.
    """
    return sql.SQL("""
        SELECT a.id, r.version, r.uuid::text, r.created, {failed},
               r.uuid = (SELECT l.uuid FROM api_release l WHERE l.app_id = r.app_id AND {live}
                         ORDER BY {newest} LIMIT 1) AS live
        FROM api_release r LEFT JOIN api_app a ON a.uuid = r.app_id
        WHERE {where}
        ORDER BY a.id, r.version, r.uuid
        LIMIT %(limit)s""").format(failed=_failed(generation), live=_not_failed(generation, "l"), where=where,
                                   newest=_newest("l"))


def _live_hit(conn: psycopg.Connection, generation: Generation, column: str, row_uuid: str) -> list[DoomedRelease]:
    query = sql.SQL("""
        SELECT a.id, l.version, l.uuid::text, l.created, false, true
        FROM (SELECT DISTINCT app_id FROM api_release WHERE {col} = %(row)s) x
        JOIN LATERAL (SELECT r.uuid, r.version, r.created, r.config_id, r.build_id FROM api_release r
                      WHERE r.app_id = x.app_id AND {live} ORDER BY {newest} LIMIT 1) l ON true
        LEFT JOIN api_app a ON a.uuid = x.app_id
        WHERE l.{col} = %(row)s
        ORDER BY a.id""").format(col=sql.Identifier(column), live=_not_failed(generation, "r"), newest=_newest("r"))
    return [DoomedRelease(*r) for r in conn.execute(query, {"row": row_uuid}).fetchall()]


def _parse_uuid(kind: str, value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise BadInput(f"{value!r} is not a {kind} uuid", kind="bad input") from None


def row_blast_radius(conn: psycopg.Connection, generation: Generation, kind: str, value: str,
                     limit: int = DEFAULT_LIMIT) -> BlastRadius:
    """Deleting config or build ``value``: the row and every release referencing it."""
    table, column = ("api_config", "config_id") if kind == "config" else ("api_build", "build_id")
    row_uuid = _parse_uuid(kind, value)
    found = conn.execute(
        sql.SQL("SELECT a.id, t.app_id FROM {} t LEFT JOIN api_app a ON a.uuid = t.app_id WHERE t.uuid = %s").format(
            sql.Identifier(table)),
        (row_uuid,),
    ).fetchone()
    if found is None:
        raise BadInput(f"no {kind} with uuid {row_uuid} in this database", kind=f"unknown {kind}")
    radius = BlastRadius(kind, row_uuid, found[0])
    count = conn.execute(sql.SQL("SELECT count(*) FROM api_release WHERE {} = %s").format(sql.Identifier(column)),
                         (row_uuid,)).fetchone()
    radius.release_total = count[0] if count else 0
    radius.counts = {table: 1, "api_release": radius.release_total}
    where = sql.SQL("r.{} = %(row)s").format(sql.Identifier(column))
    rows = conn.execute(_release_select(generation, where), {"row": row_uuid, "limit": limit}).fetchall()
    radius.releases = [DoomedRelease(*r) for r in rows]
    radius.live_hit = _live_hit(conn, generation, column, row_uuid)
    foreign = conn.execute(
        sql.SQL("SELECT count(*), array_agg(DISTINCT coalesce(a.id, r.app_id::text)) FROM api_release r "
                "LEFT JOIN api_app a ON a.uuid = r.app_id WHERE r.{} = %s AND r.app_id IS DISTINCT FROM %s").format(
            sql.Identifier(column)),
        (row_uuid, found[1]),
    ).fetchone()
    radius.foreign_releases = foreign[0] if foreign else 0
    radius.foreign_apps = sorted(foreign[1] or []) if foreign else []
    return radius


_FOREIGN_RELEASES = """
    SELECT r.uuid FROM api_release r JOIN api_config c ON c.uuid = r.config_id
    WHERE c.app_id = %(app)s AND r.app_id <> %(app)s
    UNION
    SELECT r.uuid FROM api_release r JOIN api_build b ON b.uuid = r.build_id
    WHERE b.app_id = %(app)s AND r.app_id <> %(app)s"""


def app_blast_radius(conn: psycopg.Connection, generation: Generation, name: str,
                     limit: int = DEFAULT_LIMIT, allowed: tuple[str, ...] = ()) -> BlastRadius:
    """Deleting app ``name``: its rows in every child table, and other apps' releases on its configs/builds."""
    app_uuid = app_uuids(conn, [name]).get(name)
    if app_uuid is None:
        raise unknown_app(conn, [name], allowed)
    radius = BlastRadius("app", name, name, counts={"api_app": 1})
    present = {r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relname = ANY(%s::text[]) "
        "AND c.relkind = 'r' AND pg_catalog.pg_table_is_visible(c.oid)", (list(APP_CHILDREN),)).fetchall()}
    for table in APP_CHILDREN:
        if table in present:
            row = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE app_id = %s").format(sql.Identifier(table)),
                               (app_uuid,)).fetchone()
            radius.counts[table] = row[0] if row else 0
    foreign = conn.execute(
        sql.SQL("SELECT count(*), array_agg(DISTINCT coalesce(a.id, r.app_id::text)) FROM ({}) x "
                "JOIN api_release r ON r.uuid = x.uuid LEFT JOIN api_app a ON a.uuid = r.app_id").format(
            sql.SQL(_FOREIGN_RELEASES)),
        {"app": app_uuid}).fetchone()
    radius.foreign_releases = foreign[0] if foreign else 0
    radius.foreign_apps = sorted(foreign[1] or []) if foreign else []
    radius.counts["api_release"] = radius.counts.get("api_release", 0) + radius.foreign_releases
    radius.release_total = radius.counts["api_release"]
    where = sql.SQL("r.uuid IN (SELECT uuid FROM api_release WHERE app_id = %(app)s UNION {})").format(
        sql.SQL(_FOREIGN_RELEASES))
    rows = conn.execute(_release_select(generation, where), {"app": app_uuid, "limit": limit}).fetchall()
    radius.releases = [DoomedRelease(*r) for r in rows]
    live = conn.execute(
        sql.SQL("SELECT a.id, r.version, r.uuid::text, r.created, false, true FROM api_release r"
                " JOIN api_app a ON a.uuid = r.app_id WHERE r.app_id = %s AND {} ORDER BY {} LIMIT 1"
                ).format(_not_failed(generation, "r"), _newest("r")),
        (app_uuid,),
    ).fetchall()
    radius.live_hit = [DoomedRelease(*r) for r in live]
    if radius.foreign_releases:
        where_foreign = sql.SQL("r.uuid IN ({})").format(sql.SQL(_FOREIGN_RELEASES))
        others = conn.execute(_release_select(generation, where_foreign),
                              {"app": app_uuid, "limit": radius.foreign_releases}).fetchall()
        radius.live_hit += [DoomedRelease(*r) for r in others if r[5]]
    return radius
