"""Refused before any change: timeouts, read-only servers and roles, and every kind of bad plan or
undo file - each with its own one-line message and exit code, and nothing written anywhere.

(tests/repairs/test_workflow.py covers the SELECT-only role and the hot standby for ``apply``,
stale plans and stale undo files; this file covers what it does not.)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo, sql

from repairs import planfile, undofile
from repairs.sealed import checksum
from tests.helpers import login_role_dsn
from tests.reliability.faults import cli, full_dump, one_line_error
from tests.reliability.standby import wait_for_replay
from tests.repairs.helpers import story


def _storied(make_db, migration: int = 28):
    db = make_db(migration)
    story(db.controller())
    return db


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


# -- timeouts ------------------------------------------------------------------------------

def test_check_statement_timeout_exits_3_naming_the_checks(hephy_db):
    story(hephy_db.controller())
    locker = psycopg.connect(hephy_db.dsn)
    try:
        locker.execute("LOCK TABLE api_build IN ACCESS EXCLUSIVE MODE")
        result = cli("check", "--dsn", hephy_db.dsn, "--statement-timeout", "300ms", "--lock-timeout", "60s")
        planning = cli("plan", "--dsn", hephy_db.dsn, "-o", "/dev/null", "--statement-timeout", "300ms",
                       "--lock-timeout", "60s")
    finally:
        locker.rollback()
        locker.close()
    assert result.returncode == 3, result.stderr
    line = one_line_error(result.stderr)
    assert line.startswith("controller-audit: timeout: statement_timeout reached while running check(s)")
    assert "orphan-build" in line and "shared-build" in line and "--statement-timeout" in line
    assert result.stdout == ""
    assert planning.returncode == 3
    assert "statement_timeout reached while planning" in one_line_error(planning.stderr)


def test_apply_statement_timeout_exits_5_with_nothing_changed(make_db, tmp_path):
    db = _storied(make_db)
    assert cli("plan", "--dsn", db.dsn, "-o", str(tmp_path / "p.json")).returncode == 0
    before = full_dump(db.conn)
    locker = psycopg.connect(db.dsn)
    try:
        locker.execute("LOCK TABLE api_build IN ACCESS EXCLUSIVE MODE")
        result = cli("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes", "--statement-timeout", "300ms",
                     "--lock-timeout", "60s")
    finally:
        locker.rollback()
        locker.close()
    assert result.returncode == 5, result.stderr
    assert "timeout: statement_timeout reached; nothing was changed" in one_line_error(result.stderr)
    assert full_dump(db.conn) == before and not (tmp_path / "p.json.undo.json").exists()


# -- servers and roles that cannot write ------------------------------------------------------

@pytest.fixture
def roles(make_db):
    """``make(statements...)`` gives a storied database and the DSN of a role made by ``statements``."""
    made: list[tuple] = []

    def make(*statements: str):
        db = _storied(make_db)
        role = f"r{len(made)}_{db.name[-8:]}"
        made.append((db, role))
        return db, login_role_dsn(db, role, "role-pw-4321", *statements)

    yield make
    for db, role in made:
        db.conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
        db.conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        db.conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


ALL_ON_TABLES = "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}"


@pytest.mark.parametrize("case", ["default-read-only", "no-delete", "select-only-undo"])
def test_role_that_cannot_write_is_refused_before_any_change(roles, tmp_path, case):
    statements = {
        "default-read-only": (ALL_ON_TABLES, "ALTER ROLE {} SET default_transaction_read_only = on"),
        "no-delete": ("GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {}",),
        "select-only-undo": ("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}",),
    }[case]
    db, dsn = roles(*statements)
    plan = tmp_path / "p.json"
    assert cli("plan", "--dsn", dsn, "-o", str(plan)).returncode == 0  # planning only reads
    args = ["apply", str(plan), "--dsn", dsn, "--yes"]
    if case == "select-only-undo":
        applied = cli("apply", str(plan), "--dsn", db.dsn, "--yes", "--undo-file", str(tmp_path / "u.json"))
        assert applied.returncode == 0, applied.stderr
        args = ["undo", str(tmp_path / "u.json"), "--dsn", dsn, "--yes"]
    before, files = full_dump(db.conn), _files(tmp_path)
    result = cli(*args)
    assert result.returncode == 4, result.stderr
    line = one_line_error(result.stderr)
    role = conninfo.conninfo_to_dict(dsn)["user"]
    kind, expected = {
        "default-read-only": ("read-only role", "are read-only (default_transaction_read_only)"),
        "no-delete": ("missing privileges", f"GRANT DELETE ON api_config TO {role}; GRANT DELETE ON api_build TO {role}"),
        "select-only-undo": ("missing privileges", f"GRANT INSERT, UPDATE, DELETE ON api_config TO {role}; "
                             f"GRANT INSERT, UPDATE, DELETE ON api_build TO {role}; GRANT UPDATE ON api_release TO {role}"),
    }[case]
    assert line.startswith(f"controller-audit: {kind}: ")
    assert expected in line and "role-pw-4321" not in result.stderr + result.stdout
    assert full_dump(db.conn) == before and _files(tmp_path) == files


def test_undo_on_a_hot_standby_is_refused(pg_server, make_db, standby, tmp_path):
    db = _storied(make_db)
    assert cli("plan", "--dsn", db.dsn, "-o", str(tmp_path / "p.json")).returncode == 0
    applied = cli("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes", "--undo-file", str(tmp_path / "u.json"))
    assert applied.returncode == 0, applied.stderr
    wait_for_replay(pg_server.admin_dsn, standby)
    params = conninfo.conninfo_to_dict(standby)
    params["dbname"] = db.name
    before = full_dump(db.conn)
    result = cli("undo", str(tmp_path / "u.json"), "--dsn", conninfo.make_conninfo(**params), "--yes")
    assert result.returncode == 4, result.stderr
    line = one_line_error(result.stderr)
    assert line.startswith("controller-audit: read-only server: ") and "hot standby (in recovery): apply on the primary" in line
    assert full_dump(db.conn) == before


# -- bad plan and undo files ------------------------------------------------------------------

def _reseal(path: Path, change: Callable[[dict], None], reseal: bool = True) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    if reseal:
        doc["checksum"] = checksum(doc)
    path.write_text(json.dumps(doc))


def _newer(doc: dict, version: int) -> None:
    doc["format_version"] = version + 1


#: damage -> (what it does to the file, exit code, the start of the message)
UNDO_DAMAGE: dict[str, tuple[Callable[[Path], None], int, str]] = {
    "edited": (lambda p: _reseal(p, lambda d: d.update(created="2001-01-01T00:00:00+00:00"), reseal=False), 4,
               "edited undo: {path} was edited after it was written (checksum mismatch)"),
    "newer-format": (lambda p: _reseal(p, lambda d: _newer(d, undofile.FORMAT_VERSION)), 4,
                     f"newer undo format: {{path}} is undo format version {undofile.FORMAT_VERSION + 1}; "
                     f"this controller-audit reads up to {undofile.FORMAT_VERSION}: upgrade controller-audit"),
    "truncated": (lambda p: p.write_text(p.read_text()[: len(p.read_text()) // 2]), 3,
                  "bad undo file: {path} is not an undo file (not JSON, or truncated"),
    "not-json": (lambda p: p.write_text("undo: please\n"), 3, "bad undo file: {path} is not an undo file (not JSON"),
    "a-plan": (lambda p: p.write_bytes(p.with_name("p.json").read_bytes()), 3,
               "bad undo file: {path} is not an undo file (format is not 'controller-audit-undo')"),
    "resealed-without-database": (lambda p: _reseal(p, lambda d: d.pop("database")), 3,
                                  "bad undo file: {path} is not a valid undo file (KeyError: 'database')"),
}


@pytest.mark.parametrize("damage", list(UNDO_DAMAGE))
def test_bad_undo_file_is_refused_and_nothing_written(make_db, tmp_path, damage):
    db = _storied(make_db)
    assert cli("plan", "--dsn", db.dsn, "-o", str(tmp_path / "p.json")).returncode == 0
    undo = tmp_path / "u.json"
    assert cli("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes", "--undo-file", str(undo)).returncode == 0
    spoil, code, message = UNDO_DAMAGE[damage]
    spoil(undo)
    repaired, files = full_dump(db.conn), _files(tmp_path)
    result = cli("undo", str(undo), "--dsn", db.dsn, "--yes")
    assert result.returncode == code, result.stderr
    assert one_line_error(result.stderr).startswith("controller-audit: " + message.format(path=undo))
    assert full_dump(db.conn) == repaired and _files(tmp_path) == files


def test_undo_file_of_another_database_is_refused(make_db, tmp_path):
    here, there = _storied(make_db), _storied(make_db)
    assert cli("plan", "--dsn", here.dsn, "-o", str(tmp_path / "p.json")).returncode == 0
    undo = tmp_path / "u.json"
    assert cli("apply", str(tmp_path / "p.json"), "--dsn", here.dsn, "--yes", "--undo-file", str(undo)).returncode == 0
    before, files = full_dump(there.conn), _files(tmp_path)
    result = cli("undo", str(undo), "--dsn", there.dsn, "--yes")
    assert result.returncode == 4, result.stderr
    line = one_line_error(result.stderr)
    assert line.startswith("controller-audit: other database: this undo file was made on database ")
    assert repr(here.name) in line and repr(there.name) in line
    assert full_dump(there.conn) == before and _files(tmp_path) == files


#: Plan damages tests/repairs checks without asserting that no file was written.
PLAN_DAMAGE: dict[str, tuple[Callable[[Path], None], int, str]] = {
    "edited": (lambda p: _reseal(p, lambda d: d.update(created="2001-01-01T00:00:00+00:00"), reseal=False), 4,
               "edited plan: {path} was edited after it was written (checksum mismatch)"),
    "newer-format": (lambda p: _reseal(p, lambda d: _newer(d, planfile.FORMAT_VERSION)), 4,
                     f"newer plan format: {{path}} is plan format version {planfile.FORMAT_VERSION + 1}; "
                     f"this controller-audit reads up to {planfile.FORMAT_VERSION}: upgrade controller-audit"),
    "resealed-changes": (lambda p: _reseal(p, lambda d: d.update(expected_changes={})), 4,
                         "edited plan: {path}: the expected row changes do not match its actions"),
    "an-undo-file": (lambda p: p.write_bytes(p.with_name("u.json").read_bytes()), 3,
                     "bad plan file: {path} is not a plan file (format is not 'controller-audit-plan')"),
    "empty-file": (lambda p: p.write_text(""), 3, "bad plan file: {path} is not a plan file (not JSON, or truncated"),
    # cut inside a string: json says "Unterminated string starting at", the line once read "at at line 1"
    "truncated-in-a-string": (lambda p: p.write_bytes(p.read_bytes()[:p.read_bytes().index(b'":"') + 5]), 3,
                              "bad plan file: {path} is not a plan file (not JSON, or truncated: Unterminated "
                              "string starting at line 1)"),
}


@pytest.mark.parametrize("damage", list(PLAN_DAMAGE))
def test_bad_plan_is_refused_and_nothing_written(make_db, tmp_path, damage):
    db = _storied(make_db)
    other = _storied(make_db)  # its undo file is a well-formed file of the wrong kind
    assert cli("plan", "--dsn", other.dsn, "-o", str(tmp_path / "o.json")).returncode == 0
    assert cli("apply", str(tmp_path / "o.json"), "--dsn", other.dsn, "--yes", "--undo-file",
               str(tmp_path / "u.json")).returncode == 0
    plan = tmp_path / "p.json"
    assert cli("plan", "--dsn", db.dsn, "-o", str(plan)).returncode == 0
    spoil, code, message = PLAN_DAMAGE[damage]
    spoil(plan)
    before, files = full_dump(db.conn), _files(tmp_path)
    for args in (["apply", str(plan), "--dsn", db.dsn, "--yes"], ["apply", str(plan), "--dsn", db.dsn, "--rehearse"],
                 ["plan", "sql", str(plan), "-o", str(tmp_path / "p.sql")]):
        result = cli(*args)
        assert result.returncode == code, (args, result.stderr)
        assert one_line_error(result.stderr).startswith("controller-audit: " + message.format(path=plan))
    assert full_dump(db.conn) == before and _files(tmp_path) == files
