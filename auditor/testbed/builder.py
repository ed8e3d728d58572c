"""Writes app histories into a controller database the way the controller itself does.

Each method is one controller operation (``apps:create``, ``config:set``, a build push,
``releases:rollback``, a failed deploy of either era) and writes exactly the rows that
operation leaves behind, with explicit timestamps, so that tests read as an app's story::

    ctl = Controller(conn)
    web = ctl.create_app("web")          # v1: initial config, no build
    web.push(image="web:1")              # v2: new build, shares v1's config
    web.config_set(DEBUG="1")            # v3: new config, shares v2's build
    web.failed_config_set(DEBUG="0")     # old era: orphan config; new era: failed v4
    web.rollback(2)                      # v5 shares v2's config and build

Eras (``../shared/controller-schema.md`` section 4): ``"A"`` is Deis before 0020, where a
failed deploy deletes only its release (leaving its new config or build behind); ``"C"`` is
Deis 2.7+ and Hephy, where failed releases stay with ``failed = true``.  As in the controller
(§8), a ``config:set`` merges over the live release's config (Deis v2.1 on: every schema the
test bed builds), the next version is the newest release by ``created`` plus one, and the
live release is the newest by ``created`` that did not fail.

What the controller's ORM never writes is written with raw SQL by the methods of the last
section (a clock that went backwards or ran ahead is just an operation ``at`` that time):
``tie_releases`` (SQL ``now()`` in one transaction), ``redate_release`` (a hand edit),
``duplicate_version`` (after ``Controller.drop_release_unique``), ``point_at`` (a cross-app
reference).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from psycopg import sql

from auditor.core.detect import Generation, detect

DEFAULT_START = datetime(2020, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Release:
    """A release row as written."""

    uuid: str
    version: int
    config: str
    build: str | None
    failed: bool
    created: datetime


def _json(value: Any) -> str:
    return json.dumps(value)


class Controller:
    """A stand-in for the controller's ORM writes, on one connection (autocommit is fine).

    What a person or a script does by hand beside the controller (re-dating rows, dropping a
    constraint, pointing a release at another app's row) is the tests' own (``tests/damage.py``).
    """

    #: The class of the apps it makes (the tests' adds the hand-made damage).
    app_type: type[App]

    def __init__(
        self,
        conn: psycopg.Connection,
        *,
        era: str | None = None,
        start: datetime = DEFAULT_START,
        step: timedelta = timedelta(minutes=1),
        ledger: bool = False,
    ) -> None:
        self.conn = conn
        #: Ledger form: every release owns its config and build rows (a reused row is copied,
        #: the copy dated just before the release), as after the 1:1 ledger repair.
        self.ledger = ledger
        self.generation: Generation = detect(conn)
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE and not conn.autocommit:
            conn.commit()
        self.era = era or ("C" if self.generation.has_failed else "A")
        self.clock = start
        self.step = step
        self._users: dict[str, int] = {}

    # -- time -------------------------------------------------------------------------
    def tick(self, at: datetime | None = None) -> datetime:
        """The time of the next operation: ``at`` if given, else one step after the last."""
        self.clock = at if at is not None else self.clock + self.step
        return self.clock

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Write many operations in one transaction (fast bulk histories; all or nothing)."""
        with self.conn.transaction():
            yield

    # -- rows ------------------------------------------------------------------------
    def user(self, username: str = "alice") -> int:
        """The id of user ``username``, created on first use."""
        if username not in self._users:
            existing = self.conn.execute("SELECT id FROM auth_user WHERE username = %s", (username,)).fetchone()
            if existing is not None:
                found: int = existing[0]
                self._users[username] = found
                return found
            row = self.conn.execute(
                "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email,"
                " is_staff, is_active, date_joined) VALUES ('!', false, %s, '', '', '', false, true, %s)"
                " RETURNING id",
                (username, self.clock),
            ).fetchone()
            assert row is not None
            self._users[username] = row[0]
        return self._users[username]

    def insert(self, table: str, values: dict[str, Any]) -> None:
        """Insert one row, filling the JSON columns this generation has with ``'{}'``."""
        present = self.generation.columns[table]
        row = {c: "{}" for c in _JSON_DEFAULTS.get(table, ()) if c in present}
        row.update({k: v for k, v in values.items() if k in present})
        stmt = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(table),
            sql.SQL(", ").join(map(sql.Identifier, row)),
            sql.SQL(", ").join(sql.Placeholder() * len(row)),
        )
        self.conn.execute(stmt, list(row.values()))

    def create_app(self, name: str, owner: str = "alice", at: datetime | None = None) -> App:
        """``apps:create``: the app, its initial empty config and release v1 without a build."""
        app = self.failed_create_app(name, owner, at)
        config = app.latest_config()
        app.new_release(config, None, f"{owner} created initial release", self.clock + timedelta(milliseconds=1))
        return app

    def failed_create_app(self, name: str, owner: str = "alice", at: datetime | None = None) -> App:
        """``apps:create`` that failed half-way: the app and its initial config, no release v1."""
        when = self.tick(at)
        owner_id = self.user(owner)
        app_uuid = str(uuid.uuid4())
        self.insert(
            "api_app",
            {"uuid": app_uuid, "created": when, "updated": when, "id": name, "owner_id": owner_id},
        )
        app = self.app_type(self, app_uuid, name, owner_id, owner)
        app.new_config({}, when)
        return app


