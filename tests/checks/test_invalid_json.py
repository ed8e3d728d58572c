"""invalid-json: JSON columns that do not parse or are not objects, on both validation paths."""

from __future__ import annotations

import json
import uuid

import pytest

from auditor.audit import open_audit
from auditor.core.settings import Selection, Settings
from checks.invalid_json import json_problem
from tests.checks.test_sql_portability import portability_problems
from tests.helpers import audit

CHECK = "invalid-json"
#: The pre-PostgreSQL-16 path (client-side json.loads) is forced with this version.
LEGACY = 150000
PATHS = pytest.mark.parametrize("server_version", [None, LEGACY], ids=["server", "client"])

BAD: list[tuple[str, str]] = [
    ("null", "wrong type: null"),
    ("[]", "wrong type: array"),
    ('[{"A": "1"}]', "wrong type: array"),
    ("42", "wrong type: number"),
    ("-1.5e3", "wrong type: number"),
    ("true", "wrong type: boolean"),
    ('"just a string"', "wrong type: string"),
    ('"{\\"A\\": \\"1\\"}"', "wrong type: string"),  # an object serialised twice
    ('["' + "é☃😀" * 60 + '"]', "wrong type: array"),
    ('{"A": "1"', "unparsable"),  # truncated
    ('{"A": "' + "x" * 5000, "unparsable"),  # long and truncated
    ("{'A': '1'}", "unparsable"),
    ('{"PATH": "C:\\dir"}', "unparsable"),  # \d is no JSON escape
    ('{"A": "tab\there"}', "unparsable"),  # raw control character
    ('{"A": NaN}', "unparsable"),
    ('{"A": 1} trailing', "unparsable"),
    ("", "unparsable"),
]
GOOD: list[str] = [
    '{"A": "say \\"hi\\"", "B": "back\\\\slash", "C": "C:\\\\dir"}',
    '{"A": "é☃😀", "B": "\\u00e9\\ud83d\\ude00", "C": "\\u0000"}',
    '{"LONG": "' + "y" * 100_000 + '"}',
    ' {"A": {"nested": [1, null, true, -0.5e-3]}} \n',
    '{"A": 1, "A": 2}',
]


def _story_with_values(db, values: list[str]) -> dict[str, str]:
    """An app whose older configs hold ``values``; returns config uuid -> value."""
    web = db.controller().create_app("web")
    web.push()
    configs = [web.orphan_config(N=str(i)) for i in range(len(values))]
    web.config_set(A="1")  # the live release's config is the newest: the stored values are history
    for config, value in zip(configs, values, strict=True):
        db.conn.execute('UPDATE api_config SET "values" = %s WHERE uuid = %s', (value, config))
    return dict(zip(configs, values, strict=True))


def _without_parser_message(findings):
    return [(f.severity, f.app_name, f.object_table, f.object_id, f.message, f.evidence["used_by"],
             [{k: v for k, v in c.items() if k != "error"} for c in f.evidence["columns"]]) for f in findings]


@PATHS
def test_every_kind_of_bad_value_and_no_good_one(db, server_version):
    stored = _story_with_values(db, [v for v, _ in BAD] + GOOD)
    found = {f.object_id: f for f in audit(db, [CHECK], server_version=server_version)}
    expected = {uid: dict(BAD)[value] for uid, value in stored.items() if value not in GOOD}
    assert {uid: f.evidence["columns"][0]["problem"] for uid, f in found.items()} == expected
    for uid, finding in found.items():
        (column,) = finding.evidence["columns"]
        value = stored[uid]
        assert (finding.severity, finding.evidence["used_by"]) == ("warning", None)
        assert column["column"] == "values" and column["excerpt"] == value[:80] and column["length"] == len(value)
        assert (column["error"] is not None) == (column["problem"] == "unparsable")
        if column["problem"] == "unparsable":
            assert finding.message == "api_config.values is not valid JSON"
        else:
            kind = column["problem"].removeprefix("wrong type: ")
            assert finding.message == f"api_config.values holds a JSON {kind}, not an object"


