"""``explain`` reads the app's story on a second backend, in the audit's exported snapshot, while the
audit's backend runs the audit (auditor.audit.split's snapshot, issue 16ah): the same rows on both,
the same bytes as on one connection, and one connection whenever the second cannot be had."""

from __future__ import annotations

import time

import psycopg
import pytest
from psycopg import sql

from auditor.audit import Audit
from auditor.audit.runner import PendingFindings
from auditor.audit.story import PendingStory
from auditor.core.errors import EXIT_INTERRUPTED, EXIT_UNKNOWN
from auditor.demo import write_story
from tests.helpers import login_role_dsn, no_second_thread, tool_connections_gone

pytestmark = [pytest.mark.compat,
              pytest.mark.skipif(not psycopg.Pipeline.is_supported(), reason="libpq without pipeline mode")]

#: explain's forms whose bytes must not depend on the connections it reads with.
_FORMS = [(), ("--all",), ("--min-severity", "info"), ("--format", "json"), ("--format", "svg")]


@pytest.fixture
def story_db(hephy_db):
    names = write_story(hephy_db.conn)
    hephy_db.names = names
    return hephy_db


@pytest.fixture
def backends(monkeypatch) -> dict[str, list[int]]:
    """The backend pids the story's rows and the audit's findings were read on."""
    seen: dict[str, list[int]] = {"story": [], "audit": []}
    read_story, read_findings = PendingStory.read, PendingFindings.read

    def story(self):
        seen["story"].append(self._releases.connection.info.backend_pid)
        return read_story(self)

    def findings(self):
        seen["audit"].append(self.conn.info.backend_pid)
        return read_findings(self)

    monkeypatch.setattr(PendingStory, "read", story)
    monkeypatch.setattr(PendingFindings, "read", findings)
    return seen


def _apps(db) -> list[str]:
    return [row[0] for row in db.conn.execute("SELECT id FROM api_app ORDER BY id")]


def test_the_story_is_read_on_a_second_backend(story_db, run, backends):
    """The story's rows come from a backend other than the audit's (on main: the audit's own)."""
    result = run("explain", story_db.names["poisoned"], "--dsn", story_db.dsn)
    assert result.exit_code == 0, result.output
    assert len(backends["story"]) == len(backends["audit"]) == 1
    assert backends["story"] != backends["audit"]
    assert tool_connections_gone(story_db) and no_second_thread()


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_one_connection_gives_the_same_bytes(story_db, run, backends, how):
    """``--connections 1`` (or its variable): the story on the audit's backend, every form's bytes the
    same as with the second backend, for every app of the story."""
    for app in _apps(story_db):
        for form in _FORMS:
            two = run("explain", app, "--dsn", story_db.dsn, *form)
            backends["story"].clear(), backends["audit"].clear()
            one = (run("explain", app, "--dsn", story_db.dsn, *form, "--connections", "1") if how == "flag" else
                   run("explain", app, "--dsn", story_db.dsn, *form, env={"CONTROLLER_AUDIT_CONNECTIONS": "1"}))
            assert backends["story"] == backends["audit"] != []
            assert (one.exit_code, one.stdout) == (two.exit_code, two.stdout), (app, form)


def test_the_story_and_the_findings_read_one_snapshot(story_db, run, monkeypatch):
    """A write committed by another session after the audit's transaction began, before the second
    connection imports its snapshot, is seen by neither: the bytes are those of before the write."""
    app = story_db.names["poisoned"]
    opening = Audit.snapshot_connection
    writes: list[str] = []

    def after_a_write(self):
        # The app's newest release deleted: the story (releases, live, latest()) and the findings
        # would both change.
        story_db.conn.execute(
            "DELETE FROM api_release WHERE app_id = (SELECT uuid FROM api_app WHERE id = %(app)s)"
            " AND version = (SELECT max(version) FROM api_release r JOIN api_app a ON a.uuid = r.app_id"
            "                WHERE a.id = %(app)s)", {"app": app})
        writes.append(app)
        return opening(self)

    for form in _FORMS:
        before = run("explain", app, "--dsn", story_db.dsn, *form).stdout
        monkeypatch.setattr(Audit, "snapshot_connection", after_a_write)
        during = run("explain", app, "--dsn", story_db.dsn, *form).stdout
        monkeypatch.setattr(Audit, "snapshot_connection", opening)
        after = run("explain", app, "--dsn", story_db.dsn, *form).stdout
        assert during == before, form
        assert after != before, form  # the write shows once a new snapshot is read
    assert len(writes) == len(_FORMS)


def _drop_role(db, role: str) -> None:
    db.conn.execute(sql.SQL("DROP OWNED BY {}; DROP ROLE {}").format(sql.Identifier(role), sql.Identifier(role)))


