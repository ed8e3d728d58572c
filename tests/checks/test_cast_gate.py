"""Before PostgreSQL 16 the audit statement casts the JSON values itself, behind a gate that runs
before its first row (issue 16v, :func:`auditor.audit.precast.gate`): no probe of its own when every
value casts; when one does not (or only Python can judge one), the savepoint is rolled back and the
careful path (probe, bisection, client filter) gives exactly what it gave before."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext

import psycopg
import pytest

from auditor.audit import open_audit, precast, streamed
from auditor.audit.listing import Listing
from auditor.audit.runner import build_statement, cast_gate, params_for, run_checks
from auditor.audit.streamed import stream_rows, wrap
from auditor.core.findings import Counted, Finding
from auditor.core.settings import Selection, Settings
from tests.checks.test_invalid_json import (
    CHECK,
    FILTERED,
    LEGACY,
    PYTHON_ONLY,
    _damage_every_table,
    _lines,
    _statements,
    _story_with_values,
)

CHECKS = (CHECK, "orphan-config", "orphan-build", "shared-config")
WAYS = ("findings", "json", "counts", "pending")


def _damaged(db, refused: str | None) -> None:
    """Orphans, shared rows and wrong-type JSON (every value casts); plus, when ``refused`` is
    ``cast`` or ``python``, values the cast refuses or only Python can judge."""
    svc = db.controller().create_app("svc")
    svc.push()
    svc.orphan_config(X="1")
    svc.orphan_build()
    svc.config_set(A="1")
    db.conn.execute("UPDATE api_config SET memory = '[1]' WHERE uuid = %s", (svc.current().config,))
    _refusing(db, refused)


def _refusing(db, refused: str | None) -> None:
    """Values the cast refuses (``cast``) or only Python can judge (``python``)."""
    if refused == "cast":
        _damage_every_table(db)
    elif refused == "python":
        _story_with_values(db, PYTHON_ONLY)


def _run(db, way: str, listing: Listing) -> tuple[list[str], list[str], list[Counted]]:
    """The findings of one forced pre-16 audit read ``way`` (as report lines, in the order read), the
    statements it sent, and what it counted without listing."""
    hidden: list[Counted] = []
    with open_audit(Settings(dsn=db.dsn, grace_seconds=0), selection=Selection(include=CHECKS),
                    server_version=LEGACY) as run:
        sent = _statements(run.conn)
        if way == "findings":
            lines = [f.json_text() for f in run.findings(listing=listing, hidden=hidden)]
        elif way == "pending":
            pending = run.pending_findings(listing=listing, hidden=hidden)
            with run.conn.pipeline() if psycopg.Pipeline.is_supported() else nullcontext():
                pending.send()
                lines = [f.json_text() for f in pending.read()]
        else:
            found = list(run.streamed("json" if way == "json" else "counts", listing=listing, hidden=hidden))
            lines = [f.json_text() if way == "json" else f.key for f in found]
    return lines, sent, sorted(hidden)


def _reference(db, listing: Listing) -> tuple[list[Finding], list[Counted]]:
    """main's careful path forced: every JSON value read and judged on the client, ordered."""
    hidden: list[Counted] = []
    with open_audit(Settings(dsn=db.dsn, grace_seconds=0), selection=Selection(include=CHECKS),
                    server_version=LEGACY) as run:
        found = list(run_checks(run.conn, run.generation, run.checks, run.scope, grace_seconds=0,
                                server_version=LEGACY, client_side=FILTERED, narrow=False, listing=listing,
                                hidden=hidden))
    return found, sorted(hidden)


def _probes_alone(sent: list[str]) -> list[str]:
    """The statements that cast the JSON values and are not the audit statement (the probes)."""
    return [s for s in sent if "AS cast_values" in s and "AS check_id" not in s]


