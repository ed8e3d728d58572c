"""Issue #17, durations: every timeout takes a unit (``5s``, ``300ms``, ``2min``), wherever it comes
from (option, environment, config file); a bare number is refused with one line saying to add a
unit (``--statement-timeout 5`` used to mean 5 ms, silently)."""

from __future__ import annotations

import pytest

from auditor.core.settings import resolve
from tests.helpers import messages


@pytest.mark.parametrize("args", [
    ["check", "--statement-timeout", "5"], ["info", "--lock-timeout", "5"], ["check", "--statement-timeout", "2.5"],
    ["apply", "p.json", "--commit-timeout", "5"], ["undo", "u.json", "--commit-timeout", "5"],
    ["plan", "sql", "p.json", "--lock-timeout", "5"],
])
def test_a_bare_number_is_refused_with_one_line_asking_for_a_unit(run, args):
    result = run(*args)
    assert result.exit_code == 3, result.output
    (line,) = result.stderr.strip().splitlines()
    number = args[-1]
    assert line.startswith(f"controller-audit: bad usage: Invalid value for '{args[-2]}': bad timeout value "
                           f"'{number}': add a unit: {number}s, {number}ms or {number}min"), line


@pytest.mark.parametrize(("variable", "text"), [
    ("CONTROLLER_AUDIT_STATEMENT_TIMEOUT", "5"), ("CONTROLLER_AUDIT_LOCK_TIMEOUT", "5"),
    ("CONTROLLER_AUDIT_COMMIT_TIMEOUT", "60"),
])
def test_the_environment_is_held_to_the_same_rule(run, variable, text):
    result = run("info", env={variable: text})
    assert result.exit_code == 3
    assert f"{variable}: bad timeout value '{text}': add a unit" in result.stderr


@pytest.mark.parametrize(("toml", "key"), [
    ("statement_timeout = 5\n", "statement_timeout"), ('lock_timeout = "5"\n', "lock_timeout"),
    ("commit_timeout = 60\n", "commit_timeout"),
])
def test_config_file_durations_too(run, tmp_path, toml, key):
    (tmp_path / "controller-audit.toml").write_text(toml)
    result = run("info")
    assert result.exit_code == 3
    line = messages(result.stderr).strip()
    assert line.startswith(f"controller-audit: bad config file: controller-audit.toml: {key}: bad timeout value ")
    assert "add a unit" in line


def test_minutes_are_min_not_m(run):
    result = run("check", "--statement-timeout", "2m")
    assert result.exit_code == 3
    assert "bad timeout value '2m' (minutes are 2min)" in result.stderr


def test_units_are_taken_everywhere(hephy_db, run, tmp_path, monkeypatch):
    assert run("check", "--dsn", hephy_db.dsn, "--statement-timeout", "2min", "--lock-timeout", "300ms").exit_code == 0
    monkeypatch.setenv("CONTROLLER_AUDIT_STATEMENT_TIMEOUT", "2min")
    monkeypatch.setenv("CONTROLLER_AUDIT_COMMIT_TIMEOUT", "2min")
    settings = resolve({})
    assert (settings.statement_timeout, settings.commit_timeout) == ("2min", 120.0)
    monkeypatch.delenv("CONTROLLER_AUDIT_STATEMENT_TIMEOUT")
    monkeypatch.delenv("CONTROLLER_AUDIT_COMMIT_TIMEOUT")
    (tmp_path / "controller-audit.toml").write_text('statement_timeout = "5s"\ncommit_timeout = "500ms"\n')
    from_file = resolve({})
    assert (from_file.statement_timeout, from_file.commit_timeout) == ("5s", 0.5)


def test_help_says_a_unit_is_needed(run):
    helped = run("apply", "--help").stdout
    assert "--commit-timeout DURATION" in helped and "with its" in helped and "unit (60s, 2min" in helped
    assert "default: 60s]" in helped


@pytest.mark.parametrize(("where", "value"), [
    ("--statement-timeout", "0s"), ("--lock-timeout", "0ms"), ("--lock-timeout", "400us"),
    ("CONTROLLER_AUDIT_LOCK_TIMEOUT", "0min"), ("lock_timeout", "0s"),
])
def test_a_timeout_of_zero_is_refused_not_taken_for_none(hephy_db, run, tmp_path, where, value):
    """PostgreSQL takes ``statement_timeout`` / ``lock_timeout`` 0 (and under a millisecond, rounded to
    0) as no timeout at all: ``--lock-timeout 0ms`` used to wait for a lock forever.  Refused with one
    line, from the command line, the environment and the config file."""
    if where.startswith("--"):
        result = run("check", "--dsn", hephy_db.dsn, where, value)
    elif where.isupper():
        result = run("check", "--dsn", hephy_db.dsn, env={where: value})
    else:
        (tmp_path / "controller-audit.toml").write_text(f'{where} = "{value}"\n')
        result = run("check", "--dsn", hephy_db.dsn)
    assert result.exit_code == 3, result.output
    (line,) = messages(result.stderr).strip().splitlines()
    assert f"{where}: " in line or f"'{where}': " in line, line
    assert f"bad timeout value '{value}' (at least 1ms: PostgreSQL takes 0 as no timeout at all)" in line, line
    if where.startswith("--"):  # a millisecond is a timeout
        assert run("check", "--dsn", hephy_db.dsn, where, "1ms" if where == "--lock-timeout" else "60s",
                   "--fail-on", "never").exit_code == 0
