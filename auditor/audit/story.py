"""One app's story for ``controller-audit explain``: its releases, the rows they share, its
orphans, and what ``latest()`` returns compared with what it should.

Every query is scoped to the one app through indexed columns (``app_id``, ``config_id``,
``build_id``), so explaining an app costs the same on a database of any size.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property, partial
from itertools import pairwise
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

from auditor.audit.apps import app_uuids, unknown_app
from auditor.core.detect import Generation
from auditor.core.settings import DEFAULT_SKEW_SECONDS


class ReleaseRow(NamedTuple):
    """A release of the app (a named tuple: a long history makes 10,000 of them, ten times faster
    than a frozen dataclass; change one with ``_replace``)."""

    uuid: str
    version: int
    created: datetime
    failed: bool
    summary: str | None
    config: str
    build: str | None


class RowUse(NamedTuple):
    """A config or build of the app and who uses it (a named tuple, as :class:`ReleaseRow`)."""

    uuid: str
    created: datetime
    versions: tuple[int, ...]  # this app's releases using it
    foreign_uses: int  # other apps' releases using it (cross-app damage)
    foreign_apps: tuple[str, ...] = ()  # the names of those apps: the cascade crosses into them

    @property
    def orphan(self) -> bool:
        return not self.versions and not self.foreign_uses


#: A release and a config/build use from their rows: the tuple's own constructor, without the named
#: tuple's Python-level ``__new__`` (10,000 rows each for the largest app).
_release_row = partial(tuple.__new__, ReleaseRow)
_row_use = partial(tuple.__new__, RowUse)


@dataclass(frozen=True)
class Latest:
    """What ``config_set.latest()`` / ``build_set.latest()`` returns and should return."""

    kind: str  # "config" or "build"
    today: RowUse | None
    ties: int  # rows sharing the newest ``created`` (>1: the answer is not deterministic)
    expected: str | None  # the live release's row
    future: bool = False  # the row it returns is dated after now() + skew

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
    #: The non-failed releases tied at the newest ``created`` (more than one: the controller's
    #: live release is ambiguous; ``live`` is the highest version among them).
    live_tied: tuple[ReleaseRow, ...] = ()
    #: ``release_set.latest()`` over every release (failed ones too): the newest by ``created``,
    #: whose version + 1 numbers the next release; ``newest_tied`` all rows at that ``created``.
    newest: ReleaseRow | None = None
    newest_tied: tuple[ReleaseRow, ...] = ()
    now: datetime | None = None  # the database's now() when the story was read
    skew_seconds: float = DEFAULT_SKEW_SECONDS
    migration: int = 0  # the schema's last api migration

    @property
    def highest(self) -> ReleaseRow | None:
        """The release with the highest version (the last in version order)."""
        return self.releases[-1] if self.releases else None

    @property
    def future_after(self) -> datetime | None:
        """now() + skew: a moment after it was written by a clock ahead of the database's."""
        return None if self.now is None else self.now + timedelta(seconds=self.skew_seconds)

    def future_dated(self, moment: datetime) -> bool:
        """Whether ``moment`` lies after now() + skew (written by a clock ahead of the database's)."""
        after = self.future_after
        return after is not None and moment > after

    @property
    def next_version(self) -> int | None:
        """The version the controller gives the next release (``release_set.latest().version + 1``)."""
        return None if self.newest is None else self.newest.version + 1

    @cached_property
    def order_broken(self) -> bool:
        """Whether the next deploy fails or is a coin toss: the newest release by ``created`` is
        not (alone) the highest version, or versions repeat."""
        if not self.releases:
            return False
        return (len(self.newest_tied) > 1 or self.newest is None or self.highest is None
                or self.newest.version != self.highest.version or bool(self.repeated_versions))

    @cached_property
    def repeated_versions(self) -> list[int]:
        """The versions more than one release holds, ascending (releases are in version order)."""
        return sorted({a.version for a, b in pairwise(self.releases) if a.version == b.version})


def _release_sql(generation: Generation) -> sql.Composed:
    failed = sql.SQL("failed") if generation.has_failed else sql.SQL("false")
    return sql.SQL(
        "SELECT uuid::text, version, created, {}, summary, config_id::text, build_id::text "
        "FROM api_release WHERE app_id = %s ORDER BY version, created, uuid"
    ).format(failed)


def _uses_sql() -> sql.Composed:
    """The app's configs and builds (``kind``, uuid, created) with other apps' releases using them.

    One statement for both tables.  Other apps' releases using the app's rows come from one scan
    of the pointer's index for the array of its rows (a lateral lookup per row was half of the
    story's time at 10,000 releases); the app's own releases using them are grouped in Python from
    the releases already read (:func:`_versions_by_row`).
    """
    parts = [sql.SQL(
        "SELECT {kind} AS kind, t.uuid, t.created, coalesce(f.uses, 0) AS uses, coalesce(f.apps, '{{}}') AS apps"
        " FROM {table} t"
        " LEFT JOIN (SELECT r.{col} AS uuid, count(*) AS uses,"
        "                   array_agg(DISTINCT coalesce(a.id, r.app_id::text)) AS apps"
        "            FROM api_release r LEFT JOIN api_app a ON a.uuid = r.app_id"
        "            WHERE r.{col} = ANY (ARRAY(SELECT uuid FROM {table} WHERE app_id = %(app)s))"
        "              AND r.app_id <> %(app)s GROUP BY r.{col}) f ON f.uuid = t.uuid"
        " WHERE t.app_id = %(app)s"
    ).format(kind=sql.Literal(kind), col=sql.Identifier(column), table=sql.Identifier(table))
        for kind, table, column in (("config", "api_config", "config_id"), ("build", "api_build", "build_id"))]
    return sql.SQL("SELECT kind, uuid::text, created, uses, apps FROM ({} UNION ALL {}) s"
                   " ORDER BY kind, created, uuid").format(*parts)