def test_server_and_client_validation_agree(db):
    stored = _story_with_values(db, [v for v, _ in BAD] + GOOD)
    config = next(iter(stored))
    db.conn.execute("UPDATE api_config SET memory = '[1]', cpu = '{\"web\": ' WHERE uuid = %s", (config,))
    db.conn.execute("UPDATE api_build SET procfile = 'null'")
    db.conn.execute("UPDATE api_app SET structure = '\"web=1\"'")
    server = audit(db, [CHECK])
    client = audit(db, [CHECK], server_version=LEGACY)
    assert len(server) == len(BAD) + 2
    assert _without_parser_message(server) == _without_parser_message(client)
    errors = {(f.object_id, c["column"]): (c["error"], c["excerpt"])
              for f in client for c in f.evidence["columns"] if c["error"]}
    # The client path reports json.loads' own message; the server path PostgreSQL's.
    assert errors[(config, "cpu")][0] == json_problem('{"web": ')[1]
    server_errors = [c["error"] for f in server for c in f.evidence["columns"] if c["error"]]
    assert len(server_errors) == len(errors)


@pytest.mark.pg(">= 16")
def test_server_path_reports_postgresqls_parser_message(db):
    _story_with_values(db, [v for v, _ in BAD])
    server_errors = [c["error"] for f in audit(db, [CHECK]) for c in f.evidence["columns"] if c["error"]]
    assert len(server_errors) == sum(problem == "unparsable" for _, problem in BAD)
    assert all(e.startswith("invalid input syntax for type json") for e in server_errors)


def _appsettings(db, app, created, autoscale: str, label: str = "{}") -> str:
    row_uuid = str(uuid.uuid4())
    app.ctl.insert("api_appsettings", {
        "uuid": row_uuid, "created": created, "updated": created, "maintenance": None, "routable": True,
        "app_id": app.uuid, "owner_id": app.owner_id, "whitelist": [], "autoscale": autoscale, "label": label,
    })
    return row_uuid


@PATHS
def test_severity_follows_what_the_controller_uses(hephy_db, server_version):
    db = hephy_db
    ctl = db.controller()
    web, idle = ctl.create_app("web"), ctl.create_app("idle")
    web.push()
    old_config, old_build = web.current().config, web.current().build
    web.config_set(A="1")
    web.push()
    live = web.current()
    latest_orphan = web.orphan_config(B="2")
    settings_old = _appsettings(db, web, ctl.tick(), '{"min": 1}', "[]")
    settings_new = _appsettings(db, web, ctl.tick(), "5")
    db.conn.execute("DELETE FROM api_release WHERE app_id = %s", (idle.uuid,))  # idle has no live release
    for config in (old_config, live.config, latest_orphan):
        db.conn.execute('UPDATE api_config SET "values" = %s WHERE uuid = %s', ("[]", config))
    for build in (old_build, live.build):
        db.conn.execute("UPDATE api_build SET procfile = %s WHERE uuid = %s", ("{", build))
    db.conn.execute("UPDATE api_app SET procfile_structure = 'null'")
    found = {(f.object_table, f.object_id): (f.severity, f.evidence["used_by"])
             for f in audit(db, [CHECK], server_version=server_version)}
    assert found == {
        ("api_config", old_config): ("warning", None),
        ("api_config", live.config): ("critical", "live release"),
        ("api_config", latest_orphan): ("critical", "latest config"),
        ("api_build", old_build): ("warning", None),
        ("api_build", live.build): ("critical", "live release"),
        ("api_app", web.uuid): ("critical", "app with a live release"),
        ("api_app", idle.uuid): ("warning", None),
        ("api_appsettings", settings_old): ("warning", None),
        ("api_appsettings", settings_new): ("critical", "latest app settings"),
    }


@PATHS
def test_columns_of_the_newest_generation(hephy_db, server_version):
    web = hephy_db.controller().create_app("web")
    web.push()
    hephy_db.conn.execute(
        "UPDATE api_config SET termination_grace_period = '30', lifecycle_pre_stop = '[\"sleep\"]', "
        "lifecycle_post_start = '{', healthcheck = '\"\"', registry = 'null', tags = '[]'")
    (finding,) = audit(hephy_db, [CHECK], server_version=server_version)
    assert [c["column"] for c in finding.evidence["columns"]] == [
        "tags", "registry", "healthcheck", "lifecycle_post_start", "lifecycle_pre_stop", "termination_grace_period"]
    assert finding.message.split("; ")[-1] == "api_config.termination_grace_period holds a JSON number, not an object"


