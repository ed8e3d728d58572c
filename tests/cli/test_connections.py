"""``check --connections``: whether a JSON report of every finding may read with a second connection
(auditor.audit.split), from the command line, the environment or the config file."""

from __future__ import annotations

import json
import pickle
import threading

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


@pytest.fixture
def second_threads(monkeypatch) -> list[str]:
    """The names of the threads started (the second connection's is ``controller-audit-second``)."""
    started: list[str] = []
    real = threading.Thread.start

    def recording(self):
        started.append(self.name)
        return real(self)

    monkeypatch.setattr(threading.Thread, "start", recording)
    return started


#: Lines that differ between two runs: the duration, and the checks that print the transaction's clock.
_CLOCKED = ('"duration_seconds"', '{"check": "future-dated"', '{"check": "release-order"')


def _unclocked(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not any(part in line for part in _CLOCKED))


def _documents(run, tmp_path, *args: str) -> tuple[str, str]:
    """``check --format json --min-severity info ARGS`` with two connections and with one: both documents."""
    for connections in ("2", "1"):
        result = run("check", "--dsn", *args, "--format", "json", "--min-severity", "info",
                     "--connections", connections, "-o", f"c{connections}.json")
        assert result.exit_code == 2, result.output
    return tuple(_unclocked((tmp_path / f"c{n}.json").read_text()) for n in ("2", "1"))  # type: ignore[return-value]


def test_the_second_connection_s_lines_are_spooled_by_its_thread_not_replayed(damaged, run, tmp_path, monkeypatch,
                                                                              second_threads):
    """Without a baseline the second backend's findings never go through the main thread: its thread
    writes their report lines and counts them (nothing pickled, nothing read back); the document is
    the one connection's byte for byte, summary and exit code included."""
    def refused(*args, **kwargs):
        raise AssertionError("the second half's findings were pickled or read back")

    monkeypatch.setattr(pickle, "dump", refused)
    monkeypatch.setattr(pickle, "load", refused)
    two, one = _documents(run, tmp_path, damaged.dsn)
    assert second_threads == ["controller-audit-second"]
    assert two == one and '"shared-build"' in two and '"orphan-config"' in two


def test_a_baseline_judges_the_second_connection_s_findings_too(damaged, run, tmp_path, second_threads):
    """With a baseline every finding passes its judgement in order (the second half read back): some
    accepted, some worse since accepted (marked in their lines), in both halves; the document is the
    one connection's."""
    assert run("baseline", "create", "known.json", "--dsn", damaged.dsn).exit_code == 0
    known = json.loads((tmp_path / "known.json").read_text())
    lowered = {"orphan-config", "latest-config-not-live", "cross-app-reference", "shared-build"}
    for entry in known["entries"]:
        if entry["check"] in lowered and entry["severity"] != "info":
            entry["severity"] = "info"
    (tmp_path / "known.json").write_text(json.dumps(known))
    two, one = _documents(run, tmp_path, damaged.dsn, "--baseline", "known.json")
    assert second_threads == ["controller-audit-second"]
    assert two == one and '"suppressed": 0,' not in one
    findings = [json.loads(line.rstrip(",")) for line in one.splitlines() if line.startswith('  {"check": ')]
    worse = {f["check"] for f in findings if "baseline" in f}
    assert worse & {"orphan-config"} and worse - {"orphan-config"}  # marked in both halves
