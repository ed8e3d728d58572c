"""``check --connections``: whether a JSON report of every finding may read with a second connection
(auditor.audit.split), from the command line, the environment or the config file."""

from __future__ import annotations

import pytest

from auditor.cli.commands import check as check_command
from tests.cli.conftest import report
from tests.test_bench import damaged_story


@pytest.fixture
def damaged(make_db):
    db = make_db(28)
    damaged_story(db.conn)
    return db


@pytest.fixture
def shared(monkeypatch) -> list[bool]:
    """Whether each ``check`` asked its audit for a snapshot a second connection may share (the real
    audit runs, on the real database)."""
    asked: list[bool] = []
    real = check_command.open_audit

    def recording(settings, **kwargs):
        asked.append(kwargs.get("shared", False))
        return real(settings, **kwargs)

    monkeypatch.setattr(check_command, "open_audit", recording)
    return asked


def _findings(result) -> list[tuple[str, str]]:
    return [(f["check"], f["key"]) for f in report(result)["findings"]]


def test_one_connection_from_the_flag_the_environment_or_the_file(damaged, run, tmp_path, shared):
    args = ("check", "--dsn", damaged.dsn, "--format", "json", "--min-severity", "info")
    two = run(*args)
    one = run(*args, "--connections", "1")
    from_env = run(*args, env={"CONTROLLER_AUDIT_CONNECTIONS": "1"})
    (tmp_path / "controller-audit.toml").write_text("connections = 1\n")
    from_file = run(*args)
    # The command line wins over the file.
    flag_over_file = run(*args, "--connections", "2")
    assert shared == [True, False, False, False, True]
    assert {r.exit_code for r in (two, one, from_env, from_file, flag_over_file)} == {2}
    assert _findings(one) == _findings(two) == _findings(from_file)


def test_the_default_listing_never_asks_for_a_second_connection(damaged, run, shared):
    run("check", "--dsn", damaged.dsn, "--format", "json", "--connections", "2")
    run("check", "--dsn", damaged.dsn, "--format", "table", "--min-severity", "info")
    assert shared == [False, False]


@pytest.mark.parametrize("value", ["0", "3", "two"])
def test_a_count_other_than_1_or_2_is_refused_in_one_line(run, value):
    result = run("check", "--dsn", "host=/nonexistent dbname=x", "--connections", value)
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--connections" in lines[0]


@pytest.mark.parametrize("source", ["env", "file"])
def test_a_bad_count_in_the_environment_or_the_file_is_refused(run, tmp_path, source):
    env = {"CONTROLLER_AUDIT_CONNECTIONS": "3"} if source == "env" else None
    if source == "file":
        (tmp_path / "controller-audit.toml").write_text("connections = 3\n")
    result = run("check", "--dsn", "host=/nonexistent dbname=x", env=env)
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "connections" in lines[0].lower() and "1, 2" in lines[0]
