"""Issue #17, psql habits: ``-h HOST -p PORT -U USER -d DBNAME`` on every command that connects,
merged into the one target resolution (each flag replaces its part of the target: ``--dsn``, the
config file's, ``DATABASE_URL``, ``DEIS_DATABASE_*`` or libpq's defaults); ``-h`` is never help;
no flag takes a password.

The test server listens on a Unix socket directory: ``-h /that/directory`` is what psql takes too.
"""

from __future__ import annotations

import pytest
from psycopg import conninfo

from tests.helpers import DATABASE_LINE, login_role_dsn, messages
from tests.repairs.helpers import story

#: libpq defaults that reach no server: a command that ignored the flags would fail.
NOWHERE = {"PGHOST": "/nonexistent-socket-dir", "PGPORT": "1", "PGDATABASE": "nowhere", "PGUSER": "nobody"}


def flags(dsn: str) -> list[str]:
    """``-h -p -U -d`` naming the database of ``dsn``."""
    params = conninfo.conninfo_to_dict(dsn)
    return ["-h", str(params["host"]), "-p", str(params.get("port") or 5432), "-U", str(params["user"]),
            "-d", str(params["dbname"])]


def database_of(stderr: str) -> str:
    """The database name of the database line a command prints first."""
    first = stderr.splitlines()[0]
    assert DATABASE_LINE.match(first), stderr
    return first.split(" (")[0].rsplit("/", 1)[1]


@pytest.fixture
def local(pg_server):
    if pg_server.cluster is None:
        pytest.skip("needs a server the test bed started (a Unix socket directory, password logins)")
    return pg_server


def test_psql_flags_reach_the_test_server_on_every_command_that_connects(local, hephy_db, run):
    story(hephy_db.controller())
    args = flags(hephy_db.dsn)
    commands = [
        ["info"], ["check", "--format", "json"], ["explain", "web"], ["blast-radius", "app", "web"],
        ["baseline", "create", "b.json"], ["plan", "-o", "p.json"],
        ["plan", "show", "p.json", "--format", "html", "-o", "p.html"], ["apply", "p.json", "--yes", "--rehearse"],
        ["apply", "p.json", "--yes", "--undo-file", "u.json"], ["undo", "sql", "u.json"], ["undo", "u.json", "--yes"],
    ]
    for command in commands:
        result = run(*command, *args, env=NOWHERE)
        assert result.exit_code in (0, 1, 2), (command, result.output)
        if command[:2] != ["undo", "sql"]:  # it reads the database only for undo files before format 3
            assert database_of(result.stderr) == hephy_db.name, command
    info = run("info", *args, env=NOWHERE)
    assert "(from -h, -p, -U, -d over libpq defaults (PG* variables, ~/.pgpass))" in info.stdout


def test_long_spellings_work_too(local, hephy_db, run):
    params = conninfo.conninfo_to_dict(hephy_db.dsn)
    result = run("check", "--host", params["host"], "--port", str(params["port"]), "--username", params["user"],
                 "--dbname", hephy_db.name, env=NOWHERE)
    assert result.exit_code == 0, result.output
    assert database_of(result.stderr) == hephy_db.name


def test_a_flag_replaces_its_part_of_dsn_and_the_rest_stays(local, make_db, run):
    """With --dsn too, each flag wins for its own part: -d names another database on the --dsn's
    server, as the --dsn's user."""
    first, second = make_db(28), make_db(28)
    second.controller().create_app("only-in-second").push()
    result = run("explain", "only-in-second", "--dsn", first.dsn, "-d", second.name, env=NOWHERE)
    assert result.exit_code == 0, result.output
    assert database_of(result.stderr) == second.name
    without = run("explain", "only-in-second", "--dsn", first.dsn, env=NOWHERE)
    assert without.exit_code == 3 and database_of(without.stderr) == first.name
    info = run("info", "--dsn", first.dsn, "-d", second.name)
    assert f"/{second.name} (from -d over --dsn)" in info.stdout


def test_flags_replace_their_part_of_database_url(local, make_db, run):
    first, second = make_db(28), make_db(28)
    result = run("check", "-d", second.name, env={**NOWHERE, "DATABASE_URL": first.dsn})
    assert result.exit_code == 0, result.output
    assert database_of(result.stderr) == second.name


def test_a_dbname_that_is_a_connection_string_is_the_dsn_as_in_psql(local, hephy_db, run):
    result = run("check", "-d", hephy_db.dsn, env=NOWHERE)
    assert result.exit_code == 0, result.output
    assert database_of(result.stderr) == hephy_db.name
    both = run("check", "-d", hephy_db.dsn, "--dsn", hephy_db.dsn)
    assert both.exit_code == 3
    assert messages(both.stderr).strip() == ("controller-audit: bad usage: -d holds a connection string and --dsn "
                                             "another: give one of them")


def test_no_password_from_a_flag_and_one_clear_line_without_it(local, hephy_db, run):
    """-U names a role that must log in with a password: it comes from PGPASSWORD (or ~/.pgpass),
    never from the command line, and without it the error says where to put it; the --dsn's own
    password belongs to the --dsn's user and is not sent for another."""
    role_dsn = login_role_dsn(hephy_db, "flag_reader", "flag-pw-5521", "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}")
    args = [*flags(hephy_db.dsn)[:4], "-d", hephy_db.name]
    missing = run("check", *args, "-U", "flag_reader", env={**NOWHERE, "PGPASSFILE": "/nonexistent"})
    assert missing.exit_code == 3
    (line,) = missing.stderr.strip().splitlines()
    assert line.startswith("controller-audit: wrong credentials: flag_reader@")
    assert line.endswith("fe_sendauth: no password supplied: the server asks for a password and none was given: set "
                         "PGPASSWORD or add a line to ~/.pgpass (controller-audit never prompts, and takes no password "
                         "on its command line)")
    given = run("check", *args, "-U", "flag_reader", env={**NOWHERE, "PGPASSWORD": "flag-pw-5521"})
    assert given.exit_code == 0, given.output
    # The role's --dsn password is not sent for the superuser -U names (trusted on the socket).
    as_admin = run("check", "--dsn", role_dsn, "-U", conninfo.conninfo_to_dict(hephy_db.dsn)["user"])
    assert as_admin.exit_code == 0, as_admin.output
    assert "flag-pw-5521" not in as_admin.output
    for spelling in ("--password", "-W"):
        refused = run("check", *args, spelling, "flag-pw-5521")
        assert refused.exit_code == 3 and "flag-pw-5521" not in refused.output
        assert refused.stderr.startswith("controller-audit: bad usage: controller-audit takes no password on its "
                                         "command line and never prompts for one: set PGPASSWORD or add a line to "
                                         "~/.pgpass")


def test_dash_h_is_the_host_never_help(run):
    for args in (["-h"], ["check", "-h"], ["info", "-h"], ["plan", "-h"]):
        result = run(*args)
        assert result.exit_code == 3, args
        assert "Usage:" not in result.output
        assert "-h is the database host, as in psql; help is --help" in result.stderr, (args, result.stderr)
    assert run("--help").exit_code == 0 and "Usage:" in run("--help").stdout
    helped = run("check", "--help")
    assert helped.exit_code == 0 and "-h, --host HOST" in helped.stdout and "-U, --username USER" in helped.stdout


def test_a_bad_port_is_refused_before_connecting(run):
    result = run("check", "-p", "0")
    assert result.exit_code == 3
    assert result.stderr.startswith("controller-audit: bad usage: Invalid value for '-p' / '--port': 0 is not in the "
                                    "range 1<=x<=65535")
