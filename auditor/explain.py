"""One app's story for ``controller-audit explain``: its releases, the rows they share, its
orphans, and what ``latest()`` returns compared with what it should.

Every query is scoped to the one app through indexed columns (``app_id``, ``config_id``,
``build_id``), so explaining an app costs the same on a database of any size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import sql

from auditor.detect import Generation
from auditor.errors import BadInput


@dataclass(frozen=True)
class ReleaseRow:
    """A release of the app."""

    uuid: str
    version: int
    created: datetime
    failed: bool
    summary: str | None
    config: str
    build: str | None


@dataclass(frozen=True)
class RowUse:
    """A config or build of the app and who uses it."""

    uuid: str
    created: datetime
    versions: tuple[int, ...]  # this app's releases using it
    foreign_uses: int  # other apps' releases using it (cross-app damage)

    @property
    def orphan(self) -> bool:
        return not self.versions and not self.foreign_uses


@dataclass(frozen=True)
class Latest:
    """What ``config_set.latest()`` / ``build_set.latest()`` returns and should return."""

    kind: str  # "config" or "build"
    today: RowUse | None
    ties: int  # rows sharing the newest ``created`` (>1: the answer is not deterministic)
    expected: str | None  # the live release's row

    @property
    def ok(self) -> bool:
        return self.today is not None and self.ties == 1 and self.today.uuid == self.expected


@dataclass
class AppStory:
    """Everything ``explain`` shows about one app."""

    name: str
    uuid: str
    releases: list[ReleaseRow]
    configs: dict[str, RowUse]
    builds: dict[str, RowUse]
    live: ReleaseRow | None
    latest: dict[str, Latest] = field(default_factory=dict)


def _release_sql(generation: Generation) -> sql.Composed:
    failed = sql.SQL("failed") if generation.has_failed else sql.SQL("false")
    return sql.SQL(
        "SELECT uuid::text, version, created, {}, summary, config_id::text, build_id::text "
        "FROM api_release WHERE app_id = %s ORDER BY version"
    ).format(failed)


def _uses(conn: psycopg.Connection, table: str, column: str, app_uuid: str) -> dict[str, RowUse]:
    # The app's releases are grouped once (a per-row subquery with ``app_id = ...`` made the
    # planner AND the app_id index, every release of the app, into each row's lookup).
    query = sql.SQL(
        "SELECT t.uuid::text, t.created, coalesce(u.versions, '{{}}'),"
        " (SELECT count(*) FROM api_release r WHERE r.{col} = t.uuid AND r.app_id <> t.app_id)"
        " FROM {table} t"
        " LEFT JOIN (SELECT {col} AS uuid, array_agg(version ORDER BY version) AS versions"
        "            FROM api_release WHERE app_id = %s GROUP BY {col}) u ON u.uuid = t.uuid"
        " WHERE t.app_id = %s ORDER BY t.created, t.uuid"
    ).format(col=sql.Identifier(column), table=sql.Identifier(table))
    return {row[0]: RowUse(row[0], row[1], tuple(row[2]), row[3])
            for row in conn.execute(query, (app_uuid, app_uuid)).fetchall()}


def _latest(kind: str, rows: dict[str, RowUse], expected: str | None) -> Latest:
    if not rows:
        return Latest(kind, None, 0, expected)
    newest = max(rows.values(), key=lambda r: r.created)
    ties = sum(1 for r in rows.values() if r.created == newest.created)
    return Latest(kind, newest, ties, expected)


def app_story(conn: psycopg.Connection, generation: Generation, name: str) -> AppStory:
    """Read one app's story; an unknown app is :class:`BadInput`."""
    row = conn.execute("SELECT uuid::text FROM api_app WHERE id = %s", (name,)).fetchone()
    if row is None:
        raise BadInput(f"no app named {name!r} in this database", kind="unknown app")
    app_uuid = row[0]
    releases = [ReleaseRow(*r) for r in conn.execute(_release_sql(generation), (app_uuid,)).fetchall()]
    live = next((r for r in reversed(releases) if not r.failed), None)
    configs = _uses(conn, "api_config", "config_id", app_uuid)
    builds = _uses(conn, "api_build", "build_id", app_uuid)
    story = AppStory(name, app_uuid, releases, configs, builds, live)
    story.latest = {
        "config": _latest("config", configs, live.config if live else None),
        "build": _latest("build", builds, live.build if live else None),
    }
    return story