@PATHS
def test_old_generation_checks_the_columns_it_has(deis_old_db, server_version):
    web = deis_old_db.controller().create_app("web")
    web.push()
    _appsettings(deis_old_db, web, web.ctl.tick(), "[1]")  # 0019 has autoscale but no label yet
    deis_old_db.conn.execute("UPDATE api_config SET cpu = 'null', memory = '{\"web\": \"1G\"}'")
    found = sorted((f.object_table, [c["column"] for c in f.evidence["columns"]])
                   for f in audit(deis_old_db, [CHECK], server_version=server_version))
    assert found == [("api_appsettings", ["autoscale"]), ("api_config", ["cpu"])]


@PATHS
def test_healthy_history(db, server_version):
    ctl = db.controller()
    for name in ("web", "api"):
        app = ctl.create_app(name)
        app.config_set(QUOTE='say "hi"', PATH="C:\\dir", UNI="é☃😀", LONG="z" * 10_000)
        app.push(procfile={"web": "gunicorn -b 0.0.0.0:$PORT", "worker": "celery"})
        app.failed_config_set(X="1")
        app.rollback(2)
    assert audit(db, [CHECK], server_version=server_version) == []


@PATHS
def test_app_restriction(db, server_version):
    ctl = db.controller()
    ctl.create_app("web"), ctl.create_app("api")
    db.conn.execute('UPDATE api_config SET "values" = %s', ("[]",))
    assert {f.app_name for f in audit(db, [CHECK], server_version=server_version)} == {"web", "api"}
    assert [f.app_name for f in audit(db, [CHECK], apps=["api"], server_version=server_version)] == ["api"]


def test_bad_json_does_not_abort_the_other_checks(hephy_db):
    web = hephy_db.controller().create_app("web")
    web.push()
    orphan = web.orphan_config(X="1")
    hephy_db.conn.execute("UPDATE api_config SET \"values\" = '{\"A\": NaN', memory = '[' || repeat('[', 50)")
    found = audit(hephy_db, [CHECK, "orphan-config"])
    assert {f.check for f in found} == {CHECK, "orphan-config"}
    assert [f.object_id for f in found if f.check == "orphan-config"] == [orphan]


def test_python_parser_limits_are_reported_not_raised():
    assert json_problem("[" * 100_000 + "]" * 100_000) == ("unparsable", "nested too deeply to parse")
    assert json_problem('{"a": Infinity}')[0] == "unparsable"
    assert json_problem("{}") is None



@PATHS
@pytest.mark.parametrize("column_type", ["jsonb", "json"])
def test_a_json_typed_column_is_read_as_text(hephy_db, server_version, column_type):
    """An operator's ``ALTER TABLE api_config ALTER "values" TYPE jsonb`` (issue 13, case 9): the
    check reads every column as text, so a jsonb array is still reported and nothing fails to match
    (``VALUES types jsonb and text cannot be matched``), in the object and the streamed paths."""
    stored = _story_with_values(hephy_db, ['[{"A": "1"}]', '{"B": "2"}'])
    hephy_db.conn.execute(f'ALTER TABLE api_config ALTER "values" TYPE {column_type} USING "values"::{column_type}, '
                          f"ALTER tags TYPE {column_type} USING tags::{column_type}")
    array = next(uid for uid, value in stored.items() if value.startswith("["))
    with open_audit(Settings(dsn=hephy_db.dsn, grace_seconds=0), selection=Selection(include=(CHECK,)),
                    server_version=server_version) as run:
        found = list(run.findings())
        streamed = [json.loads(f.json_text()) for f in run.streamed("json")]
    assert [(f.object_id, f.evidence["columns"][0]["problem"]) for f in found] == [(array, "wrong type: array")]
    assert [(f["object"]["uuid"], f["evidence"]["columns"][0]["problem"]) for f in streamed] == [
        (array, "wrong type: array")]


# Before PostgreSQL 16: the optimistic cast (auditor.audit.precast).  ``client_side`` forces
# today's client-side filter, which the cast path must match finding for finding.
FILTERED = frozenset({CHECK})
WRONG_TYPES = [v for v, problem in BAD if problem.startswith("wrong type")]
#: Values PostgreSQL parses but Python's json.loads does not: only Python may judge them.
PYTHON_ONLY = ['{"A": ' + "[" * 1200 + "]" * 1200 + "}", '{"A": ' + "7" * 5000 + "}"]


