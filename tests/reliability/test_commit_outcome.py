"""Three outcomes, never two: a repair whose answer to COMMIT is lost is found out, not guessed.

Issue #12 cases 1 and 2.  The answer is lost by a loopback proxy that forwards the repair's
COMMIT and cuts the connection before the answer (or cuts it before COMMIT reaches the server),
and by a synchronous standby that never confirms (``synchronous_standby_names = 'nobody'``):
the backend waits in ``SyncRep`` until its wait is given up (``--commit-timeout``), it is
terminated, or Ctrl-C cancels it.  The outcome is found with ``txid_status()`` or, where that is
not available (forced here), from the rows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from auditor.core.connection import APPLICATION_NAME
from tests.helpers import messages
from tests.reliability.faults import CLI, cli, full_dump, start_cli, waiting_backend
from tests.reliability.proxy import commit_cutter
from tests.repairs.helpers import run, story


def _planned(db, tmp_path):
    story(db.controller())
    plan = tmp_path / "p.json"
    made = run("plan", "--dsn", db.dsn, "-o", str(plan))
    assert made.exit_code == 0, made.output
    return plan


def _nothing_left_to_plan(db, tmp_path) -> bool:
    return run("plan", "--dsn", db.dsn, "-o", str(tmp_path / "again.json"), "--detailed-exitcode").exit_code == 0


@pytest.mark.parametrize("found_by", ["txid_status", "rows"])
def test_lost_answer_to_a_commit_that_happened_is_committed_and_keeps_the_undo_file(hephy_db, tmp_path, monkeypatch,
                                                                                       found_by):
    plan = _planned(hephy_db, tmp_path)
    before = full_dump(hephy_db.conn)
    if found_by == "rows":  # as on PostgreSQL 9.4-9.6, which have no txid_status()
        monkeypatch.setattr("repairs.commit.TXID_STATUS_SINCE", 10**9)
    with commit_cutter(hephy_db.dsn, "after") as proxy:
        result = run("apply", str(plan), "--dsn", proxy.dsn(hephy_db.dsn), "--yes")
        assert proxy.cut.is_set()
    assert result.exit_code == 0, result.output
    assert "the answer to COMMIT was lost" in result.stderr
    assert ("txid_status(" if found_by == "txid_status" else "the rows: every action is in effect") in result.stderr
    assert "undo file: p.json.undo.json" in result.stdout.replace(str(tmp_path) + "/", "")
    assert (tmp_path / "p.json.undo.json").exists()
    assert _nothing_left_to_plan(hephy_db, tmp_path)  # it did commit
    undone = run("undo", str(tmp_path / "p.json.undo.json"), "--dsn", hephy_db.dsn, "--yes")
    assert undone.exit_code == 0, undone.output
    assert full_dump(hephy_db.conn) == before


@pytest.mark.parametrize("found_by", ["txid_status", "rows"])
def test_commit_that_never_reached_the_server_is_a_proven_rollback(hephy_db, tmp_path, monkeypatch, found_by):
    plan = _planned(hephy_db, tmp_path)
    before = full_dump(hephy_db.conn)
    if found_by == "rows":
        monkeypatch.setattr("repairs.commit.TXID_STATUS_SINCE", 10**9)
    with commit_cutter(hephy_db.dsn, "before") as proxy:
        result = run("apply", str(plan), "--dsn", proxy.dsn(hephy_db.dsn), "--yes")
        assert proxy.cut.is_set()
    assert result.exit_code == 5, result.output
    line = messages(result.stderr).strip()
    assert line.startswith("controller-audit: commit failed: ") and "rolled back, nothing was changed" in line
    assert ("is aborted" if found_by == "txid_status" else "every row is still as planned") in line
    assert full_dump(hephy_db.conn) == before
    assert not (tmp_path / "p.json.undo.json").exists()  # proven: nothing to undo
    assert run("apply", str(plan), "--dsn", hephy_db.dsn, "--yes").exit_code == 0


# -- a synchronous standby that never confirms -----------------------------------------------------

def _setting(conn: psycopg.Connection, name: str) -> str:
    return conn.execute("SELECT current_setting(%s)", (name,)).fetchone()[0]


def _reload_until(admin_dsn: str, name: str, value: str) -> None:
    """Reload the configuration and wait until a new session sees ``name = value``."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")
    for _ in range(200):
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            if _setting(conn, name) == value:
                return
        time.sleep(0.05)
    raise AssertionError(f"{name} did not become {value!r}")


