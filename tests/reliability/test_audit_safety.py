"""Audits are safe: read-only snapshot, SELECT-only roles, hot standbys, timeouts that name the check."""

from __future__ import annotations

import threading

import psycopg
import pytest
from click.testing import CliRunner

from auditor.audit import open_audit
from auditor.cli import cli
from auditor.core.errors import AuditFailed
from auditor.core.settings import Selection, Settings
from tests.helpers import audit
from tests.reliability.standby import wait_for_replay


def _damaged_story(db) -> None:
    ctl = db.controller()
    web = ctl.create_app("web")
    web.push()
    web.config_set(A="1")
    web.orphan_config(B="2")
    web.orphan_build()


def test_audit_runs_in_a_read_only_snapshot(hephy_db):
    _damaged_story(hephy_db)
    with open_audit(Settings(dsn=hephy_db.dsn)) as run:
        assert run.conn.execute("SHOW transaction_read_only").fetchone()[0] == "on"
        assert run.conn.execute("SHOW transaction_isolation").fetchone()[0] == "repeatable read"
        assert run.conn.execute("SELECT current_setting('application_name')").fetchone()[0] == "controller-audit"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            run.conn.execute("DELETE FROM api_config")


def test_snapshot_does_not_see_concurrent_writes(hephy_db):
    _damaged_story(hephy_db)
    with open_audit(Settings(dsn=hephy_db.dsn), selection=Selection(include=("orphan-config",))) as run:
        first = list(run.findings())
        hephy_db.controller().create_app("late").orphan_config(C="3")
        second = list(run.findings())
    assert len(first) == len(second) == 1
    assert len(audit(hephy_db, ["orphan-config"])) == 2


def test_select_only_role_can_audit_everything(hephy_db, select_only_dsn):
    _damaged_story(hephy_db)
    as_owner = audit(hephy_db)
    with open_audit(Settings(dsn=select_only_dsn)) as run:
        as_reader = list(run.findings())
    assert as_reader == as_owner and len(as_reader) >= 2
    result = CliRunner().invoke(cli, ["info", "--dsn", select_only_dsn])
    assert result.exit_code == 0 and "ro-pw-1234" not in result.output


def test_audit_works_on_a_hot_standby(pg_server, hephy_db, standby):
    _damaged_story(hephy_db)
    wait_for_replay(pg_server.admin_dsn, standby)
    from psycopg import conninfo

    params = conninfo.conninfo_to_dict(standby)
    params["dbname"] = hephy_db.name
    standby_dsn = conninfo.make_conninfo(**params)
    result = CliRunner().invoke(cli, ["info", "--dsn", standby_dsn])
    assert result.exit_code == 0, result.output
    assert "standby:         yes" in result.output
    with open_audit(Settings(dsn=standby_dsn)) as run:
        on_standby = list(run.findings())
    assert on_standby == audit(hephy_db) and on_standby



def _json_report(dsn: str, **run_options) -> tuple[list[str], list[str]]:
    """Every finding of a forced pre-16 audit of ``dsn``: as objects and as the JSON report streams them."""
    import json

    def canonical(findings):
        return sorted(json.dumps(json.loads(f.json_text()), sort_keys=True) for f in findings)

    with open_audit(Settings(dsn=dsn, grace_seconds=0), server_version=150000) as run:
        return canonical(run.findings(**run_options)), canonical(run.streamed("json"))


def test_pre_16_json_cast_runs_on_a_hot_standby(pg_server, hephy_db, standby):
    """The optimistic cast's savepoint, released (every value casts) or rolled back (one does not),
    on a real hot standby: the same report as the primary's."""
    from psycopg import conninfo

    _damaged_story(hephy_db)
    hephy_db.conn.execute("UPDATE api_build SET procfile = '[]'")
    params = conninfo.conninfo_to_dict(standby)
    params["dbname"] = hephy_db.name
    standby_dsn = conninfo.make_conninfo(**params)
    for damage in ("UPDATE api_app SET structure = '\"web\"'", "UPDATE api_config SET cpu = '{\"web\": '"):
        hephy_db.conn.execute(damage)
        wait_for_replay(pg_server.admin_dsn, standby)
        found, streamed = _json_report(standby_dsn)
        assert (found, streamed) == _json_report(hephy_db.dsn)
        assert found == streamed and any('"invalid-json"' in line for line in found)


def test_statement_timeout_names_the_check(hephy_db):
    _damaged_story(hephy_db)
    locker = psycopg.connect(hephy_db.dsn)
    locker.execute("LOCK TABLE api_build IN ACCESS EXCLUSIVE MODE")
    try:
        with pytest.raises(AuditFailed) as caught:
            with open_audit(Settings(dsn=hephy_db.dsn, statement_timeout="300ms", lock_timeout="30s"),
                            selection=Selection(include=("orphan-build",))) as run:
                list(run.findings())
        assert caught.value.kind == "timeout"
        assert "orphan-build" in str(caught.value)
    finally:
        locker.rollback()
        locker.close()


def test_audit_never_blocks_a_writer(hephy_db):
    """The audit holds only ACCESS SHARE locks: a concurrent controller write goes through."""
    _damaged_story(hephy_db)
    done = threading.Event()
    with open_audit(Settings(dsn=hephy_db.dsn)) as run:
        list(run.findings())

        def write() -> None:
            with psycopg.connect(hephy_db.dsn, autocommit=True) as conn:
                conn.execute("SET lock_timeout = '2s'")
                conn.execute("UPDATE api_app SET updated = now()")
                done.set()

        writer = threading.Thread(target=write)
        writer.start()
        writer.join(10)
    assert done.is_set()


def test_role_with_select_on_api_tables_only(hephy_db):
    """The least-privilege role of the README: SELECT on api_* only, not even django_migrations."""
    from psycopg import conninfo

    _damaged_story(hephy_db)
    conn = hephy_db.conn
    conn.execute("CREATE ROLE api_reader LOGIN PASSWORD 'api-reader-pw'")
    tables = [r[0] for r in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'api\\_%'").fetchall()]
    for table in tables:
        conn.execute(f'GRANT SELECT ON "{table}" TO api_reader')
    params = conninfo.conninfo_to_dict(hephy_db.dsn)
    params.update(user="api_reader", password="api-reader-pw")
    dsn = conninfo.make_conninfo(**params)
    try:
        with open_audit(Settings(dsn=dsn)) as run:
            assert run.generation.name == "hephy" and run.generation.migration == 28
            as_reader = list(run.findings())
        assert as_reader == audit(hephy_db)
        result = CliRunner().invoke(cli, ["info", "--dsn", dsn])
        assert result.exit_code == 0, result.output
        assert "inferred from columns" in result.output and "api-reader-pw" not in result.output
    finally:
        conn.execute("DROP OWNED BY api_reader")
        conn.execute("DROP ROLE api_reader")