def _pre16_both_ways(db, checks=(CHECK,)):
    """The forced pre-16 audit as it runs (probe first), and with the client filter forced: findings
    and streamed lines of each, and which checks the probe left to the client."""
    from auditor.audit.runner import client_side_checks, params_for, run_checks

    with open_audit(Settings(dsn=db.dsn, grace_seconds=0), selection=Selection(include=tuple(checks)),
                    server_version=LEGACY) as run:
        params = params_for(run.scope, 0)
        left = client_side_checks(run.conn, run.generation, run.checks, run.scope, params, LEGACY)
        probed = list(run.findings())
        streamed = _lines(run.streamed("json"))
        forced = list(run_checks(run.conn, run.generation, run.checks, run.scope, grace_seconds=0,
                                 server_version=LEGACY, client_side=FILTERED, narrow=False))
    return left, probed, forced, streamed


def _lines(findings):
    """The findings' JSON report lines, as objects (the server spaces ``json_build_object``'s text
    its own way, on 16+ too)."""
    return sorted(json.dumps(json.loads(f.json_text()), sort_keys=True) for f in findings)


def test_values_that_all_cast_are_validated_on_the_server(db):
    _story_with_values(db, WRONG_TYPES + GOOD)
    db.conn.execute("UPDATE api_build SET procfile = '[\"web\"]'")
    left, probed, forced, streamed = _pre16_both_ways(db)
    assert left == frozenset()
    assert len(probed) == len(WRONG_TYPES) + 1
    assert probed == forced and _lines(probed) == streamed == _lines(forced)


def test_a_value_that_does_not_cast_sends_the_check_to_the_client(db):
    _story_with_values(db, [v for v, _ in BAD] + GOOD)
    left, probed, forced, streamed = _pre16_both_ways(db)
    assert left == FILTERED
    assert len(probed) == len(BAD)
    assert probed == forced and _lines(probed) == streamed == _lines(forced)


def test_values_only_python_refuses_are_judged_by_python(db):
    stored = _story_with_values(db, PYTHON_ONLY + ["[]"])
    left, probed, forced, streamed = _pre16_both_ways(db)
    assert left == FILTERED
    assert {f.object_id: f.evidence["columns"][0]["problem"] for f in probed} == {
        uid: "unparsable" if value in PYTHON_ONLY else "wrong type: array" for uid, value in stored.items()}
    assert probed == forced and _lines(probed) == streamed == _lines(forced)


@pytest.mark.parametrize("bad", ["{", "[1]"], ids=["unparsable", "wrong-type"])
def test_other_checks_stay_on_the_server_whatever_the_json(hephy_db, bad):
    """Every check but invalid-json renders on the server before 16 (issue 16); invalid-json too
    unless a value fails the cast.  Same findings and lines as the client filter gives."""
    web = hephy_db.controller().create_app("web")
    web.push()
    web.orphan_config(X="1")
    web.orphan_build()
    hephy_db.conn.execute('UPDATE api_config SET "values" = %s WHERE uuid = %s', (bad, web.current().config))
    from auditor.audit.runner import run_checks

    checks = (CHECK, "orphan-config", "orphan-build")
    with open_audit(Settings(dsn=hephy_db.dsn, grace_seconds=0), selection=Selection(include=checks),
                    server_version=LEGACY) as run:
        recorded = _statements(run.conn)
        streamed = _lines(run.streamed("json"))
        sent = list(recorded)
        forced = list(run_checks(run.conn, run.generation, run.checks, run.scope, grace_seconds=0,
                                 server_version=LEGACY, client_side=FILTERED, ordered=False, narrow=False))
    assert streamed == _lines(forced) and {f.check for f in forced} == set(checks)
    legacy = [s for s in sent if "'value', v.val" in s]  # the statement shipping every JSON value
    rendered = [s for s in sent if '{"check": ' in s]  # the server-rendered statements
    # First every check behind the cast gate; when it refuses, the others again, rendered.
    assert all(c in rendered[0] for c in checks) and all(c in rendered[-1] for c in checks[1:])
    assert [p for s in sent for p in portability_problems(s)] == []  # 9.4 SQL, the savepoint's too
    assert any(s.startswith("SAVEPOINT") for s in sent)
    if bad == "{":
        assert len(rendered) == 2 and CHECK not in rendered[1]
        assert len(legacy) == 1 and "orphan-config" not in legacy[0]
    else:
        assert len(rendered) == 1 and legacy == []