@pytest.fixture
def never_confirming_standby(hephy_db) -> Iterator[None]:
    """Commits in ``hephy_db`` wait for a synchronous standby that does not exist.

    Server-wide settings, restored afterwards: ``synchronous_standby_names = 'nobody'``, and
    ``synchronous_commit = local`` for every database but this one (``on`` here), so nothing
    else the session runs ever waits.
    """
    admin_dsn = hephy_db.server.admin_dsn
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        if not admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
            pytest.skip("changing synchronous_standby_names needs a superuser")
        saved = {name: admin.execute(
            "SELECT setting, sourcefile LIKE '%%postgresql.auto.conf' FROM pg_settings WHERE name = %s",
            (name,)).fetchone() for name in ("synchronous_commit", "synchronous_standby_names")}
        admin.execute("ALTER SYSTEM SET synchronous_commit = 'local'")
        admin.execute("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
    try:
        _reload_until(admin_dsn, "synchronous_standby_names", "nobody")
        hephy_db.conn.execute(sql.SQL("ALTER DATABASE {} SET synchronous_commit = 'on'").format(
            sql.Identifier(hephy_db.name)))
        yield
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            for name, (value, was_altered) in saved.items():
                if was_altered:
                    admin.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
                else:
                    admin.execute(sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name)))
        _reload_until(admin_dsn, "synchronous_standby_names", saved["synchronous_standby_names"][0])


def _waiting_for_sync_rep(admin: psycopg.Connection, dbname: str) -> int:
    """The pid of the tool's backend once it waits for the synchronous standby."""
    for _ in range(2400):
        row = admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s "
                            "AND wait_event = 'SyncRep'", (dbname, APPLICATION_NAME)).fetchone()
        if row is not None:
            return row[0]
        time.sleep(0.05)
    raise AssertionError("the tool never waited for the synchronous standby")


def test_commit_waiting_for_a_synchronous_standby_is_given_up_and_said_committed_locally(
        hephy_db, never_confirming_standby, tmp_path):
    plan = _planned(hephy_db, tmp_path)
    before = full_dump(hephy_db.conn)
    result = cli("apply", str(plan), "--dsn", hephy_db.dsn, "--yes", "--commit-timeout", "3s")
    assert result.returncode == 0, result.stderr
    assert "COMMIT is waiting for synchronous replication" in result.stderr
    assert "synchronous_standby_names = 'nobody'" in result.stderr
    assert "committed on this server, but the synchronous standby" in result.stderr
    assert "undo file: " in result.stdout and (tmp_path / "p.json.undo.json").exists()
    assert full_dump(hephy_db.conn) != before  # committed locally: visible here
    undone = cli("undo", str(tmp_path / "p.json.undo.json"), "--dsn", hephy_db.dsn, "--yes", "--commit-timeout", "2s")
    assert undone.returncode == 0, undone.stderr
    assert full_dump(hephy_db.conn) == before


def test_backend_killed_while_waiting_for_the_standby_is_found_committed(hephy_db, never_confirming_standby, tmp_path):
    plan = _planned(hephy_db, tmp_path)
    before = full_dump(hephy_db.conn)
    proc = start_cli("apply", str(plan), "--dsn", hephy_db.dsn, "--yes", "--commit-timeout", "600s")
    with psycopg.connect(hephy_db.server.admin_dsn, autocommit=True) as admin:
        pid = _waiting_for_sync_rep(admin, hephy_db.name)
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "the answer to COMMIT was lost" in err and "is committed" in err
    assert "applied " in out and (tmp_path / "p.json.undo.json").exists()
    assert full_dump(hephy_db.conn) != before


def test_ctrl_c_while_commit_waits_for_the_standby_says_it_committed(hephy_db, never_confirming_standby, tmp_path):
    plan = _planned(hephy_db, tmp_path)
    proc = start_cli("apply", str(plan), "--dsn", hephy_db.dsn, "--yes", "--commit-timeout", "600s")
    with psycopg.connect(hephy_db.server.admin_dsn, autocommit=True) as admin:
        _waiting_for_sync_rep(admin, hephy_db.name)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "interrupted during COMMIT, but it committed" in err
    assert "committed on this server, but the synchronous standby" in err
    assert (tmp_path / "p.json.undo.json").exists() and "undo file: " in out