_JSON_DEFAULTS: dict[str, tuple[str, ...]] = {
    "api_app": ("structure", "procfile_structure"),
    "api_config": (
        "values", "memory", "cpu", "tags", "registry", "healthcheck",
        "lifecycle_post_start", "lifecycle_pre_stop", "termination_grace_period",
    ),
    "api_build": ("procfile",),
}


class App:
    """One app's history, written operation by operation."""

    def __init__(self, ctl: Controller, app_uuid: str, name: str, owner_id: int, owner: str) -> None:
        self.ctl = ctl
        self.uuid = app_uuid
        self.name = name
        self.owner_id = owner_id
        self.owner = owner

    # -- reading state the way the controller does ----------------------------------
    def _one(self, query: str, params: tuple = ()) -> tuple | None:
        return self.ctl.conn.execute(query, (self.uuid, *params)).fetchone()

    def _release_query(self, where: str) -> sql.Composed:
        failed = sql.SQL("failed" if self.ctl.generation.has_failed else "false")
        return sql.SQL(
            "SELECT uuid, version, config_id, build_id, {}, created FROM api_release "
            "WHERE app_id = %s AND {}"
        ).format(failed, sql.SQL(where))

    def _release_row(self, query: sql.Composed, params: tuple = ()) -> Release | None:
        row = self.ctl.conn.execute(query, (self.uuid, *params)).fetchone()
        if row is None:
            return None
        return Release(str(row[0]), row[1], str(row[2]), str(row[3]) if row[3] else None, row[4], row[5])

    def current(self) -> Release:
        """The release the controller builds on: newest non-failed (era C) or newest (era A)."""
        where = "NOT failed" if self.ctl.generation.has_failed else "true"
        found = self._release_row(self._release_query(where + " ORDER BY created DESC LIMIT 1"))
        assert found is not None, f"app {self.name} has no release"
        return found

    def release(self, version: int) -> Release:
        """The release with ``version``."""
        found = self._release_row(self._release_query("version = %s"), (version,))
        assert found is not None, f"app {self.name} has no v{version}"
        return found

    def latest_config(self) -> str:
        """The uuid of ``config_set.latest()``: the app's config with the greatest ``created``."""
        row = self._one("SELECT uuid FROM api_config WHERE app_id = %s ORDER BY created DESC LIMIT 1")
        assert row is not None, f"app {self.name} has no config"
        return str(row[0])

    def config_values(self, config_uuid: str) -> dict:
        """The ``values`` of a config row, parsed."""
        row = self.ctl.conn.execute('SELECT "values" FROM api_config WHERE uuid = %s', (config_uuid,)).fetchone()
        assert row is not None
        values: dict = json.loads(row[0])
        return values

    def _merge_base(self) -> str:
        """The config a ``config:set`` merges over: the live release's (Deis v2.1 on, §8); an
        app without a live release falls back on ``config_set.latest()``, as ``Config.save`` does."""
        if self._release_row(self._release_query(
                ("NOT failed" if self.ctl.generation.has_failed else "true") + " LIMIT 1")) is None:
            return self.latest_config()
        return self.current().config

    def _next_version(self) -> int:
        """``release_set.latest().version + 1``: the newest release by ``created`` over all
        releases, failed ones too (§8), not the highest version; a tie goes to the higher
        version here (the controller picks either)."""
        row = self._one("SELECT version + 1 FROM api_release WHERE app_id = %s ORDER BY created DESC, version DESC "
                        "LIMIT 1")
        return 1 if row is None else row[0]

    # -- writing rows ------------------------------------------------------------------
    def new_config(self, values: dict, when: datetime, **other: Any) -> str:
        """Insert a config row with ``values`` (and other JSON columns); returns its uuid."""
        config_uuid = str(uuid.uuid4())
        row = {"uuid": config_uuid, "created": when, "updated": when, "app_id": self.uuid,
               "owner_id": self.owner_id, "values": _json(values)}
        row.update({k: (v if isinstance(v, str) else _json(v)) for k, v in other.items()})
        self.ctl.insert("api_config", row)
        return config_uuid

    def new_build(self, when: datetime, image: str, procfile: dict | None = None, sha: str = "",
                  dockerfile: str = "") -> str:
        """Insert a build row; returns its uuid."""
        build_uuid = str(uuid.uuid4())
        self.ctl.insert("api_build", {
            "uuid": build_uuid, "created": when, "updated": when, "app_id": self.uuid,
            "owner_id": self.owner_id, "image": image, "sha": sha,
            "procfile": _json(procfile or {}), "dockerfile": dockerfile,
        })
        return build_uuid

    def new_release(self, config: str, build: str | None, summary: str, when: datetime,
                    failed: bool = False, exception: str | None = None) -> Release:
        """Insert a release row with the next version."""
        if self.ctl.ledger:
            config = self._owned("api_config", config, when)
            build = self._owned("api_build", build, when) if build is not None else None
        version = self._next_version()
        release_uuid = str(uuid.uuid4())
        self.ctl.insert("api_release", {
            "uuid": release_uuid, "created": when, "updated": when, "app_id": self.uuid,
            "owner_id": self.owner_id, "version": version, "summary": summary,
            "config_id": config, "build_id": build, "failed": failed,
            "exception": exception if failed else None,
        })
        return Release(release_uuid, version, config, build, failed, when)

    def _owned(self, table: str, row_uuid: str, release_created: datetime) -> str:
        """Ledger form: ``row_uuid`` if no release uses it yet, else a copy dated just before
        ``release_created`` (same values, app and owner)."""
        column = sql.Identifier("config_id" if table == "api_config" else "build_id")
        used = self.ctl.conn.execute(
            sql.SQL("SELECT 1 FROM api_release WHERE {} = %s LIMIT 1").format(column), (row_uuid,)
        ).fetchone()
        if used is None:
            return row_uuid
        copy_uuid = str(uuid.uuid4())
        copied = [c for c in self.ctl.generation.columns[table] if c not in ("uuid", "created", "updated")]
        dated = release_created - timedelta(microseconds=1)
        self.ctl.conn.execute(
            sql.SQL("INSERT INTO {} (uuid, created, updated, {}) SELECT %s, %s, %s, {} FROM {} WHERE uuid = %s").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, copied)),
                sql.SQL(", ").join(map(sql.Identifier, copied)), sql.Identifier(table),
            ),
            (copy_uuid, dated, dated, row_uuid),
        )
        return copy_uuid

    # -- controller operations ---------------------------------------------------------
    def _merged(self, values: dict) -> dict:
        merged = dict(self.config_values(self._merge_base()))
        for key, value in values.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        return merged

    def config_set(self, at: datetime | None = None, **values: Any) -> Release:
        """``config:set`` (``None`` unsets): a new config, then a release reusing the current build."""
        when = self.ctl.tick(at)
        config = self.new_config(self._merged(values), when)
        build = self.current().build
        summary = f"{self.owner} added " + ", ".join(sorted(values))
        return self.new_release(config, build, summary, when + timedelta(milliseconds=1))

    def push(self, image: str | None = None, procfile: dict | None = None, sha: str = "",
             at: datetime | None = None) -> Release:
        """A build push: a new build, then a release reusing the current config."""
        when = self.ctl.tick(at)
        image = image or f"{self.name}:v{self._next_version()}"
        build = self.new_build(when, image, procfile or {"web": "run"}, sha)
        config = self.current().config
        return self.new_release(build=build, config=config, summary=f"{self.owner} deployed {image}",
                                when=when + timedelta(milliseconds=1))

    def rollback(self, version: int, at: datetime | None = None) -> Release:
        """``releases:rollback vN``: a new release reusing vN's config and build."""
        when = self.ctl.tick(at)
        target = self.release(version)
        return self.new_release(target.config, target.build, f"{self.owner} rolled back to v{version}", when)

    def failed_config_set(self, at: datetime | None = None, **values: Any) -> Release | None:
        """A ``config:set`` whose deploy failed: era A leaves an orphan config, era C a failed release."""
        when = self.ctl.tick(at)
        config = self.new_config(self._merged(values), when)
        if self.ctl.era == "A":
            return None
        build = self.current().build
        return self.new_release(config, build, f"{self.owner} added " + ", ".join(sorted(values)),
                                when + timedelta(milliseconds=1), failed=True,
                                exception="deploy failed: timed out waiting for pods")

    def failed_push(self, image: str | None = None, at: datetime | None = None) -> Release | None:
        """A push whose deploy failed: era A leaves an orphan build, era C a failed release."""
        when = self.ctl.tick(at)
        image = image or f"{self.name}:failed-{self._next_version()}"
        build = self.new_build(when, image, {"web": "run"})
        if self.ctl.era == "A":
            return None
        return self.new_release(self.current().config, build, f"{self.owner} deployed {image}",
                                when + timedelta(milliseconds=1), failed=True,
                                exception="deploy failed: image pull backoff")

    def failed_rollback(self, version: int, at: datetime | None = None) -> Release | None:
        """A rollback whose deploy failed: nothing in era A, a failed release sharing vN's rows in C."""
        when = self.ctl.tick(at)
        if self.ctl.era == "A":
            return None
        target = self.release(version)
        return self.new_release(target.config, target.build, f"{self.owner} rolled back to v{version}",
                                when, failed=True, exception="deploy failed")

    def orphan_config(self, at: datetime | None = None, **values: Any) -> str:
        """A config left with no release (a 409 "changed nothing", or an error before the release)."""
        return self.new_config(self._merged(values), self.ctl.tick(at))

    def orphan_build(self, image: str = "orphan:latest", at: datetime | None = None) -> str:
        """A build left with no release (an error between the build and its release)."""
        return self.new_build(self.ctl.tick(at), image, {"web": "run"})

    # -- what the ORM never writes (raw SQL) ------------------------------------------------


Controller.app_type = App