def _statements(conn) -> list[str]:
    """The text of every statement ``conn`` runs from now on (a notice-free wrapper of its cursors'
    ``execute``: the statements still run on the server)."""
    import psycopg

    sent: list[str] = []
    for factory in ("cursor_factory", "server_cursor_factory"):
        base = getattr(conn, factory)

        class Recording(base):  # type: ignore[misc, valid-type]
            def execute(self, query, params=None, **kwargs):
                sent.append(query.as_string(self.connection) if isinstance(query, psycopg.sql.Composable)
                            else str(query))
                return super().execute(query, params, **kwargs)

            def stream(self, query, params=None, **kwargs):  # the server-rendered findings (libpq 17+)
                sent.append(query.as_string(self.connection) if isinstance(query, psycopg.sql.Composable)
                            else str(query))
                return super().stream(query, params, **kwargs)

        setattr(conn, factory, Recording)
    return sent


# The first character that is not JSON whitespace tells a valid value's kind (issue 16): ``{`` an
# object (one parse on 16+, none once the cast probe passed), anything else not one (no parse).
# Only space, tab, newline and carriage return are JSON whitespace, for PostgreSQL and Python alike.
FIRST_CHARACTER: list[tuple[str, str | None]] = [
    (' \t\n\r{"A": "1"}', None),
    ("{} ", None),
    ("\r\n [1]", "wrong type: array"),
    (' "{}"', "wrong type: string"),
    ("\tnull", "wrong type: null"),
    ('\f{"A": "1"}', "unparsable"),  # form feed, vertical tab, no-break space: not JSON whitespace
    ("\v{}", "unparsable"),
    ('\u00a0{"A": "1"}', "unparsable"),
    (' {"A": ', "unparsable"),
    ('{"A": 1} [', "unparsable"),  # starts like an object, does not parse
    ("{", "unparsable"),
]


@PATHS
def test_the_first_character_tells_a_valid_values_kind(db, server_version):
    stored = _story_with_values(db, [v for v, _ in FIRST_CHARACTER])
    found = {f.object_id: f.evidence["columns"][0]["problem"] for f in audit(db, [CHECK], server_version=server_version)}
    assert found == {uid: dict(FIRST_CHARACTER)[v] for uid, v in stored.items() if dict(FIRST_CHARACTER)[v]}


def test_values_that_all_cast_are_told_apart_by_their_first_character(db):
    castable = [(v, p) for v, p in FIRST_CHARACTER if p != "unparsable"]
    stored = _story_with_values(db, [v for v, _ in castable])
    left, probed, forced, streamed = _pre16_both_ways(db)
    assert left == frozenset()  # the cast path, which parses no value
    assert {f.object_id: f.evidence["columns"][0]["problem"] for f in probed} == {
        uid: dict(castable)[v] for uid, v in stored.items() if dict(castable)[v]}
    assert probed == forced and _lines(probed) == streamed == _lines(forced)


# Before 16, when a value does not cast: the rows whose values the cast refuses are found by
# bisecting the uuid space (auditor.audit.precast.refused_rows), and only they and the rows the
# server cannot clear by a value's first character reach the client filter (issue 16).

def _client_rows(db, narrow: bool = True) -> tuple[list[str], list]:
    """The rows the client filter of a forced pre-16 audit is given (object ids), and the findings."""
    from dataclasses import replace

    from auditor.audit.runner import run_checks
    from checks.invalid_json import legacy_filter

    seen: list[str] = []

    def counting(row):
        seen.append(row.object_id)
        return legacy_filter(row)

    with open_audit(Settings(dsn=db.dsn, grace_seconds=0), selection=Selection(include=(CHECK,)),
                    server_version=LEGACY) as run:
        checks = [replace(c, legacy_filter=counting) for c in run.checks]
        more = {} if narrow else {"narrow": False}
        found = list(run_checks(run.conn, run.generation, checks, run.scope, grace_seconds=0,
                                server_version=LEGACY, **more))
    return sorted(seen), found


