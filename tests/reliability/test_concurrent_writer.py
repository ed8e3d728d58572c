"""A controller keeps writing while ``apply`` runs: the repair commits with every invariant true
and every write kept, or it aborts with nothing changed - never a lost or altered write.

The writer is the data builder on its own autocommit connections, one thread per app, doing
what the controller does: insert a config or build, then insert the release (each a separate
committed statement), for ``config:set``, build pushes and rollbacks.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from auditor.testbed.builder import App
from tests.damage import DamagingController
from tests.helpers import audit
from tests.reliability.faults import cli, full_dump, one_line_error, start_cli, waiting_backend
from tests.repairs.helpers import read_plan, story

REPAIRABLE = ("orphan-config", "orphan-build", "shared-config", "shared-build",
              "latest-config-not-live", "latest-build-not-live")


class Writer(threading.Thread):
    """``config:set``, pushes and rollbacks on one app until told to stop (at most ``max_ops``)."""

    def __init__(self, dsn: str, app_name: str, seed: int, stop: threading.Event, max_ops: int = 60,
                 ops: tuple[str, ...] = ("config", "push", "rollback")) -> None:
        super().__init__(name=f"writer-{app_name}", daemon=True)
        self.dsn, self.app_name, self.random = dsn, app_name, random.Random(seed)
        self.stop, self.max_ops, self.ops = stop, max_ops, ops
        self.started_writing = threading.Event()
        #: table -> uuid -> the row as written (JSON text)
        self.written: dict[str, dict[str, str]] = {"api_config": {}, "api_build": {}, "api_release": {}}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True, application_name="controller-writer") as conn:
                ctl = DamagingController(conn, start=datetime.now(timezone.utc), step=timedelta(seconds=1))
                row = conn.execute("SELECT a.uuid::text, a.owner_id, u.username FROM api_app a "
                                   "JOIN auth_user u ON u.id = a.owner_id WHERE a.id = %s", (self.app_name,)).fetchone()
                app = App(ctl, row[0], self.app_name, row[1], row[2])
                for n in range(self.max_ops):
                    if self.stop.is_set():
                        break
                    self._remember(conn, self._operate(app, n))
                    self.started_writing.set()
        except Exception as exc:  # noqa: BLE001 - any failure of the writer is reported by the test
            self.error = exc
        finally:
            self.started_writing.set()

    def _operate(self, app: App, n: int) -> list[tuple[str, str]]:
        """One controller operation; the rows it inserted, as ``(table, uuid)``."""
        choice = self.random.choice(self.ops)
        if choice == "push":
            release = app.push(image=f"{app.name}:w{n}")
            return [("api_build", release.build), ("api_release", release.uuid)]
        failed = "failed" if app.ctl.generation.has_failed else "false"
        versions = [r[0] for r in app.ctl.conn.execute(
            f"SELECT version FROM api_release WHERE app_id = %s AND version > 1 AND NOT {failed} ORDER BY version",
            (app.uuid,))]
        if choice == "rollback" and versions:
            return [("api_release", app.rollback(self.random.choice(versions)).uuid)]
        release = app.config_set(STEP=str(n), QUOTE="it's")
        return [("api_config", release.config), ("api_release", release.uuid)]

    def _remember(self, conn: psycopg.Connection, inserted: list[tuple[str, str]]) -> None:
        """Record the rows an operation inserted, as committed."""
        for table, uuid in inserted:
            image = conn.execute(f"SELECT row_to_json(t)::text FROM {table} t WHERE uuid = %s", (uuid,)).fetchone()
            self.written[table][uuid] = image[0]


def _writer_rows(writers: Iterable[Writer]) -> dict[str, set[str]]:
    rows: dict[str, set[str]] = {}
    for writer in writers:
        for table, images in writer.written.items():
            rows.setdefault(table, set()).update(images)
    return rows


def _assert_writes_kept(db, writers: Iterable[Writer]) -> int:
    """Every row a writer inserted exists, exactly as written; returns how many."""
    kept = 0
    for writer in writers:
        assert writer.error is None, repr(writer.error)
        for table, images in writer.written.items():
            for uuid, image in images.items():
                now = db.scalar(f"SELECT row_to_json(t)::text FROM {table} t WHERE uuid = %s", (uuid,))
                assert now == image, (table, uuid)
                kept += 1
    return kept


def _assert_repaired(db, apps: Iterable[str]) -> None:
    """The planned apps have no orphan, no sharing, and latest() is the live release's rows,
    except where the writers' own new releases share rows the way the controller does."""
    findings = [f for f in audit(db, REPAIRABLE, apps=apps) if f.check.startswith(("orphan", "latest"))]
    assert findings == []


