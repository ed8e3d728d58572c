"""An apply (or undo) whose backend is terminated at any point leaves the database exactly as it was.

Another session holds ``apply`` at a known point of its transaction with an ordinary lock
(no sleeps): a row lock it waits for, a SHARE lock on the table its next change writes, or a
row lock on the parent row a deferred foreign-key check reads.  Then the backend is found by
``application_name`` and terminated with ``pg_terminate_backend``.
"""

from __future__ import annotations

import psycopg
import pytest

from tests.reliability.faults import cli, full_dump, one_line_error, start_cli, waiting_backend
from tests.repairs.helpers import read_plan, story

#: Where apply is held: (the blocker's statement, the statement apply waits in).
POINTS = {
    # before it holds anything: it waits for a row lock of the plan
    "waiting-for-row-locks": ("SELECT 1 FROM api_release WHERE uuid = %(release)s FOR UPDATE", "FOR NO KEY UPDATE"),
    # every planned row locked, nothing changed yet: the first change (copies into api_config) waits
    "holding-row-locks": ("LOCK TABLE api_config IN SHARE MODE", "INSERT INTO api_config"),
    # config copies inserted, pointers moved, orphans deleted: the build changes wait
    "after-config-changes": ("LOCK TABLE api_build IN SHARE MODE", "INSERT INTO api_build"),
    # every change made: the deferred foreign-key checks (the copies' app_id) wait
    "verifying-constraints": ("SELECT 1 FROM api_app FOR UPDATE", "SET CONSTRAINTS ALL IMMEDIATE"),
}


def _plan(db, tmp_path) -> tuple:
    story(db.controller())
    plan_path = tmp_path / "p.json"
    made = cli("plan", "--dsn", db.dsn, "-o", str(plan_path))
    assert made.returncode == 0, made.stderr
    plan = read_plan(plan_path)
    assert {"copy", "prune"} <= {a["kind"] for a in plan["actions"]}
    return plan_path, plan


def _terminate_while_held(db, blocker_sql: str, params: dict, args: list[str]) -> tuple[str, object]:
    """Run ``controller-audit ARGS`` while a blocker holds ``blocker_sql``; terminate its backend
    once it waits; returns the statement it waited in and the finished process."""
    admin = psycopg.connect(db.server.admin_dsn, autocommit=True)
    blocker = psycopg.connect(db.dsn)
    try:
        blocker.execute(blocker_sql, params)
        proc = start_cli(*args)
        try:
            pid, query = waiting_backend(admin, db.name)
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        finally:
            blocker.rollback()
            out, err = proc.communicate(timeout=120)
        proc.stdout_text, proc.stderr_text = out, err
        return " ".join(query.replace('"', "").split()), proc
    finally:
        blocker.close()
        admin.close()


@pytest.mark.parametrize("point", list(POINTS))
@pytest.mark.parametrize("migration", [19, 28])
def test_terminated_apply_leaves_the_pre_image(make_db, tmp_path, point, migration):
    db = make_db(migration)
    plan_path, plan = _plan(db, tmp_path)
    before = full_dump(db.conn)
    blocker_sql, waits_in = POINTS[point]
    release = next(a["release"]["uuid"] for a in plan["actions"] if a["release"])
    query, proc = _terminate_while_held(
        db, blocker_sql, {"release": release},
        ["apply", str(plan_path), "--dsn", db.dsn, "--yes", "--lock-timeout", "120s"])
    assert waits_in in query  # apply was held where this case says
    assert proc.returncode == 5, (proc.stdout_text, proc.stderr_text)
    line = one_line_error(proc.stderr_text)
    assert "repair aborted" in line and "nothing was changed" in line
    assert full_dump(db.conn) == before
    assert not (tmp_path / "p.json.undo.json").exists()  # nothing committed: nothing to undo
    # nothing half-done: the same plan still applies, and is not stale
    again = cli("apply", str(plan_path), "--dsn", db.dsn, "--yes")
    assert again.returncode == 0, again.stderr
    assert full_dump(db.conn) != before


def test_terminated_undo_leaves_the_repaired_state(hephy_db, tmp_path):
    plan_path, _ = _plan(hephy_db, tmp_path)
    before = full_dump(hephy_db.conn)
    undo_path = tmp_path / "u.json"
    applied = cli("apply", str(plan_path), "--dsn", hephy_db.dsn, "--yes", "--undo-file", str(undo_path))
    assert applied.returncode == 0, applied.stderr
    repaired = full_dump(hephy_db.conn)
    query, proc = _terminate_while_held(
        hephy_db, "LOCK TABLE api_build IN SHARE MODE", {},
        ["undo", str(undo_path), "--dsn", hephy_db.dsn, "--yes", "--lock-timeout", "120s"])
    assert "api_build" in query
    assert proc.returncode == 5, (proc.stdout_text, proc.stderr_text)
    assert "nothing was changed" in one_line_error(proc.stderr_text)
    assert full_dump(hephy_db.conn) == repaired
    undone = cli("undo", str(undo_path), "--dsn", hephy_db.dsn, "--yes")
    assert undone.returncode == 0, undone.stderr
    assert full_dump(hephy_db.conn) == before


@pytest.mark.parametrize("point", list(POINTS))
def test_lock_timeout_at_every_point_aborts_cleanly(hephy_db, tmp_path, point):
    """Held at any point longer than --lock-timeout: exit 5 "lock conflict", the exact pre-image."""
    plan_path, plan = _plan(hephy_db, tmp_path)
    before = full_dump(hephy_db.conn)
    blocker = psycopg.connect(hephy_db.dsn)
    try:
        release = next(a["release"]["uuid"] for a in plan["actions"] if a["release"])
        blocker.execute(POINTS[point][0], {"release": release})
        result = cli("apply", str(plan_path), "--dsn", hephy_db.dsn, "--yes", "--lock-timeout", "300ms")
    finally:
        blocker.rollback()
        blocker.close()
    assert result.returncode == 5, result.stderr
    line = one_line_error(result.stderr)
    assert line.startswith("controller-audit: lock conflict:")
    assert "lock_timeout 300ms" in line and "nothing was changed" in line
    assert full_dump(hephy_db.conn) == before
    assert not (tmp_path / "p.json.undo.json").exists()
