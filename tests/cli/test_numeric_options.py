"""Every numeric option is finite and in range, with one line of error; exit codes as documented
(issue 13, case 10)."""

from __future__ import annotations

import psycopg
import pytest


def _one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("controller-audit: "), result.output
    assert "internal error" not in lines[0] and "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("args", [
    ("plan", "--grace", "nan", "-o", "x.plan"),
    ("plan", "--grace", "inf", "-o", "x.plan"),
    ("plan", "--grace", "-1", "-o", "x.plan"),
    ("plan", "--grace", "1e309", "-o", "x.plan"),
    ("plan", "--grace", "999999999999", "-o", "x.plan"),
    ("check", "--grace", "nan"),
    ("check", "--grace", "-inf"),
    ("baseline", "create", "b.json", "--grace", "inf"),
    ("explain", "web", "--grace", "NaN"),
    ("blast-radius", "app", "web", "--limit", "0"),
    ("blast-radius", "app", "web", "--limit", "99999999999999999999"),
    ("check", "--statement-timeout", "-5s"),
    ("check", "--statement-timeout", "nan"),
    ("info", "--lock-timeout", "1e400"),
    ("info", "--statement-timeout", "99999d"),
    ("plan", "sql", "x.plan", "--lock-timeout", "soon"),
])
def test_bad_numbers_are_one_line_before_anything_connects(hephy_db, run, args):
    result = run(*args, "--dsn", hephy_db.dsn) if args[:2] != ("plan", "sql") else run(*args)
    assert result.exit_code == 3
    line = _one_line(result)
    assert "Invalid value for" in line, line


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "1e12", "true"])
def test_bad_grace_in_the_config_file(hephy_db, run, value):
    with open("controller-audit.toml", "w") as handle:
        handle.write(f"grace = {value}\n")
    result = run("check", "--dsn", hephy_db.dsn)
    assert result.exit_code == 3
    assert "controller-audit.toml: grace: must be a number of seconds >= 0" in _one_line(result)


def test_a_malformed_connect_timeout_variable(hephy_db, run):
    result = run("check", "--dsn", hephy_db.dsn, env={"PGCONNECT_TIMEOUT": "soon"})
    assert result.exit_code == 3
    assert "PGCONNECT_TIMEOUT must be a whole number of seconds" in _one_line(result)


@pytest.fixture
def planned(hephy_db, run):
    web = hephy_db.controller().create_app("web")
    web.push()
    web.orphan_build()
    assert run("plan", "--dsn", hephy_db.dsn, "-o", "web.plan").exit_code == 0
    return hephy_db


@pytest.mark.parametrize(("options", "kind"), [
    (("--statement-timeout", "1ms"), "controller-audit: timeout: statement_timeout reached"),
    (("--lock-timeout", "1ms"), "controller-audit: lock conflict: lock_timeout 1ms reached"),
])
@pytest.mark.parametrize("command", ["apply", "undo"])
def test_apply_timeouts_end_with_the_documented_apply_exit_code(planned, run, options, kind, command):
    """While apply (or undo) checks the database, a session holds a lock it needs: with a 1 ms
    statement_timeout (or lock_timeout) it gives up, nothing changed, exit 5 as documented."""
    if command == "undo":
        assert run("apply", "web.plan", "--dsn", planned.dsn, "--yes", "--undo-file", "web.undo").exit_code == 0
        args = ("undo", "web.undo")
    else:
        args = ("apply", "web.plan")
    with psycopg.connect(planned.dsn) as blocker:
        blocker.execute("LOCK TABLE django_migrations IN ACCESS EXCLUSIVE MODE")
        result = run(*args, "--dsn", planned.dsn, "--yes", *options)
        blocker.rollback()
    assert result.exit_code == 5, result.output
    assert _one_line(result).startswith(kind)
    assert "nothing was changed" in result.stderr