def _plan(db, path) -> dict:
    made = cli("plan", "--dsn", db.dsn, "-o", str(path))
    assert made.returncode == 0, made.stderr
    return read_plan(path)


@pytest.mark.parametrize("migration", [19, 28])
def test_writers_during_apply_commit_everything_or_nothing(make_db, tmp_path, migration):
    db = make_db(migration)
    story(db.controller())
    _bystander(db)
    plan = _plan(db, tmp_path / "p.json")
    planned_apps = sorted({a["app"]["name"] for a in plan["actions"]})
    before = full_dump(db.conn)
    stop = threading.Event()
    assert "bystander" not in planned_apps
    # the writers write until apply has finished (bounded by max_ops)
    writers = [Writer(db.dsn, name, seed, stop, max_ops=5000)
               for seed, name in enumerate(["web", "api", "calm", "bystander"])]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.started_writing.wait(60)
    proc = start_cli("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes", "--lock-timeout", "2s")
    out, err = proc.communicate(timeout=300)
    stop.set()
    for writer in writers:
        writer.join(120)
        assert not writer.is_alive()
    kept = _assert_writes_kept(db, writers)
    assert kept > len(writers)
    if proc.returncode == 0:
        assert "invariants verified" in out
        assert (tmp_path / "p.json.undo.json").exists()
        for action in plan["actions"]:  # the plan's changes are there
            if action["kind"] == "prune":
                assert db.scalar(f"SELECT count(*) FROM {action['table']} WHERE uuid = %s", (action["row"],)) == 0
            if action["kind"] == "copy":
                column = "config_id" if action["table"] == "api_config" else "build_id"
                assert db.scalar(f"SELECT {column}::text FROM api_release WHERE uuid = %s",
                                 (action["release"]["uuid"],)) == action["new"]["uuid"]
        # no orphan left in the planned apps (the writers' new releases may share, as the controller does)
        assert [f for f in audit(db, ("orphan-config", "orphan-build"), apps=planned_apps)] == []
    else:
        # refused before any change (the plan is no longer what the planners would make: exit 4), or
        # rolled back after the changes (an invariant no longer holds: exit 5)
        assert proc.returncode in (4, 5), (out, err)
        line = one_line_error(err)
        assert "nothing was changed" in line
        assert full_dump(db.conn, without=_writer_rows(writers)) == before
        assert not (tmp_path / "p.json.undo.json").exists()


def _held_before_locking(db, plan: dict) -> psycopg.Connection:
    """A session holding a planned orphan's row lock: apply waits for its first row lock, holding nothing."""
    prune = next(a for a in plan["actions"] if a["kind"] == "prune" and a["table"] == "api_config")
    blocker = psycopg.connect(db.dsn)
    blocker.execute("SELECT 1 FROM api_config WHERE uuid = %s FOR UPDATE", (prune["row"],))
    return blocker


def _bystander(db) -> None:
    """An app in ledger form (nothing to repair): not in the plan."""
    db.controller(ledger=True, start=datetime(2021, 1, 1, tzinfo=timezone.utc)).create_app("bystander").push()


