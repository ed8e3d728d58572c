"""The config file: controller-audit.toml, [tool.controller-audit] in pyproject.toml, --config."""

from __future__ import annotations

import pytest

from tests.cli.conftest import report


def write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def damaged(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    web.push()
    web.orphan_config(X="1")  # each app's newest config: boot re-saves it (a warning)
    api = ctl.create_app("api")
    api.push()
    api.orphan_config(X="1")
    return web, api


def test_config_file_in_working_directory(hephy_db, run):
    damaged(hephy_db)
    write("controller-audit.toml", '''
dsn_env = "MY_CONTROLLER_DSN"
format = "json"
fail_on = "critical"
grace = 0
apps = ["api"]
exclude = ["shared-config", "shared-build"]

[severity]
orphan-config = {floor = "critical"}
''')
    result = run("check", "--check", "orphan-config", "--check", "orphan-build",
                 env={"MY_CONTROLLER_DSN": hephy_db.dsn})
    assert result.exit_code == 2, result.output
    doc = report(result)
    assert [(f["check"], f["severity"], f["app"]["name"]) for f in doc["findings"]] == [
        ("orphan-config", "critical", "api")]
    assert doc["summary"]["fail_on"] == "critical"


def test_command_line_wins_over_the_file(hephy_db, run):
    damaged(hephy_db)
    write("controller-audit.toml", 'format = "json"\nfail_on = "critical"\nexclude = ["orphan-config"]\n')
    result = run("check", "--dsn", hephy_db.dsn, "--check", "orphan-config", "--format", "table", "--fail-on", "warning")
    assert result.exit_code == 1
    assert result.stdout.startswith("WARNING - app api")


def test_pyproject_table(hephy_db, run):
    damaged(hephy_db)
    write("pyproject.toml", '[project]\nname = "x"\n\n[tool.controller-audit]\nexclude = ["orphan-config"]\n'
                            'fail-on = "never"\n')
    result = run("check", "--dsn", hephy_db.dsn, "--format", "json")
    assert result.exit_code == 0
    assert "orphan-config" not in report(result)["summary"]["checks_run"]


def test_explicit_config_path_and_app_allow_list(hephy_db, run):
    damaged(hephy_db)
    write("audit.toml", 'apps = ["web"]\n')
    result = run("check", "--config", "audit.toml", "--dsn", hephy_db.dsn, "--check", "orphan-config", "--format", "json")
    assert {f["app"]["name"] for f in report(result)["findings"]} == {"web"}
    outside = run("check", "--config", "audit.toml", "--dsn", hephy_db.dsn, "--app", "api")
    assert outside.exit_code == 3
    assert "app 'api' is not in the apps allow-list of audit.toml" in outside.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('colour = "blue"\n', "controller-audit.toml: colour: unknown key"),
        ('format = "yaml"\n', "controller-audit.toml: format: must be one of table, json, prometheus"),
        ('fail_on = "sometimes"\n', "controller-audit.toml: fail_on: must be one of"),
        ("grace = -1\n", "controller-audit.toml: grace: must be a number of seconds >= 0"),
        ('apps = "web"\n', "controller-audit.toml: apps: must be a list of strings"),
        ('exclude = ["nope"]\n', "controller-audit.toml: exclude: no check with id 'nope'"),
        ('[severity]\norphan-config = "fatal"\n', "controller-audit.toml: severity.orphan-config: must be one of"),
        ('dsn = "host=db user=deis password=hunter2"\n', "controller-audit.toml: dsn: holds a password"),
        ('dsn = "postgresql://deis:hunter2@db/deis"\n', "controller-audit.toml: dsn: holds a password"),
        ('dsn_env = "NOT_SET_ANYWHERE"\n', "dsn_env names NOT_SET_ANYWHERE, which is not set"),
        ("format = [\n", "controller-audit.toml: not valid TOML"),
    ],
)
def test_bad_config_exits_3_naming_the_key(run, text, message):
    write("controller-audit.toml", text)
    result = run("check")  # no --dsn: it would win over dsn_env
    assert result.exit_code == 3
    assert message in result.stderr
    assert "hunter2" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_dsn_without_password_from_the_file(hephy_db, run):
    damaged(hephy_db)
    write("controller-audit.toml", f'dsn = "{hephy_db.dsn}"\n')
    assert run("check", "--check", "orphan-config").exit_code == 1
    assert run("explain", "web").exit_code == 0
