"""invalid-json on values PostgreSQL parses but Python's ``json.loads`` (the controller's jsonfield)
refuses: nested deeper than Python's recursion limit, or an integer of more than 4,300 digits.  Every
server reports them, with Python's verdict, exactly as the pre-16 path does (issue 16aa): on 16+ the
audit used to take ``pg_input_is_valid``'s word for them and report nothing."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from auditor.audit import open_audit
from auditor.audit.runner import build_statement, cast_gate, params_for
from auditor.core.settings import Selection, Settings
from checks.invalid_json import _present, json_problem
from tests.checks.test_invalid_json import CHECK, LEGACY, _lines
from tests.cli.conftest import run  # noqa: F401  (the CLI fixture)
from tests.cli.test_check import parse_prometheus
from tests.helpers import audit

#: A live config nested 1,200 deep and a build's integer of 5,000 digits: only Python refuses them.
DEEP = """'{"a":' || repeat('[', 1200) || repeat(']', 1200) || '}'"""
LONG_INTEGER = """'{"web": ' || repeat('7', 5000) || '}'"""
#: 600 brackets: ``_UNDECIDED`` leaves it to Python, which parses it.
FINE = """'{"a":' || repeat('[', 600) || repeat(']', 600) || '}'"""


def _story(db) -> dict[str, str]:
    """Apps ``web`` (the damage) and ``api`` (a value Python parses): object id -> expected severity."""
    ctl = db.controller()
    web, api = ctl.create_app("web"), ctl.create_app("api")
    web.push()
    old_build = web.current().build
    web.push(procfile={"web": "gunicorn"})
    api.push()
    db.conn.execute(f'UPDATE api_config SET "values" = {DEEP} WHERE uuid = %s', (web.current().config,))
    db.conn.execute(f"UPDATE api_build SET procfile = {LONG_INTEGER} WHERE uuid = %s", (old_build,))
    db.conn.execute(f'UPDATE api_config SET "values" = {FINE} WHERE uuid = %s', (api.current().config,))
    return {web.current().config: "critical", old_build: "warning"}


def _columns(db, findings) -> dict[str, tuple[str, str, list[dict[str, object]]]]:
    """Per object: severity, message and evidence columns."""
    return {f.object_id: (f.severity, f.message, f.evidence["columns"]) for f in findings}


def test_values_only_python_refuses_are_reported_with_pythons_verdict(db):
    expected = _story(db)
    found = audit(db, [CHECK])
    assert {f.object_id: f.severity for f in found} == expected
    values = dict(db.conn.execute(
        "SELECT uuid::text, \"values\" FROM api_config UNION ALL SELECT uuid::text, procfile FROM api_build").fetchall())
    for finding in found:
        (column,) = finding.evidence["columns"]
        value = values[finding.object_id]
        assert column == {"column": column["column"], "problem": "unparsable", "error": json_problem(value)[1],
                          "excerpt": value[:80], "length": len(value)}
    assert {c["error"] for f in found for c in f.evidence["columns"]} == {
        "nested too deeply to parse", json_problem("7" * 5000)[1]}


def test_every_server_gives_the_pre16_findings(db):
    """The server's own path (16+ on the default suite's server) and the forced pre-16 path: the same
    findings, report lines and counts, `error` included."""
    _story(db)
    ways = []
    for version in (None, LEGACY):
        with open_audit(Settings(dsn=db.dsn, grace_seconds=0), selection=Selection(include=(CHECK,)),
                        server_version=version) as session:
            ways.append((list(session.findings()), _lines(session.streamed("json")),
                         sorted(f.key for f in session.streamed("counts"))))
    assert ways[0] == ways[1] and len(ways[0][0]) == 2


def test_app_scope(db):
    web, api = (set(_story(db)), set())
    for app, expected in (("web", web), ("api", api)):
        assert {f.object_id for f in audit(db, [CHECK], apps=[app])} == expected


def test_prometheus_counts(db, run):  # noqa: F811
    _story(db)
    result = run("check", "--dsn", db.dsn, "--check", CHECK, "--format", "prometheus", "--fail-on", "never")
    samples = parse_prometheus(result.stdout)
    for severity in ("critical", "warning"):
        assert samples[f'controller_audit_findings{{check="{CHECK}",severity="{severity}"}}'] == 1


def test_default_json_report(db, run):  # noqa: F811
    expected = _story(db)
    result = run("check", "--dsn", db.dsn, "--format", "json", "--fail-on", "never")
    found = [f for f in json.loads(result.stdout)["findings"] if f["check"] == CHECK]
    assert {f["object"]["uuid"]: f["severity"] for f in found} == expected


@pytest.mark.parametrize("value", [DEEP, FINE], ids=["deep", "fine"])
def test_sql_ascii_database(pg_server, value):
    """In a SQL_ASCII database (every row through the per-value LATERAL) too."""
    from tests.cli.test_encodings import EncodedDB, sql_ascii_story

    db = EncodedDB(pg_server, "SQL_ASCII")
    try:
        sql_ascii_story(db)
        reference = audit(db, [CHECK], server_version=LEGACY)
        db.conn.execute(f"UPDATE api_config SET cpu = {value} WHERE uuid IN (SELECT config_id FROM api_release r "
                        "JOIN api_app a ON a.uuid = r.app_id WHERE a.id = 'web')")
        found, forced = audit(db, [CHECK]), audit(db, [CHECK], server_version=LEGACY)
        assert found == forced
        added = sorted(c["error"] for f in found for c in f.evidence["columns"] if c["column"] == "cpu")
        assert added == (["nested too deeply to parse"] if value == DEEP else [])
        assert len(reference) >= 1
    finally:
        db.conn.close()
        pg_server.drop_database(db.name)


def _scans(node: dict, tables: set[str], found: Counter) -> Counter:
    """How many nodes of the plan ``node`` scan each of ``tables``."""
    if node.get("Relation Name") in tables:
        found[node["Relation Name"]] += 1
    for child in node.get("Plans", ()):
        _scans(child, tables, found)
    return found


@pytest.mark.pg(">= 16")
@pytest.mark.parametrize("apps", [(), ("web",)], ids=["database", "app"])
def test_the_gate_adds_no_scan_of_a_json_table(db, apps):
    """From 16 the gate's count of the values only Python can judge reads the rows invalid-json reads
    (one pass per table, ``json_<table>``, issue 16ab): the gated statement scans each JSON table as
    often as the statement without the gate (it scanned each once more: the gate's own probe)."""
    _story(db)
    with open_audit(Settings(dsn=db.dsn), apps=apps) as audit_run:
        conn, generation, checks, scope = audit_run.conn, audit_run.generation, audit_run.checks, audit_run.scope
        tables = {table.name for table, _ in _present(generation)}
        counted = []
        for gated in (None, cast_gate(generation, checks, scope, conn.info.server_version)):
            statement = build_statement(generation, checks, scope, conn.info.server_version, ordered=False,
                                        client_side=frozenset(), gated=gated)
            plan = conn.execute(b"EXPLAIN (FORMAT JSON) " + statement.as_string(conn).encode(),
                                params_for(scope, 300)).fetchone()[0][0]["Plan"]
            counted.append(_scans(plan, tables, Counter()))
    assert gated is not None
    assert counted[1] == counted[0]
