"""Prometheus: a failed audit keeps the per-check series, and every series says which database
(issue 13, case 7)."""

from __future__ import annotations

import os
import uuid

from psycopg import conninfo, sql

from tests.cli.test_check import parse_prometheus
from tests.helpers import gone_dsn, login_role_dsn

ORPHANS = ("--check", "orphan-config", "--check", "orphan-build")


def _findings(samples: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in samples.items() if k.startswith("controller_audit_findings{")}


def test_a_failed_run_keeps_the_last_values_so_alerts_do_not_resolve(make_db, pg_server, run, tmp_path):
    db = make_db(28)
    db.controller().create_app("web").orphan_config(X="1")  # the newest config: a warning
    role = f"mon_{uuid.uuid4().hex[:8]}"
    dsn = login_role_dsn(db, role, "Mon1t0r-Pw", "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}")
    try:
        out = tmp_path / "controller_audit.prom"
        assert run("check", "--dsn", dsn, *ORPHANS, "--format", "prometheus", "-o", str(out)).exit_code == 1
        first = out.read_text()
        samples = parse_prometheus(first, keep_database=True)
        params = conninfo.conninfo_to_dict(db.dsn)
        port = params.get("port") or os.environ.get("PGPORT") or "5432"
        label = f'database="{params["host"]}:{port}/{db.name}"'
        assert samples[f'controller_audit_findings{{{label},check="orphan-config",severity="warning"}}'] == 1
        assert samples[f"controller_audit_up{{{label}}}"] == 1
        assert role not in first and "Mon1t0r-Pw" not in first  # no user, no password in any label
        succeeded_at = samples[f"controller_audit_last_success_timestamp_seconds{{{label}}}"]

        db.conn.close()
        pg_server.drop_database(db.name)  # the database is gone: the audit cannot run
        for _ in range(2):  # and again: the values are carried from run to run
            failed = run("check", "--dsn", dsn, *ORPHANS, "--format", "prometheus", "-o", str(out))
            assert failed.exit_code == 3
            after = parse_prometheus(out.read_text(), keep_database=True)
            assert after[f"controller_audit_up{{{label}}}"] == 0
            assert after[f"controller_audit_last_run_success{{{label}}}"] == 0
            assert _findings(after) == _findings(samples)  # same series, same values: the alert stays firing
            assert after[f"controller_audit_last_success_timestamp_seconds{{{label}}}"] == succeeded_at
    finally:
        db.conn.close()
        pg_server.drop_database(db.name)
        pg_server.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_labels_from_the_command_line(hephy_db, run, tmp_path):
    hephy_db.controller().create_app("web").orphan_config(X="1")  # the newest config: a warning
    out = tmp_path / "m.prom"
    run("check", "--dsn", hephy_db.dsn, *ORPHANS, "--format", "prometheus", "-o", str(out),
        "--label", "database=deis-prod", "--label", "cluster=eu-1")
    samples = parse_prometheus(out.read_text(), keep_database=True)
    assert samples['controller_audit_findings{database="deis-prod",cluster="eu-1",check="orphan-config",'
                   'severity="warning"}'] == 1
    failed = run("check", "--dsn", gone_dsn(hephy_db.dsn), *ORPHANS, "--format", "prometheus", "-o", str(out),
                 "--label", "database=deis-prod", "--label", "cluster=eu-1")
    assert failed.exit_code == 3
    after = parse_prometheus(out.read_text(), keep_database=True)
    assert after['controller_audit_up{database="deis-prod",cluster="eu-1"}'] == 0
    assert after['controller_audit_findings{database="deis-prod",cluster="eu-1",check="orphan-config",'
                 'severity="warning"}'] == 1
    for bad in ("check=x", "9lives=x", "novalue", "__name__=x"):
        result = run("check", "--dsn", hephy_db.dsn, "--format", "prometheus", "--label", bad)
        assert result.exit_code == 3 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    refused = run("check", "--dsn", hephy_db.dsn, "--label", "env=prod")
    assert refused.exit_code == 3 and "--label applies to --format prometheus only" in refused.stderr


def test_a_first_run_that_fails_writes_run_health_only(run, tmp_path):
    out = tmp_path / "m.prom"
    result = run("check", "--dsn", "host=127.0.0.1 port=1 dbname=deis user=deis connect_timeout=2",
                 "--format", "prometheus", "-o", str(out))
    assert result.exit_code == 3
    samples = parse_prometheus(out.read_text(), keep_database=True)
    assert samples['controller_audit_up{database="127.0.0.1:1/deis"}'] == 0
    assert samples['controller_audit_last_run_success{database="127.0.0.1:1/deis"}'] == 0
    assert not _findings(samples)  # nothing was ever known: documented as absent
