"""Issue #15, case 1: one settings path (command line > environment > config file > defaults).

Each symptom of the old code is a test: ``plan``, ``apply`` and ``undo`` ignored ``dsn_env`` and the
``apps`` allow-list, ``plan --grace`` ignored the config file, ``explain`` had its own grace
default, ``plan sql`` its own lock timeout.  And every command that connects says first, on
stderr, which database it works on.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from tests.helpers import DATABASE_LINE, login_role_dsn, messages
from tests.repairs.helpers import story

#: A libpq default that reaches no server: a command that ignores the config file's target fails.
NOWHERE = {"PGHOST": "/nonexistent-socket-dir", "PGPORT": "1"}


def write(text: str) -> None:
    with open("controller-audit.toml", "w") as handle:
        handle.write(text)


def damaged(db) -> None:
    story(db.controller())


def plan_doc(path: str = "p.json") -> dict:
    with open(path) as handle:
        return json.load(handle)


def planned_apps(path: str = "p.json") -> set[str]:
    doc = plan_doc(path)
    apps = doc["actions"]["apps"]
    return {apps[row[2]][1] for row in doc["actions"]["rows"]}


def test_plan_apply_and_undo_connect_through_the_config_files_dsn_env(hephy_db, run):
    damaged(hephy_db)
    write('dsn_env = "MY_CONTROLLER_DSN"\n')
    env = {"MY_CONTROLLER_DSN": hephy_db.dsn, **NOWHERE}
    planned = run("plan", "-o", "p.json", env=env)
    assert planned.exit_code == 0, planned.output
    assert plan_doc()["database"]["database"] == hephy_db.name
    applied = run("apply", "p.json", "--yes", "--undo-file", "u.json", env=env)
    assert applied.exit_code == 0, applied.output
    undone = run("undo", "u.json", "--yes", env=env)
    assert undone.exit_code == 0, undone.output
    shown = run("undo", "sql", "u.json", env=env)
    assert shown.exit_code == 0, shown.output


def test_plan_keeps_to_the_apps_allow_list(hephy_db, run):
    damaged(hephy_db)
    write('apps = ["web"]\n')
    planned = run("plan", "--dsn", hephy_db.dsn, "-o", "p.json")
    assert planned.exit_code == 0, planned.output
    assert planned_apps() == {"web"}
    outside = run("plan", "--dsn", hephy_db.dsn, "--app", "api", "-o", "q.json")
    assert outside.exit_code == 3
    assert "app 'api' is not in the apps allow-list of controller-audit.toml" in outside.stderr


def test_apply_and_undo_refuse_apps_outside_the_allow_list(hephy_db, run):
    damaged(hephy_db)
    assert run("plan", "--dsn", hephy_db.dsn, "-o", "p.json").exit_code == 0  # every app: no config file yet
    assert {"web", "api"} <= planned_apps()
    write(f'dsn = "{hephy_db.dsn}"\napps = ["web"]\n')
    refused = run("apply", "p.json", "--yes")
    assert refused.exit_code == 4
    assert "outside the allow-list: the plan changes app(s) api, outside the apps allow-list" in messages(refused.stderr)
    assert run("apply", "p.json", "--yes", "--config", "/dev/null", "--dsn", hephy_db.dsn,
               "--undo-file", "u.json").exit_code == 0
    undo = run("undo", "u.json", "--yes")
    assert undo.exit_code == 4 and "the undo file changes app(s) api" in undo.stderr
    assert run("undo", "u.json", "--yes", "--app", "api").exit_code == 3  # --app must be inside the list
    assert run("undo", "u.json", "--yes", "--app", "web").exit_code == 0


def test_plan_takes_its_grace_from_the_config_file(hephy_db, run):
    ctl = hephy_db.controller()
    web = ctl.create_app("web")
    web.push()
    young = web.orphan_config(X="1", at=datetime.now(timezone.utc))  # just now: in flight under the default
    write("grace = 0\n")
    assert run("plan", "--dsn", hephy_db.dsn, "-o", "p.json", "--repair", "prune-orphans").exit_code in (0, 2)
    assert plan_doc()["scope"]["grace_seconds"] == 0
    assert young in {row[3] for row in plan_doc()["actions"]["rows"]}


@pytest.mark.parametrize(("env", "file", "flag", "expected"), [
    ({}, None, None, 300), ({}, 120, None, 120), ({"CONTROLLER_AUDIT_GRACE": "60"}, 120, None, 60),
    ({"CONTROLLER_AUDIT_GRACE": "60"}, 120, "30", 30),
])
def test_command_line_then_environment_then_config_file_then_default(hephy_db, run, env, file, flag, expected):
    write(f"grace = {file}\n" if file is not None else "")
    args = ["plan", "--dsn", hephy_db.dsn, "-o", "p.json"] + (["--grace", flag] if flag else [])
    assert run(*args, env=env).exit_code == 0
    assert plan_doc()["scope"]["grace_seconds"] == expected


def test_explain_takes_grace_and_skew_like_check(hephy_db, run):
    ctl = hephy_db.controller()
    web = ctl.create_app("web")
    web.push()
    web.orphan_config(X="1", at=datetime.now(timezone.utc) - timedelta(seconds=100))  # in flight under 300 s
    default = run("explain", "web", "--dsn", hephy_db.dsn, "--format", "json")
    assert not [f for f in json.loads(default.stdout)["findings"] if f["check"] == "orphan-config"]
    for how in ({"CONTROLLER_AUDIT_GRACE": "60"}, "grace = 60\n"):
        write(f'dsn = "{hephy_db.dsn}"\n' + (how if isinstance(how, str) else ""))
        explained = run("explain", "web", "--format", "json", env=how if isinstance(how, dict) else None)
        checked = run("check", "--check", "orphan-config", "--format", "json", env=how if isinstance(how, dict) else None)
        assert [f["check"] for f in json.loads(explained.stdout)["findings"]].count("orphan-config") == 1
        assert [f["check"] for f in json.loads(checked.stdout)["findings"]] == ["orphan-config"]


def test_plan_sql_takes_its_lock_timeout_from_the_settings(hephy_db, run):
    damaged(hephy_db)
    assert run("plan", "--dsn", hephy_db.dsn, "-o", "p.json").exit_code == 0
    write('lock_timeout = "7s"\n')
    script = run("plan", "sql", "p.json")
    assert script.exit_code == 0, script.output
    assert re.search(r"SET LOCAL lock_timeout = '7s'", script.stdout)
    from_env = run("plan", "sql", "p.json", env={"CONTROLLER_AUDIT_LOCK_TIMEOUT": "900ms"})
    assert "SET LOCAL lock_timeout = '900ms'" in from_env.stdout
    flag = run("plan", "sql", "p.json", "--lock-timeout", "2s", env={"CONTROLLER_AUDIT_LOCK_TIMEOUT": "900ms"})
    assert "SET LOCAL lock_timeout = '2s'" in flag.stdout


def test_a_bad_environment_value_is_one_line_naming_the_variable(run):
    result = run("plan", "sql", "p.json", env={"CONTROLLER_AUDIT_LOCK_TIMEOUT": "soon"})
    assert result.exit_code == 3
    assert result.stderr.strip().splitlines() == [
        "controller-audit: bad usage: CONTROLLER_AUDIT_LOCK_TIMEOUT: bad timeout value 'soon' (a PostgreSQL duration "
        "such as 60s, 500ms or 5min)"]


def test_every_command_that_connects_names_its_database_first_on_stderr(hephy_db, run, tmp_path):
    damaged(hephy_db)
    dsn = login_role_dsn(hephy_db, "announcer", "pw-s3cret-77", "GRANT ALL ON ALL TABLES IN SCHEMA public TO {}",
                         "GRANT TEMPORARY ON DATABASE " + hephy_db.name + " TO {}")
    where = f"({hephy_db.controller().generation.name} {hephy_db.controller().generation.migration:04d})"
    commands = [
        ["info"], ["check", "--format", "json"], ["check", "--format", "prometheus"], ["explain", "web"],
        ["blast-radius", "app", "web"], ["baseline", "create", "b.json"], ["plan", "-o", "p.json"],
        ["plan", "show", "p.json", "--format", "html", "-o", "p.html"], ["apply", "p.json", "--yes", "--rehearse"],
        ["apply", "p.json", "--yes", "--undo-file", "u.json"], ["undo", "u.json", "--yes"],
    ]
    for args in commands:
        result = run(*args, "--dsn", dsn)
        assert result.exit_code in (0, 1, 2), (args, result.output)
        first = result.stderr.splitlines()[0]
        assert DATABASE_LINE.match(first) and first.endswith(f"/{hephy_db.name} {where}"), (args, first)
        assert "pw-s3cret-77" not in result.output and "announcer" not in first
        assert not result.stdout.startswith("controller-audit: database")  # stdout stays machine-readable


@pytest.mark.parametrize(("option", "instead"), [
    ("--dsn", "the config file's dsn_env or dsn, DATABASE_URL, DEIS_DATABASE_* or PG*"),
    ("--config", "./controller-audit.toml or ./pyproject.toml"),
])
@pytest.mark.parametrize("command", [["check"], ["info"], ["explain", "web"], ["plan", "-o", "p.json"]])
def test_an_empty_dsn_or_config_is_refused_not_replaced(hephy_db, run, tmp_path, option, instead, command):
    """``--dsn "$UNSET"`` used to fall back to DATABASE_URL (another database), ``--config "$UNSET"``
    to ./controller-audit.toml (another allow-list): one line, exit 3, nothing read or written."""
    story(hephy_db.controller())
    (tmp_path / "controller-audit.toml").write_text('apps = ["web", "api"]\n')
    result = run(*command, option, "", env={"DATABASE_URL": hephy_db.dsn})
    assert result.exit_code == 3, result.output
    assert result.stderr == (f"controller-audit: bad usage: {option} is empty (an unset variable?): give one, or "
                             f"leave the option out to use {instead}\n")
    assert not (tmp_path / "p.json").exists()