def _versions_by_row(releases: list[ReleaseRow]) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """The versions of the app's releases using each config and each build, ascending (the
    releases are in version order)."""
    configs: dict[str, list[int]] = {}
    builds: dict[str, list[int]] = {}
    for rel in releases:
        configs.setdefault(rel.config, []).append(rel.version)
        if rel.build is not None:
            builds.setdefault(rel.build, []).append(rel.version)
    return configs, builds


def _uses(rows: list[tuple[str, str, datetime, int, list[str]]],
          releases: list[ReleaseRow]) -> tuple[dict[str, RowUse], dict[str, RowUse]]:
    """The app's configs and builds from the rows of :func:`_uses_sql`, each by created then uuid,
    with who uses them."""
    versions = dict(zip(("config", "build"), _versions_by_row(releases), strict=True))
    found: dict[str, dict[str, RowUse]] = {"config": {}, "build": {}}
    for kind, uuid, created, uses, apps in rows:
        mine = versions[kind].get(uuid)
        found[kind][uuid] = _row_use((uuid, created, tuple(mine) if mine else (), uses, tuple(apps) if apps else ()))
    return found["config"], found["build"]


def _latest(kind: str, rows: dict[str, RowUse], expected: str | None, story: AppStory) -> Latest:
    if not rows:
        return Latest(kind, None, 0, expected)
    newest = max(rows.values(), key=lambda r: r.created)
    ties = sum(1 for r in rows.values() if r.created == newest.created)
    return Latest(kind, newest, ties, expected, story.future_dated(newest.created))


def newest_of(releases: list[ReleaseRow]) -> tuple[ReleaseRow, ...]:
    """The releases sharing the greatest ``created``, highest version first: what ``latest()``
    (``ORDER BY created DESC LIMIT 1``, no tiebreak) may return."""
    if not releases:
        return ()
    top = max(r.created for r in releases)
    return tuple(sorted((r for r in releases if r.created == top), key=lambda r: r.version, reverse=True))


class PendingStory:
    """One app's story, its statements sent (:func:`send_story`) and read later (:meth:`read`)."""

    def __init__(self, conn: psycopg.Connection, generation: Generation, name: str, app_uuid: str,
                 skew_seconds: float = DEFAULT_SKEW_SECONDS, clock: psycopg.Cursor[Any] | None = None) -> None:
        self.generation, self.name, self.app_uuid, self.skew_seconds = generation, name, app_uuid, skew_seconds
        self._now = conn.execute("SELECT now()") if clock is None else clock
        self._releases = conn.execute(_release_sql(generation), (app_uuid,))
        self._uses = conn.execute(_uses_sql(), {"app": app_uuid})

    def read(self) -> AppStory:
        """The story (in a pipeline: each statement's rows are waited for when read)."""
        row = self._now.fetchone()
        assert row is not None
        releases = list(map(_release_row, self._releases.fetchall()))
        configs, builds = _uses(self._uses.fetchall(), releases)
        return _story(self.generation, self.name, self.app_uuid, row[0], releases, configs, builds,
                      self.skew_seconds)


def send_story(conn: psycopg.Connection, generation: Generation, name: str, app_uuid: str,
               skew_seconds: float = DEFAULT_SKEW_SECONDS, clock: psycopg.Cursor[Any] | None = None) -> PendingStory:
    """Send the statements of the story of the app ``name`` (uuid ``app_uuid``, already resolved):
    inside a pipeline the server reads them while the caller goes on.  ``clock``: a cursor that
    read ``now()`` on another connection in the same snapshot (the audit's), the story's clock."""
    return PendingStory(conn, generation, name, app_uuid, skew_seconds, clock)


def app_story(conn: psycopg.Connection, generation: Generation, name: str,
              skew_seconds: float = DEFAULT_SKEW_SECONDS, pipeline: bool | None = None) -> AppStory:
    """Read one app's story; an unknown app is :class:`BadInput`.  ``pipeline``: send the story's
    statements at once (default: when the client library supports it, libpq 14 and later).

    The live release is the controller's: the newest by ``created`` among the releases that
    did not fail (``release_set.filter(failed=False).latest()``), not the highest version.
    """
    row = conn.execute("SELECT uuid::text FROM api_app WHERE id = %s", (name,)).fetchone()
    if row is None and (shown := app_uuids(conn, [name]).get(name)) is not None:
        row = (shown,)  # SQL_ASCII: the name as shown
    if row is None:
        raise unknown_app(conn, [name])
    # The statements are sent at once (pipeline mode, libpq 14 and later): the server reads the
    # configs and builds while the releases are turned into objects here.
    if pipeline is None:
        pipeline = psycopg.Pipeline.is_supported()
    with conn.pipeline() if pipeline else nullcontext():
        return send_story(conn, generation, name, row[0], skew_seconds).read()


def _story(generation: Generation, name: str, app_uuid: str, now: datetime, releases: list[ReleaseRow],
           configs: dict[str, RowUse], builds: dict[str, RowUse], skew_seconds: float) -> AppStory:
    live_tied = newest_of([r for r in releases if not r.failed])
    live = live_tied[0] if live_tied else None
    newest_tied = newest_of(releases)
    story = AppStory(name, app_uuid, releases, configs, builds, live, live_tied=live_tied,
                     newest=newest_tied[0] if newest_tied else None, newest_tied=newest_tied, now=now,
                     skew_seconds=skew_seconds, migration=generation.migration)
    story.latest = {
        "config": _latest("config", configs, live.config if live else None, story),
        "build": _latest("build", builds, live.build if live else None, story),
    }
    return story
