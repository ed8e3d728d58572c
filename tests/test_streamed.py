"""Server-rendered findings (auditor.audit.streamed) say exactly what Finding.to_json says."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from auditor.audit import open_audit
from auditor.audit import streamed as streamed_module
from auditor.audit.runner import Scope, build_statement
from auditor.audit.streamed import StreamedFinding, python_key, wrap
from auditor.core.detect import detect
from auditor.core.settings import Selection, Settings
from checks import CATALOGUE
from tests.checks.test_sql_portability import _PARAM, one_statement, portability_problems

OVERRIDES = {"shared-config": "warning", "orphan-build": "critical"}


def _damaged(db) -> None:
    ctl = db.controller()
    web = ctl.create_app("web")
    web.config_set(A="1")
    web.push(image="web:2")
    web.rollback(1)
    web.failed_config_set(B='quote " backslash \\ tab\t ü')
    web.orphan_config(C="x")
    web.orphan_build()
    odd = ctl.create_app("ödd-名前")
    odd.config_set(X="y")
    odd.orphan_build()
    odd.push(image="odd:1")
    odd.config_set(X="z")
    ctl.failed_create_app("half")


def _both(db, server_version: int | None, apps=(), shape="json", exclude=()):
    selection = Selection(exclude=tuple(exclude), severity_overrides=dict(OVERRIDES))
    with open_audit(Settings(dsn=db.dsn, grace_seconds=0), apps=apps, selection=selection,
                    server_version=server_version) as run:
        plain = list(run.findings())
        streamed = list(run.streamed(shape))
    return plain, streamed


def _assert_same_findings(plain, streamed) -> None:
    assert len(plain) >= 8
    assert {f.check for f in plain} >= {"shared-config", "orphan-config", "orphan-build", "app-without-release"}
    expected = Counter(json.dumps(f.to_json(), sort_keys=True) for f in plain)
    got = Counter(json.dumps(json.loads(s.json_text()), sort_keys=True) for s in streamed)
    assert got == expected
    assert Counter((s.check, s.severity, s.app_name, s.key) for s in streamed) == Counter(
        (f.check, f.severity, f.app_name, f.key) for f in plain)
    assert any(f.severity == "warning" for f in plain if f.check == "shared-config")  # override applied
    assert all(f.severity == "critical" for f in plain if f.check == "orphan-build")


def _assert_server_rendered(streamed) -> None:
    assert all(isinstance(s, StreamedFinding) for s in streamed)
    assert all(s.json_text().startswith('{"check": ') for s in streamed)


def _assert_client_fallback(streamed) -> None:
    # Rendered on the client from Finding objects, into the one element type the stream yields.
    assert all(isinstance(s, StreamedFinding) for s in streamed)


@pytest.mark.pg(">= 16")
def test_server_renders_the_findings_json(hephy_db):
    _damaged(hephy_db)
    plain, streamed = _both(hephy_db, None)
    _assert_same_findings(plain, streamed)
    _assert_server_rendered(streamed)


@pytest.mark.pg(">= 16")
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked-rows", "server-cursor"])
def test_both_ways_of_reading_the_rows_give_the_same_findings(hephy_db, monkeypatch, chunked):
    """libpq 17+ streams the rows in chunks, older ones go through a server cursor: same findings,
    each line ending with its key (issue 16)."""
    _damaged(hephy_db)
    monkeypatch.setattr(streamed_module, "CHUNKED_ROWS", chunked)
    plain, streamed = _both(hephy_db, None)
    _assert_same_findings(plain, streamed)
    _assert_server_rendered(streamed)
    assert all(s.json_text().endswith(f'"key": "{s.key}"}}') for s in streamed)


@pytest.mark.pg("< 16")
def test_before_16_every_json_value_casts_so_the_server_renders(hephy_db):
    _damaged(hephy_db)
    plain, streamed = _both(hephy_db, None)
    _assert_same_findings(plain, streamed)
    _assert_server_rendered(streamed)


def test_forced_pre_16_path_renders_on_the_server_when_every_json_value_casts(hephy_db):
    # Before 16 invalid-json casts every value in a savepoint first (auditor.audit.precast).
    _damaged(hephy_db)
    plain, streamed = _both(hephy_db, 150000)
    _assert_same_findings(plain, streamed)
    _assert_server_rendered(streamed)


def test_forced_pre_16_path_with_a_value_that_does_not_cast(hephy_db):
    # invalid-json is then read on the client, in a statement of its own; the rest on the server.
    _damaged(hephy_db)
    hephy_db.conn.execute("UPDATE api_build SET procfile = '{\"web\": '")
    plain, streamed = _both(hephy_db, 150000)
    _assert_same_findings(plain, streamed)
    _assert_client_fallback(streamed)
    assert any(f.check == "invalid-json" for f in plain)


def test_forced_pre_11_path_computes_keys_here_and_streams(hephy_db):
    # Without invalid-json the pre-11 path (no sha256(): keys computed here) streams.
    _damaged(hephy_db)
    plain, streamed = _both(hephy_db, 100000, exclude=("invalid-json",))
    _assert_same_findings(plain, streamed)
    _assert_server_rendered(streamed)


def test_scoped_stream_and_counts_shape(db):
    _damaged(db)
    plain, counted = _both(db, None, apps=["web"], shape="counts")
    assert plain and {f.app_name for f in plain} == {"web"}
    assert Counter((s.check, s.severity, s.app_name, s.key) for s in counted) == Counter(
        (f.check, f.severity, f.app_name, f.key) for f in plain)


@pytest.mark.pg(">= 16")
def test_counts_shape_carries_no_payload(db):
    _damaged(db)
    _, counted = _both(db, None, shape="counts")
    assert counted and all(s.line is None for s in counted)
    with pytest.raises(ValueError):
        counted[0].json_text()


def test_python_key_is_the_findings_key(hephy_db):
    _damaged(hephy_db)
    plain, _ = _both(hephy_db, None)
    assert all(python_key(f.check, f.app_name, f.object_table, f.object_id) == f.key for f in plain)


def test_wrapped_statement_runs_on_9_4(db):
    generation = detect(db.conn)
    checks = [c for c in CATALOGUE.values() if c.applies_to(generation)]
    for shape in ("json", "counts"):
        statement = wrap(build_statement(generation, checks, Scope(), 90400, ordered=False), shape, 90400)
        text = _PARAM.sub("'{}'", statement.as_string(db.conn)).replace("%%", "%")
        one_statement(text)
        assert portability_problems(text) == []
        assert "sha256" not in text


def test_a_streamed_finding_is_a_named_tuple_made_without_a_setattr_a_field():
    """~500k are made per audit at a million releases: a tuple (no ``object.__setattr__`` per field, as a
    frozen dataclass's ``__init__`` does), immutable, marked by a baseline as a new one."""
    found = StreamedFinding("shared-config", "warning", "web", "0123456789abcdef", '{"check": "shared-config"}')
    assert isinstance(found, tuple) and found.baseline is None
    with pytest.raises(AttributeError):
        found.severity = "info"  # type: ignore[misc]
    marked = found.with_baseline("info", "2026-01-01T00:00:00+00:00")
    assert found.baseline is None and marked[:5] == found[:5]
    assert marked.json_text() == ('{"check": "shared-config", "baseline": '
                                  '{"accepted_severity": "info", "first_seen": "2026-01-01T00:00:00+00:00"}}')