def _write_while_apply_waits(db, tmp_path, app_name: str, ops: tuple[str, ...]) -> tuple[object, str, str, Writer]:
    """Apply waits for its first row lock (holding none yet); the writer writes and commits meanwhile."""
    plan = _plan(db, tmp_path / "p.json")
    blocker = _held_before_locking(db, plan)
    admin = psycopg.connect(db.server.admin_dsn, autocommit=True)
    writer = Writer(db.dsn, app_name, seed=7, stop=threading.Event(), max_ops=6, ops=ops)
    try:
        proc = start_cli("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes", "--lock-timeout", "120s")
        waiting_backend(admin, db.name)
        writer.start()  # writes and commits while apply waits
        writer.join(60)
        assert not writer.is_alive() and writer.error is None, repr(writer.error)
    finally:
        blocker.rollback()
        blocker.close()
        admin.close()
    out, err = proc.communicate(timeout=300)
    return proc, out, err, writer


def test_write_to_another_app_while_apply_waits_is_kept_and_apply_commits(hephy_db, tmp_path):
    story(hephy_db.controller())
    _bystander(hephy_db)
    proc, out, err, writer = _write_while_apply_waits(hephy_db, tmp_path, "bystander",
                                                      ("config", "push", "rollback"))
    assert proc.returncode == 0, err
    assert _assert_writes_kept(hephy_db, [writer]) >= 6
    _assert_repaired(hephy_db, ["web", "api", "calm"])
    assert [f for f in audit(hephy_db, ("shared-config", "shared-build"), apps=["web", "api", "calm"])] == []


def test_write_to_a_planned_app_while_apply_waits_aborts_it_with_nothing_changed(hephy_db, tmp_path):
    story(hephy_db.controller())
    before = full_dump(hephy_db.conn)
    proc, out, err, writer = _write_while_apply_waits(hephy_db, tmp_path, "web", ("config",))
    assert proc.returncode == 5, (out, err)
    assert "invariant broken" in one_line_error(err)
    assert _assert_writes_kept(hephy_db, [writer]) >= 6
    assert full_dump(hephy_db.conn, without=_writer_rows([writer])) == before
    assert not (tmp_path / "p.json.undo.json").exists()


@pytest.mark.parametrize("migration", [19, 28])
def test_controller_write_is_not_blocked_by_apply_row_locks(make_db, tmp_path, migration):
    """While apply holds its row locks, a push that reuses a planned (shared) config goes through:
    the repair's locks never block a foreign-key check, so they cannot deadlock the controller."""
    db = make_db(migration)
    ctl = db.controller()
    story(ctl)
    plan = _plan(db, tmp_path / "p.json")
    app_name = next(a["app"]["name"] for a in plan["actions"] if a["kind"] == "copy")
    app = next(App(ctl, str(u), n, o, "alice") for u, n, o in db.conn.execute(
        "SELECT uuid, id, owner_id FROM api_app WHERE id = %s", (app_name,)))
    admin = psycopg.connect(db.server.admin_dsn, autocommit=True)
    blocker = psycopg.connect(db.dsn)
    try:
        blocker.execute("LOCK TABLE api_config IN SHARE MODE")  # apply waits at its first INSERT, locks held
        proc = start_cli("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes", "--lock-timeout", "60s")
        _, query = waiting_backend(admin, db.name)
        assert "INSERT INTO" in query.replace('"', "")
        writer = psycopg.connect(db.dsn, autocommit=True)
        writer.execute("SET lock_timeout = '3s'")
        pushed = App(DamagingController(writer), app.uuid, app.name, app.owner_id, "alice").push(image="during-apply:1")
        writer.close()
    finally:
        blocker.rollback()
        blocker.close()
        admin.close()
    out, err = proc.communicate(timeout=120)
    # The push landed while apply was held; apply then sees it and aborts (or commits) cleanly.
    assert db.scalar("SELECT count(*) FROM api_release WHERE uuid = %s", (pushed.uuid,)) == 1
    assert proc.returncode in (0, 5), err
