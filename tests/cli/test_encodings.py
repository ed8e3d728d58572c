"""SQL_ASCII and LATIN1 databases (issue 13, case 8).

Old clusters were often initialised as SQL_ASCII, whose text is whatever bytes clients sent.
Catalogue names and data must read correctly, whatever PGCLIENTENCODING says; a value that is
not UTF-8 (which the controller itself cannot read) is a finding, never a crash.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from auditor.testbed.schema import schema_sql
from tests.cli.conftest import report
from tests.cli.test_check import parse_prometheus
from tests.damage import DamagingController
from tests.helpers import audit, messages


class EncodedDB:
    """A controller database (0028) in ``encoding``, with an autocommit UTF8 connection."""

    def __init__(self, server, encoding: str) -> None:
        self.name = f"ca_enc_{uuid.uuid4().hex[:10]}"
        server.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE 'C' LC_CTYPE 'C'")
                       .format(sql.Identifier(self.name), sql.Literal(encoding)))
        self.dsn = server.dsn(self.name)
        self.conn = psycopg.connect(self.dsn, autocommit=True, client_encoding="UTF8")
        self.conn.execute(schema_sql(28).encode())


@pytest.fixture
def encoded(pg_server) -> Iterator:
    made: list[EncodedDB] = []

    def make(encoding: str) -> EncodedDB:
        made.append(EncodedDB(pg_server, encoding))
        return made[-1]

    yield make
    for db in made:
        db.conn.close()
        pg_server.drop_database(db.name)


def sql_ascii_story(db: EncodedDB) -> None:
    """UTF-8 and Latin-1 bytes side by side, as years of different clients leave them."""
    ctl = DamagingController(db.conn)
    web = ctl.create_app("web")
    web.push(image="registry/web:1")
    web.orphan_build()
    cafe = ctl.create_app("café")  # UTF-8 bytes (this client)
    cafe.push()
    creme = ctl.create_app("creme")
    creme.push()
    creme.config_set(K="v")
    # A Latin-1 client wrote these: bytes that are not UTF-8.
    db.conn.execute("UPDATE api_app SET id = E'cr\\xe8me' WHERE id = 'creme'")
    db.conn.execute("UPDATE api_release SET summary = E'bob deployed caf\\xe9 \\xa9 2016' WHERE app_id = %s",
                    (web.uuid,))
    db.conn.execute("UPDATE api_config SET \"values\" = E'{\"GREETING\": \"d\\xe9j\\xe0 vu\"}' WHERE uuid = %s",
                    (creme.current().config,))


@pytest.mark.parametrize("client_encoding", [None, "UTF8", "LATIN1"])
def test_sql_ascii_database(encoded, run, client_encoding):
    db = encoded("SQL_ASCII")
    sql_ascii_story(db)
    env = {"PGCLIENTENCODING": client_encoding} if client_encoding else {}

    table = run("check", "--dsn", db.dsn, "--min-severity", "info", env=env)
    assert table.exit_code == 2, table.output  # not "not a controller database", not "audit failed"
    assert "app crème" in table.stdout and "app café" in table.stdout
    assert "api_config.values is not UTF-8 text" in table.stdout

    doc = report(run("check", "--dsn", db.dsn, "--format", "json", env=env))
    bad = [f for f in doc["findings"] if f["check"] == "invalid-json"]
    assert [(f["app"]["name"], f["severity"]) for f in bad] == [("crème", "critical")]
    assert bad[0]["evidence"]["columns"][0]["problem"] == "not UTF-8"
    assert bad[0]["evidence"]["columns"][0]["excerpt"] == '{"GREETING": "déjà vu"}'

    samples = parse_prometheus(run("check", "--dsn", db.dsn, "--format", "prometheus", env=env).stdout)
    assert samples['controller_audit_findings{check="invalid-json",severity="critical"}'] == 1

    info = run("info", "--dsn", db.dsn, env=env)
    assert info.exit_code == 0 and f"database:        {db.name}" in info.stdout
    explained = run("explain", "web", "--dsn", db.dsn, env=env)
    assert explained.exit_code == 0, explained.output
    assert "bob deployed café © 2016" in explained.stdout

    # The keys of the streamed (JSON) and the object (table) paths agree, names with Latin-1 included.
    assert run("baseline", "create", "known.json", "--dsn", db.dsn, env=env).exit_code == 0
    again = report(run("check", "--dsn", db.dsn, "--min-severity", "info", "--format", "json", "--baseline", "known.json", env=env))
    assert again["summary"]["total"] == 0 and again["summary"]["baseline"]["stale"] == 0


def test_sql_ascii_before_postgresql_16(encoded):
    """The client-side validation path finds the bytes that are not UTF-8 too."""
    db = encoded("SQL_ASCII")
    sql_ascii_story(db)
    found = audit(db, checks=["invalid-json"], server_version=150000)
    assert [(f.app_name, f.evidence["columns"][0]["problem"]) for f in found] == [("crème", "not UTF-8")]


@pytest.mark.parametrize("client_encoding", [None, "UTF8", "SQL_ASCII"])
def test_latin1_database(encoded, run, client_encoding):
    db = encoded("LATIN1")
    ctl = DamagingController(db.conn)
    cafe = ctl.create_app("café")
    cafe.push(image="registry/café:1")
    cafe.orphan_config(X="1")  # the newest config: a warning
    env = {"PGCLIENTENCODING": client_encoding} if client_encoding else {}
    result = run("check", "--dsn", db.dsn, "--app", "café", "--format", "json", env=env)
    assert result.exit_code == 1, result.output
    assert {f["app"]["name"] for f in report(result)["findings"]} == {"café"}
    explained = run("explain", "café", "--dsn", db.dsn, env=env)
    assert explained.exit_code == 0 and "app café" in explained.stdout
    unknown = run("explain", "日本", "--dsn", db.dsn, env=env)  # not even expressible in LATIN1
    assert unknown.exit_code == 3 and len(messages(unknown.stderr).strip().splitlines()) == 1
    assert json.loads(run("check", "--dsn", db.dsn, "--format", "json", env=env).stdout)["database"]["name"] == db.name


def test_sql_ascii_latin1_app_name_typed_in_utf8(encoded, run):
    """An app name a Latin-1 client wrote (bytes that are not UTF-8) is found by the name as the
    tool shows it: `--app crème`, `explain crème` and `blast-radius` typed in UTF-8."""
    db = encoded("SQL_ASCII")
    sql_ascii_story(db)

    checked = run("check", "--dsn", db.dsn, "--app", "crème", "--min-severity", "info", "--format", "json")
    assert checked.exit_code in (0, 1, 2), checked.output
    doc = report(checked)
    assert {f["app"]["name"] for f in doc["findings"]} == {"crème"}  # its invalid JSON, its shared build
    explained = run("explain", "crème", "--dsn", db.dsn)
    assert explained.exit_code == 0, explained.output
    assert "app crème" in explained.stdout
    blast = run("blast-radius", "app", "crème", "--dsn", db.dsn)
    assert blast.exit_code == 0 and "crème" in blast.stdout, blast.output
    missing = run("explain", "creme", "--dsn", db.dsn)
    assert missing.exit_code == 3 and "did you mean 'crème'" in missing.output  # the name as shown