def test_after_a_failed_cast_only_the_rows_not_cleared_reach_the_client(db):
    unparsable, wrong, good = ['{"A": "1"', "{'A': 1}"], ["[1]", '"x"'], [f'{{"N": "{i}"}}' for i in range(20)]
    stored = _story_with_values(db, unparsable + wrong + PYTHON_ONLY + good)
    seen, found = _client_rows(db)
    not_cleared = sorted(uid for uid, v in stored.items() if v not in good)
    assert seen == not_cleared  # not the 20 good configs, nor the app's other rows
    every, reference = _client_rows(db, narrow=False)  # the reference: every row with a value not {}
    assert set(stored) <= set(every) and found == reference
    assert {f.object_id for f in found} == set(not_cleared)


def _damage_every_table(db):
    """Values the cast refuses, wrong types and values only Python refuses, in every JSON table; the
    app ``api``."""
    stored = _story_with_values(db, [v for v, _ in BAD] + GOOD + PYTHON_ONLY)
    config = next(iter(stored))
    web = db.controller().create_app("api")
    web.push()
    web.push(procfile={"web": "gunicorn"})
    db.conn.execute("UPDATE api_config SET memory = '[1]', cpu = '{\"web\": ' WHERE uuid = %s", (config,))
    db.conn.execute("UPDATE api_build SET procfile = '{\"web\": ' WHERE uuid = %s", (web.current().build,))
    db.conn.execute("UPDATE api_build SET procfile = 'null' WHERE uuid <> %s AND app_id = %s",
                    (web.current().build, web.uuid))
    db.conn.execute("UPDATE api_app SET structure = '{\"web\": 1' WHERE id = 'api'")
    db.conn.execute("UPDATE api_app SET procfile_structure = '7' WHERE id = 'web'")
    return web


@pytest.mark.parametrize("leaf_values", [None, 1], ids=["leaf-default", "leaf-of-one-value"])
def test_narrowed_client_path_equals_the_legacy_one(hephy_db, monkeypatch, leaf_values):
    """Bad values in every table (the cast refusing some, Python others, wrong types), app settings
    whose newest row is refused (its ``is_latest`` window still sees every row): the same findings
    and lines as shipping every value.  A leaf of one value bisects down to single rows."""
    from auditor.audit import precast

    if leaf_values is not None:
        monkeypatch.setattr(precast, "LEAF_VALUES", leaf_values)
    db = hephy_db
    web = _damage_every_table(db)
    older = _appsettings(db, web, web.ctl.tick(), '{"min": 1', "[]")
    newest = _appsettings(db, web, web.ctl.tick(), "{}", '{"a": ')
    left, probed, forced, streamed = _pre16_both_ways(db)
    assert left == FILTERED
    assert probed == forced and _lines(probed) == streamed == _lines(forced)
    used_by = {f.object_id: f.evidence["used_by"] for f in probed if f.object_table == "api_appsettings"}
    assert used_by == {older: None, newest: "latest app settings"}
    assert {f.object_table for f in probed} == {"api_config", "api_build", "api_app", "api_appsettings"}


def test_narrowed_client_path_in_a_sql_ascii_database(pg_server):
    """Bytes that are not UTF-8 next to values the cast refuses: the same findings as the legacy path."""
    from tests.cli.test_encodings import EncodedDB, sql_ascii_story

    db = EncodedDB(pg_server, "SQL_ASCII")
    try:
        sql_ascii_story(db)
        db.conn.execute("UPDATE api_config SET cpu = '{\"web\": ', memory = '[1]' WHERE uuid IN "
                        "(SELECT config_id FROM api_release r JOIN api_app a ON a.uuid = r.app_id WHERE a.id = 'web')")
        left, probed, forced, streamed = _pre16_both_ways(db)
        assert left == FILTERED
        assert probed == forced and _lines(probed) == streamed == _lines(forced)
        problems = sorted(c["problem"] for f in probed for c in f.evidence["columns"])
        assert problems == ["not UTF-8", "unparsable", "wrong type: array"]
    finally:
        db.conn.close()
        pg_server.drop_database(db.name)