@pytest.mark.parametrize("way", WAYS)
def test_no_probe_runs_when_every_value_casts(hephy_db, way):
    """One statement, the audit's, casts every value: on main a probe ran before it."""
    _damaged(hephy_db, None)
    lines, sent, _ = _run(hephy_db, way, Listing("warning"))
    audits = [s for s in sent if "AS check_id" in s]
    assert _probes_alone(sent) == [] and len(audits) == 1 and "AS cast_values" in audits[0]
    assert any('"wrong type: array"' in line for line in lines) or way == "counts"


@pytest.mark.parametrize("listing", [Listing("warning"), Listing("info")], ids=["default", "info"])
@pytest.mark.parametrize("refused", ["cast", "python"])
@pytest.mark.parametrize("way", WAYS)
def test_a_refusal_gives_what_the_careful_path_gives(hephy_db, monkeypatch, way, refused, listing):
    """Values the cast refuses (or only Python can judge), streamed a row at a time: the gated
    statement is rolled back before any row, and the findings, their order where ordered, and the
    counts are the careful path's."""
    monkeypatch.setattr(streamed, "_FETCH_SIZE", 1)
    _damaged(hephy_db, refused)
    lines, sent, hidden = _run(hephy_db, way, listing)
    found, expected_hidden = _reference(hephy_db, listing)
    expected = [f.json_text() for f in found]
    assert hidden == expected_hidden
    if way == "counts":  # unordered: the careful path streams the client's check last
        assert sorted(lines) == sorted(f.key for f in found)
    elif way == "json":
        assert _lines_of(lines) == _lines_of(expected)
    else:
        assert lines == expected
    assert "AS cast_values" in [s for s in sent if "AS check_id" in s][0]  # the gate went first
    assert len(_probes_alone(sent)) >= 1  # then the careful path's probe
    assert any('"unparsable"' in line for line in expected)


def _lines_of(texts: list[str]) -> list[str]:
    class _Line:
        def __init__(self, text: str) -> None:
            self.text = text

        def json_text(self) -> str:
            return self.text

    return _lines([_Line(t) for t in texts])


def _gated_rows(db, chunked: bool) -> Iterator[tuple[object, ...]]:
    """The rows of the gated, server-rendered statement (every check of :data:`CHECKS`), one per chunk."""
    with open_audit(Settings(dsn=db.dsn, grace_seconds=0), selection=Selection(include=CHECKS),
                    server_version=LEGACY) as run:
        gated = cast_gate(run.generation, run.checks, run.scope, LEGACY)
        assert gated is not None
        statement = build_statement(run.generation, run.checks, run.scope, LEGACY, False, client_side=frozenset(),
                                    gated=gated)
        precast.savepoint(run.conn)
        yield from stream_rows(run.conn, wrap(statement, "json", run.conn.info.server_version),
                               params_for(run.scope, 0), {}, chunked=chunked)


@pytest.mark.parametrize("refused", ["cast", "python"])
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "server-cursor"])
def test_the_gate_refuses_before_the_first_row(hephy_db, monkeypatch, refused, chunked):
    """Many findings of other checks, one chunk of one row each: the refusal is the first thing read."""
    monkeypatch.setattr(streamed, "_FETCH_SIZE", 1)
    _damaged(hephy_db, None)
    assert len(list(_gated_rows(hephy_db, chunked))) >= 3  # rows there are, when every value casts
    _refusing(hephy_db, refused)
    rows = _gated_rows(hephy_db, chunked)
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        next(rows)


def test_an_error_after_the_first_row_is_the_callers(hephy_db):
    """Nothing already yielded is taken back: only a refusal before the first row falls back."""
    with psycopg.connect(hephy_db.dsn) as conn:
        def late() -> Iterator[int]:
            yield conn.execute("SELECT 1").fetchone()[0]
            conn.execute("SELECT '{'::text::json")

        def early() -> Iterator[int]:
            conn.execute("SELECT '{'::text::json")
            yield 1

        assert precast.optimistically(conn, early()) is None
        assert conn.execute("SELECT 2").fetchone() == (2,)  # rolled back to the savepoint only
        rows = precast.optimistically(conn, late())
        assert rows is not None and next(rows) == 1
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            next(rows)
