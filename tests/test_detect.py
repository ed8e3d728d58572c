"""Schema generation detection, and the wrong-target errors that exit 3."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from psycopg import conninfo

from auditor.cli import cli
from auditor.core.detect import detect
from auditor.core.errors import NotControllerDatabase, UnknownGeneration

EXPECTED = {19: ("deis", False, False), 23: ("deis", True, False), 28: ("hephy", True, True)}


def test_detects_each_generation(db):
    generation = detect(db.conn)
    name, has_failed, has_exception = EXPECTED[db.migration]
    assert (generation.name, generation.migration) == (name, db.migration)
    assert generation.has_failed is has_failed and generation.has_exception is has_exception
    assert "values" in generation.content_columns("api_config")
    assert "uuid" not in generation.content_columns("api_config")


@pytest.mark.parametrize("migration,label", [(20, "deis 0020"), (24, "hephy 0024"), (26, "hephy 0026")])
def test_detects_intermediate_migrations(make_db, migration, label):
    assert detect(make_db(migration).conn).label == label


def test_transient_0027_name_is_accepted(make_db):
    db = make_db(28)
    db.conn.execute("DELETE FROM django_migrations WHERE app = 'api' AND name ~ '^002[78]'")
    db.conn.execute("DROP TABLE api_service")
    db.conn.execute(
        "INSERT INTO django_migrations (app, name, applied) VALUES ('api', '0027_config_termination_grace_period', now())"
    )
    generation = detect(db.conn)
    assert generation.name == "hephy" and generation.migration == 27


def test_half_applied_migration_is_refused(make_db):
    db = make_db(28)
    db.conn.execute("ALTER TABLE api_release DROP COLUMN exception")
    with pytest.raises(UnknownGeneration, match="api_release.exception is missing"):
        detect(db.conn)


def test_gap_in_migrations_is_refused(make_db):
    db = make_db(23)
    db.conn.execute("DELETE FROM django_migrations WHERE name = '0021_appsettings_label'")
    with pytest.raises(UnknownGeneration, match="0021 missing"):
        detect(db.conn)


def test_newer_migration_is_unknown(make_db):
    db = make_db(28)
    db.conn.execute("INSERT INTO django_migrations (app, name, applied) VALUES ('api', '0029_future', now())")
    with pytest.raises(UnknownGeneration, match="newer than"):
        detect(db.conn)


def test_empty_database_is_not_a_controller_database(make_db):
    with pytest.raises(NotControllerDatabase):
        detect(make_db(None).conn)


# -- the command line: info, and every wrong target exits 3 with one clean line ----------


def _with_password(dsn: str, password: str) -> str:
    params = conninfo.conninfo_to_dict(dsn)
    params["password"] = password
    return conninfo.make_conninfo(**params)


@pytest.mark.parametrize("migration", [19, 23, 28])
def test_info_prints_generation(make_db, migration):
    db = make_db(migration)
    result = CliRunner().invoke(cli, ["info", "--dsn", db.dsn])
    assert result.exit_code == 0, result.output
    name = EXPECTED[migration][0]
    assert f"generation:      {name}" in result.output
    assert f"api {migration:04d}_" in result.output
    assert "api_release" in result.output and "standby:         no" in result.output


def _run_wrong_target(dsn: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["info", "--dsn", dsn])
    return result.exit_code, result.output


def test_not_a_controller_database_exits_3(make_db):
    db = make_db(None)
    code, out = _run_wrong_target(_with_password(db.dsn, "s3cret-pw"))
    assert code == 3
    assert "not a controller database" in out
    assert "s3cret-pw" not in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1


def test_unknown_generation_exits_3(make_db):
    db = make_db(28)
    db.conn.execute("INSERT INTO django_migrations (app, name, applied) VALUES ('api', '0031_x', now())")
    code, out = _run_wrong_target(db.dsn)
    assert code == 3 and "unknown schema generation" in out and "0031_x" in out


def test_half_applied_exits_3(make_db):
    db = make_db(23)
    db.conn.execute("ALTER TABLE api_release DROP COLUMN failed")
    code, out = _run_wrong_target(db.dsn)
    assert code == 3 and "half-applied" in out and "api_release.failed" in out


def test_unreachable_host_exits_3_without_password():
    dsn = "postgresql://auditor:hunter2-pw@127.0.0.1:1/controller?connect_timeout=2"
    code, out = _run_wrong_target(dsn)
    assert code == 3
    assert "cannot connect" in out or "unreachable" in out
    assert "hunter2-pw" not in out and "Traceback" not in out


def test_wrong_credentials_exit_3_without_password(pg_server, make_db):
    if not pg_server.password_auth:
        pytest.skip("this test server does not check passwords")
    db = make_db(28)
    db.conn.execute("CREATE ROLE ca_pw_user LOGIN PASSWORD 'right-pw-42'")
    try:
        params = conninfo.conninfo_to_dict(db.dsn)
        params.update(user="ca_pw_user", password="wrong-pw-99")
        code, out = _run_wrong_target(conninfo.make_conninfo(**params))
        assert code == 3
        assert "wrong credentials" in out and "ca_pw_user" in out
        assert "wrong-pw-99" not in out and "right-pw-42" not in out and "Traceback" not in out
    finally:
        db.conn.execute("DROP ROLE ca_pw_user")


def test_malformed_dsn_exits_3_without_password():
    code, out = _run_wrong_target("host=localhost password=leaky-pw bogus_option=1")
    assert code == 3 and "leaky-pw" not in out and "Traceback" not in out


def test_missing_database_exits_3(pg_server):
    code, out = _run_wrong_target(pg_server.dsn("ca_no_such_database"))
    assert code == 3 and "no such database" in out