def test_sigterm_stops_an_audit_and_an_ignored_sighup_stays_ignored(hephy_db):
    """check waiting for a lock: SIGTERM ends it with one line (exit 130); under ``nohup`` (SIGHUP
    ignored) a SIGHUP changes nothing and the audit finishes with its own code."""
    story(hephy_db.controller())
    blocker = psycopg.connect(hephy_db.dsn)
    try:
        blocker.execute("LOCK TABLE api_release IN ACCESS EXCLUSIVE MODE")
        with psycopg.connect(hephy_db.server.admin_dsn, autocommit=True) as admin:
            proc = start_cli("check", "--dsn", hephy_db.dsn, "--lock-timeout", "120s")
            waiting_backend(admin, hephy_db.name)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 130, err
            assert messages(err).strip() == "controller-audit: interrupted (SIGTERM)"
            ignoring = subprocess.Popen([CLI, "check", "--dsn", hephy_db.dsn, "--lock-timeout", "120s"],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
            waiting_backend(admin, hephy_db.name)
            ignoring.send_signal(signal.SIGHUP)
            time.sleep(0.5)
    finally:
        blocker.rollback()
        blocker.close()
    out, err = ignoring.communicate(timeout=120)
    assert ignoring.returncode == run("check", "--dsn", hephy_db.dsn).exit_code == 1, err
    assert "interrupted" not in err and "WARNING - app" in out


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_committed_repair_whose_report_cannot_be_written_still_says_committed(hephy_db, tmp_path):
    """``apply ... > /dev/full`` (standard output on a full disk): the repair commits; the tool used
    to end with ``file error: No space left on device``, exit 3, as if it could not run.  Now stderr
    says it is committed and names the undo file (exit 0, 2 with --detailed-exitcode); a second run
    says already applied; undo the same."""
    plan = _planned(hephy_db, tmp_path)
    before = full_dump(hephy_db.conn)

    def full(*args: str) -> subprocess.CompletedProcess:
        with open("/dev/full", "w") as out:
            return subprocess.run([CLI, *args, "--dsn", hephy_db.dsn, "--yes"], stdout=out, stderr=subprocess.PIPE,
                                  text=True, timeout=120, check=False)

    undo = tmp_path / "p.json.undo.json"
    applied = full("apply", str(plan), "--detailed-exitcode")
    assert applied.returncode == 2, applied.stderr
    assert messages(applied.stderr).splitlines() == [
        "controller-audit: the repair is committed, but its report could not be written (No space left on device); "
        f"undo file: {undo}"]
    assert undo.exists() and _nothing_left_to_plan(hephy_db, tmp_path)
    again = full("apply", str(plan))
    assert again.returncode == 0, again.stderr
    assert messages(again.stderr).splitlines() == [
        "controller-audit: already applied: nothing was changed; its report could not be written (No space left on "
        "device)"]
    undone = full("undo", str(undo))
    assert undone.returncode == 0, undone.stderr
    assert messages(undone.stderr).splitlines() == [
        "controller-audit: the undo is committed, but its report could not be written (No space left on device)"]
    assert full_dump(hephy_db.conn) == before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_ctrl_c_before_commit_says_rolled_back_and_removes_the_undo_file(hephy_db, tmp_path, sig):
    """Ctrl-C, a supervisor's SIGTERM or a dropped terminal's SIGHUP while apply waits for a row lock:
    rolled back, one line naming it, exit 130, no undo file (SIGTERM and SIGHUP used to end the
    process at once, silent, exit 143 / 129, the reserved undo file left behind, empty), and the
    same plan then applies."""
    plan = _planned(hephy_db, tmp_path)
    before = full_dump(hephy_db.conn)
    blocker = psycopg.connect(hephy_db.dsn)
    try:
        blocker.execute("SELECT 1 FROM api_release FOR UPDATE")
        proc = start_cli("apply", str(plan), "--dsn", hephy_db.dsn, "--yes", "--lock-timeout", "120s")
        with psycopg.connect(hephy_db.server.admin_dsn, autocommit=True) as admin:
            waiting_backend(admin, hephy_db.name)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        blocker.rollback()
        blocker.close()
    name = "Ctrl-C" if sig == signal.SIGINT else signal.Signals(sig).name
    assert proc.returncode == 130, err
    assert messages(err).strip() == f"controller-audit: interrupted: {name} before COMMIT: rolled back, nothing was changed"
    assert full_dump(hephy_db.conn) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]
    again = run("apply", str(plan), "--dsn", hephy_db.dsn, "--yes")
    assert again.exit_code == 0, again.output
    assert (tmp_path / "p.json.undo.json").exists()