@pytest.mark.parametrize("refused", ["connection", "export"])
def test_a_refused_second_connection_or_export_gives_the_same_bytes(story_db, run, backends, refused):
    """The server refuses the second connection (the role's ``CONNECTION LIMIT 1``, as with
    ``max_connections`` reached) or the export (no EXECUTE on ``pg_export_snapshot``): the story on
    the audit's backend, the same bytes, nothing left open."""
    role = f"ex_{story_db.name[-8:]}"
    limits = ["ALTER ROLE {} CONNECTION LIMIT 1"] if refused == "connection" else []
    dsn = login_role_dsn(story_db, role, "ex-pw-1234", "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}",
                         *limits)
    if refused == "export":
        story_db.conn.execute("REVOKE EXECUTE ON FUNCTION pg_export_snapshot() FROM PUBLIC")
    try:
        for form in _FORMS:
            backends["story"].clear(), backends["audit"].clear()
            refusing = run("explain", story_db.names["poisoned"], "--dsn", dsn, *form)
            assert backends["story"] == backends["audit"] != []
            two = run("explain", story_db.names["poisoned"], "--dsn", story_db.dsn, *form)
            assert (refusing.exit_code, refusing.stdout) == (two.exit_code, two.stdout), form
            assert "ex-pw-1234" not in refusing.output
        assert tool_connections_gone(story_db) and no_second_thread()
    finally:
        if refused == "export":
            story_db.conn.execute("GRANT EXECUTE ON FUNCTION pg_export_snapshot() TO PUBLIC")
        _drop_role(story_db, role)


@pytest.mark.parametrize("connections", ["2", "1"])
def test_a_backend_terminated_while_the_story_is_read_is_one_line(story_db, run, monkeypatch, connections):
    """The story's backend terminated (``pg_terminate_backend``) as its rows are read: one line, the
    documented exit code, no traceback, both connections closed, no thread left; as on one connection."""
    read_story = PendingStory.read

    def terminated(self):
        pid = self._releases.connection.info.backend_pid
        story_db.conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        return read_story(self)

    monkeypatch.setattr(PendingStory, "read", terminated)
    result = run("explain", story_db.names["poisoned"], "--dsn", story_db.dsn, "--connections", connections)
    assert result.exit_code == EXIT_UNKNOWN
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("controller-audit: ") and "Traceback" not in result.stderr
    assert len([line for line in lines if not line.startswith("controller-audit: database ")]) == 1, lines
    assert tool_connections_gone(story_db) and no_second_thread()


def test_on_a_hot_standby_the_story_is_read_beside_the_audit(pg_server, story_db, standby, run, backends):
    """A hot standby (PostgreSQL 10 and later export and import snapshots there): the story on a
    second backend of the standby, every app's bytes those of the primary read on one connection."""
    from psycopg import conninfo

    from tests.reliability.standby import wait_for_replay

    wait_for_replay(pg_server.admin_dsn, standby)
    params = conninfo.conninfo_to_dict(standby)
    params["dbname"] = story_db.name
    replica = conninfo.make_conninfo(**params)
    for app in _apps(story_db):
        backends["story"].clear(), backends["audit"].clear()
        on_standby = run("explain", app, "--dsn", replica)
        assert len(backends["story"]) == len(backends["audit"]) == 1
        assert backends["story"] != backends["audit"], app
        on_primary = run("explain", app, "--dsn", story_db.dsn, "--connections", "1")
        assert on_standby.exit_code == on_primary.exit_code and on_standby.stdout == on_primary.stdout, app
        assert on_standby.stdout


@pytest.mark.parametrize("moment", ["while-the-second-opens", "while-the-story-is-read"])
def test_ctrl_c_leaves_no_connection_and_no_thread(story_db, run, monkeypatch, moment):
    """Ctrl-C (SIGINT: KeyboardInterrupt) while the thread opens the second connection, or while the
    story's rows are read on it: one line, exit 130, no traceback, both connections closed, no thread
    left behind."""
    if moment == "while-the-second-opens":
        opening = Audit.snapshot_connection

        def slow_second(self):
            time.sleep(0.3)  # the main thread is interrupted meanwhile
            return opening(self)

        def interrupted(self, **_):
            raise KeyboardInterrupt

        monkeypatch.setattr(Audit, "snapshot_connection", slow_second)
        monkeypatch.setattr(Audit, "pending_findings", interrupted)
    else:
        def interrupted_story(self):
            raise KeyboardInterrupt

        monkeypatch.setattr(PendingStory, "read", interrupted_story)
    result = run("explain", story_db.names["poisoned"], "--dsn", story_db.dsn)
    assert result.exit_code == EXIT_INTERRUPTED
    assert result.stdout == "" and "Traceback" not in result.stderr
    # (click writes an empty line first, ending the terminal's "^C" line)
    lines = [line for line in result.stderr.splitlines() if line and not line.startswith("controller-audit: database ")]
    assert lines == ["controller-audit: interrupted"]
    assert tool_connections_gone(story_db) and no_second_thread()
