"""Damage made by hand beside the controller, for the tests: re-dated releases, ties, repeated
versions, a release pointing at another app's row, a dropped unique constraint.

The controller's own writes (create, config:set, push, rollback, their failures) are the demo's
too and live in :mod:`auditor.testbed.builder`; what only a person, a script or a restore does is
here, on subclasses the test bed's databases hand out (``ControllerDB.controller()``).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from psycopg import sql

from auditor.testbed.builder import App, Controller, Release


class DamagingApp(App):
    """An app of the story, and the hand edits a test needs."""

    def redate_release(self, version: int, at: datetime) -> None:
        """Date release ``version`` ``at`` (``created`` and ``updated``): a hand edit or a restore."""
        self.ctl.conn.execute("UPDATE api_release SET created = %s, updated = %s WHERE app_id = %s AND version = %s",
                              (at, at, self.uuid, version))

    def tie_releases(self, *versions: int) -> datetime:
        """Give releases ``versions`` one ``created``, the newest of theirs: what a hand-written
        fix or a restore running SQL ``now()`` in one transaction leaves.  Returns that time."""
        row = self._one("SELECT max(created) FROM api_release WHERE app_id = %s AND version = ANY(%s)",
                        (list(versions),))
        assert row is not None and row[0] is not None
        self.ctl.conn.execute("UPDATE api_release SET created = %s WHERE app_id = %s AND version = ANY(%s)",
                              (row[0], self.uuid, list(versions)))
        tied: datetime = row[0]
        return tied

    def duplicate_version(self, version: int, at: datetime | None = None) -> Release:
        """A second release numbered ``version`` (two deploys that raced without the unique
        constraint: call :meth:`Controller.drop_release_unique` first), reusing that release's
        config and build, dated ``at`` (default: the next tick)."""
        target = self.release(version)
        when = self.ctl.tick(at)
        release_uuid = str(uuid.uuid4())
        self.ctl.insert("api_release", {
            "uuid": release_uuid, "created": when, "updated": when, "app_id": self.uuid,
            "owner_id": self.owner_id, "version": version, "summary": f"{self.owner} deployed again",
            "config_id": target.config, "build_id": target.build, "failed": False, "exception": None,
        })
        return Release(release_uuid, version, target.config, target.build, False, when)

    def point_at(self, version: int, other: App, kind: str = "config") -> str:
        """Point release ``version`` at ``other``'s live config (or build): a cross-app
        reference (a hand-written "fix", a merged restore).  Returns the foreign row's uuid.
        Later pushes and ``config:set`` reuse it, as the controller does (§8)."""
        row = other.current().config if kind == "config" else other.current().build
        assert row is not None, f"app {other.name} has no live {kind}"
        column = sql.Identifier("config_id" if kind == "config" else "build_id")
        self.ctl.conn.execute(sql.SQL("UPDATE api_release SET {} = %s WHERE app_id = %s AND version = %s").format(column),
                              (row, self.uuid, version))
        return row


class DamagingController(Controller):
    """The controller's writes, and the hand edits a test needs."""

    app_type = DamagingApp

    def drop_release_unique(self) -> None:
        """Drop ``UNIQUE(app_id, version)`` of ``api_release`` (found by its columns, as the
        constraint's name varies by Django version): what lets versions repeat."""
        names = self.conn.execute("""
            SELECT c.conname FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
            WHERE t.relname = 'api_release' AND c.contype = 'u'
              AND ARRAY(SELECT a.attname::text FROM unnest(c.conkey) AS k(n)
                        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY 1)
                  = ARRAY['app_id', 'version']""").fetchall()
        assert names, "no UNIQUE(app_id, version) on api_release"
        for (name,) in names:
            self.conn.execute(sql.SQL("ALTER TABLE api_release DROP CONSTRAINT {}").format(sql.Identifier(name)))
