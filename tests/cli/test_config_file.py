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
        # an empty allow-list used to allow every app (apply and undo included)
        ("apps = []\n", "controller-audit.toml: apps: is an empty list, which would allow no app: name the apps, "
                        "or remove the key to audit every app"),
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


#: A value the file may hold for each single-valued key (a TOML literal), and what it resolves to.
GOOD_FILE_VALUES = {
    "grace": ("120", 120.0), "skew": ("30.5", 30.5), "statement_timeout": ('"90s"', "90s"),
    "lock_timeout": ('"2s"', "2s"), "commit_timeout": ('"45s"', 45.0), "format": ('"json"', "json"),
    "fail_on": ('"critical"', "critical"), "min_severity": ('"info"', "info"), "connections": ("1", 1),
}


def test_the_file_knows_exactly_the_declared_settings():
    """One registry: every setting the file may set is an option of the command line and the environment."""
    from auditor.core.configfile import KNOWN_KEYS
    from auditor.core.options import OPTIONS

    declared = {o.key for o in OPTIONS if o.key is not None}
    assert set(KNOWN_KEYS) == {"dsn_env", "dsn", "apps", "exclude", "severity", *declared}
    assert declared == set(GOOD_FILE_VALUES)


@pytest.mark.parametrize("key", sorted(GOOD_FILE_VALUES))
def test_each_setting_of_the_file_resolves(run, tmp_path, key):
    from auditor.core.options import OPTION_BY_KEY
    from auditor.core.settings import resolve

    literal, expected = GOOD_FILE_VALUES[key]
    path = tmp_path / "c.toml"
    path.write_text(f"{key} = {literal}\n")
    settings = resolve({"config": str(path)}, environ={})
    option = OPTION_BY_KEY[key]
    assert getattr(settings, option.name) == expected
    assert settings.sources[option.name] == str(path)


@pytest.mark.parametrize("key", sorted(GOOD_FILE_VALUES))
@pytest.mark.parametrize("literal", ['["x"]', "{ a = 1 }", "true", "-1"])
def test_a_value_of_the_wrong_kind_is_one_line_naming_the_key(run, key, literal):
    """A list, a table, a boolean or a negative number: exit 3 and one line, never a traceback."""
    write("controller-audit.toml", f"{key} = {literal}\n")
    result = run("check")
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"controller-audit: bad config file: controller-audit.toml: {key}: ")


@pytest.mark.parametrize(("name", "raw", "message"), [
    ("controller-audit.toml", b'format = "json"\n# caf\xe9 (Latin-1)\n',
     "controller-audit.toml: not valid TOML: not UTF-8 text (byte 0xe9 at offset 21)"),
    ("controller-audit.toml", b"a = " + b"[" * 100_000 + b"\n", "controller-audit.toml: not valid TOML: nested too deeply"),
    ("pyproject.toml", b"[tool.controller-audit]\na = " + b"[" * 100_000 + b"\n", "pyproject.toml: not valid TOML"),
])
def test_a_config_file_python_cannot_read_is_one_line(run, tmp_path, name, raw, message):
    """A file in another encoding, or nested past Python's recursion limit: ``bad config file``, one
    line naming it (it was ``internal error: UnicodeDecodeError`` / ``RecursionError``)."""
    (tmp_path / name).write_bytes(raw)
    result = run("check")
    assert result.exit_code == 3
    assert result.stderr.startswith("controller-audit: bad config file: ")
    assert result.stderr.endswith(f"{message}\n")
    assert len(result.stderr.splitlines()) == 1
    explicit = run("check", "--config", name)
    assert explicit.exit_code == 3
    assert explicit.stderr.startswith(f"controller-audit: bad config file: {name}")
    assert "internal error" not in explicit.stderr


@pytest.mark.parametrize("name, text", [
    ("controller-audit.toml", 'format = "json"\nexclude = ["orphan-config"]\n'),
    ("pyproject.toml", '[tool.controller-audit]\nformat = "json"\nexclude = ["orphan-config"]\n'),
])
def test_a_byte_order_mark_at_the_start_is_read_past(hephy_db, run, name, text):
    """A file saved by an editor that writes a UTF-8 byte-order mark: read as without it (it was
    ``bad config file: ... Invalid statement (at line 1, column 1)``, and the pyproject table was ignored)."""
    damaged(hephy_db)
    with open(name, "wb") as handle:
        handle.write(b"\xef\xbb\xbf" + text.encode())
    result = run("check", "--dsn", hephy_db.dsn, "--fail-on", "never")
    assert result.exit_code == 0, result.output
    doc = report(result)
    assert doc["findings"] and "orphan-config" not in {f["check"] for f in doc["findings"]}
