"""Two backends on one exported snapshot (auditor.audit.split): the same findings in the same order as
one statement, the same snapshot on both, and one session whenever the second cannot be had."""

from __future__ import annotations

import json
from collections import Counter
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

from auditor.audit import open_audit
from auditor.audit import streamed as streamed_module
from auditor.audit.listing import Listing
from auditor.audit.runner import stream_checks
from auditor.audit.split import SPLIT_AT, two_backends
from auditor.audit.spools import Spooled
from auditor.core.connection import snapshot_session
from auditor.core.findings import Counted
from auditor.core.settings import Settings
from tests.cli.test_encodings import encoded, sql_ascii_story  # noqa: F401 (the fixture)
from tests.helpers import login_role_dsn, no_second_thread, tool_connections, tool_connections_gone
from tests.test_bench import damaged_story

INFO = Listing.of("info", "never")
#: Checks whose lines say how far from the transaction's clock (two audits differ there).
_CLOCKED = ("future-dated", "release-order")


@pytest.fixture
def damaged(make_db):
    db = make_db(28)
    damaged_story(db.conn)
    return db


def _lines(dsn: str, *, shared: bool, listing: Listing = INFO, shape: str = "json",
           server_version: int | None = None, seen: list[int] | None = None,
           db=None) -> tuple[list[tuple[str | None, ...]], list[Counted]]:
    """The streamed findings (key, line) and the counted ones; ``seen`` gets the tool's connections
    to ``db`` while the findings stream."""
    hidden: list[Counted] = []
    found = []
    with open_audit(Settings(dsn=dsn, grace_seconds=0), shared=shared, server_version=server_version) as run:
        for finding in run.streamed(shape, listing=listing, hidden=hidden):  # type: ignore[arg-type]
            if seen is not None and not seen:
                seen.append(tool_connections(db))
            found.append((finding.check, finding.key, None if finding.check in _CLOCKED else finding.line))
    return found, hidden


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked-rows", "server-cursor"])
@pytest.mark.parametrize("server_version", [None, 150000], ids=["server", "before-16"])
def test_two_backends_give_one_statement_s_findings_in_its_order(damaged, monkeypatch, chunked, server_version):
    monkeypatch.setattr(streamed_module, "CHUNKED_ROWS", chunked)
    seen: list[int] = []
    split, split_hidden = _lines(damaged.dsn, shared=True, server_version=server_version, seen=seen, db=damaged)
    one, one_hidden = _lines(damaged.dsn, shared=False, server_version=server_version)
    assert seen == [2]  # the second backend was there while the findings streamed
    assert split == one and len(one) > 20
    assert {c for c, _, _ in one} >= {SPLIT_AT, "shared-config", "orphan-config", "app-without-release"}
    assert split_hidden == one_hidden
    assert tool_connections_gone(damaged) and no_second_thread()


@pytest.mark.parametrize(("shape", "listing", "shared"), [
    ("counts", INFO, True), ("json", Listing.of("warning", "never"), True), ("json", INFO, False)])
def test_one_backend_unless_json_lines_of_every_info_finding(damaged, shape, listing, shared):
    seen: list[int] = []
    _lines(damaged.dsn, shared=shared, listing=listing, shape=shape, seen=seen, db=damaged)
    assert seen == [1]


def test_the_second_backend_sees_the_first_one_s_snapshot(damaged):
    """A write committed after the audit began is seen by neither backend (the second imported the
    first one's snapshot; one of its own would see the new app without releases)."""
    before, _ = _lines(damaged.dsn, shared=False)
    hidden: list[Counted] = []
    with open_audit(Settings(dsn=damaged.dsn, grace_seconds=0), shared=True) as run:
        damaged.controller().failed_create_app("arrived-later")
        found = [(f.check, f.key, None if f.check in _CLOCKED else f.line)
                 for f in run.streamed("json", listing=INFO, hidden=hidden)]
    assert found == before
    after, _ = _lines(damaged.dsn, shared=True)
    assert any(check == "app-without-release" and "arrived-later" in (line or "") for check, _, line in after)


def test_a_refused_export_runs_one_session(damaged):
    """``pg_export_snapshot()`` refused (here: no EXECUTE on it): the audit runs in one session, its
    transaction not poisoned by the refusal, with the same findings."""
    role = f"nx_{damaged.name[-8:]}"
    dsn = login_role_dsn(damaged, role, "nx-pw-1234", "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}")
    damaged.conn.execute("REVOKE EXECUTE ON FUNCTION pg_export_snapshot() FROM PUBLIC")
    try:
        _runs_one_session(damaged, dsn)
    finally:
        damaged.conn.execute("GRANT EXECUTE ON FUNCTION pg_export_snapshot() TO PUBLIC")
        _drop_role(damaged, role)


def test_a_refused_second_connection_runs_one_session(damaged):
    """A role allowed one connection (the server refuses the second): one session, same findings."""
    role = f"one_{damaged.name[-8:]}"
    dsn = login_role_dsn(damaged, role, "one-pw-1234", "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}",
                         "ALTER ROLE {} CONNECTION LIMIT 1")
    try:
        _runs_one_session(damaged, dsn)
    finally:
        _drop_role(damaged, role)


def _runs_one_session(damaged, dsn: str) -> None:
    """The audit through ``dsn`` asked to share its snapshot ran on one connection, with the findings
    of the audit that does not share it."""
    seen: list[int] = []
    found, _ = _lines(dsn, shared=True, seen=seen, db=damaged)
    assert seen == [1]
    assert found == _lines(damaged.dsn, shared=False)[0]


def _drop_role(damaged, role: str) -> None:
    damaged.conn.execute(sql.SQL("DROP OWNED BY {}; DROP ROLE {}").format(sql.Identifier(role), sql.Identifier(role)))


@contextmanager
def _second_half(run, snapshot: str, failing: bool = False):
    """What :func:`two_backends` opens: a connection in ``snapshot`` and its findings (an error first
    when ``failing``)."""
    settings = run.settings
    with snapshot_session(settings.target, snapshot, statement_timeout=settings.statement_timeout,
                          lock_timeout=settings.lock_timeout) as conn:
        yield conn, _on(run, conn, failing)


def _on(run, conn, failing: bool = False):
    def findings(checks, hidden):
        if failing:
            conn.execute("SELECT 1 / 0")
        return stream_checks(conn, run.generation, checks, run.scope, "json", listing=INFO, hidden=hidden)
    return findings


def test_a_refused_snapshot_import_runs_one_session(damaged):
    """``SET TRANSACTION SNAPSHOT`` refused by the server (a snapshot it does not know, as behind a
    pooler that sent the second connection elsewhere): one session, same findings."""
    with open_audit(Settings(dsn=damaged.dsn, grace_seconds=0)) as run:
        hidden: list[Counted] = []
        found = list(two_backends(run.checks, _on(run, run.conn), hidden,
                                  lambda: _second_half(run, "00000003-0000001B-1")))
        one = list(_on(run, run.conn)(run.checks, []))
    assert [(f.check, f.key, f.line) for f in found] == [(f.check, f.key, f.line) for f in one]
    assert tool_connections_gone(damaged)


#: The second half's findings read back (with a baseline), or spooled as report lines by its thread.
_KEPT = pytest.mark.parametrize("lines", [None, []], ids=["read-back", "lines-spooled"])


@_KEPT
@pytest.mark.parametrize("half", ["first", "second"])
def test_an_error_on_either_backend_ends_the_run_and_closes_both(damaged, half, lines):
    """The server's error on either connection is the run's error; both connections end, no thread stays."""
    with open_audit(Settings(dsn=damaged.dsn, grace_seconds=0), shared=True) as run:
        assert run.snapshot is not None
        snapshot = run.snapshot
        with pytest.raises(psycopg.errors.DivisionByZero):
            list(two_backends(run.checks, _on(run, run.conn, half == "first"), [],
                              lambda: _second_half(run, snapshot, half == "second"), lines))
    assert tool_connections_gone(damaged) and no_second_thread() and not lines


@_KEPT
def test_a_consumer_that_stops_closes_both_backends(damaged, lines):
    """A consumer gone part way (its write failed, Ctrl-C): the second statement cancelled, both
    connections closed, no thread left."""
    with open_audit(Settings(dsn=damaged.dsn, grace_seconds=0), shared=True) as run:
        stream = run.streamed("json", listing=INFO, hidden=[], lines=lines)
        next(stream)
        assert tool_connections(damaged) == 2
    assert tool_connections_gone(damaged) and no_second_thread() and not lines


#: App names a damaged database may hold: a tab, a backslash, a newline, a carriage return, non-ASCII.
_ODD_NAME = "\t\\n\\\n\r\u00e9\u4e2d"


@pytest.mark.parametrize("renamed", [False, True], ids=["names", "odd-names"])
def test_the_second_half_s_lines_are_handed_over_when_the_first_half_ends(damaged, renamed):
    """With ``lines`` the findings yielded are the first half's; the second half's lines are spooled per
    severity and counted, handed over once the first half has ended: together, one statement's, app
    names with control characters, backslashes and non-ASCII letters included (counted by name)."""
    if renamed:
        damaged.conn.execute("UPDATE api_app SET id = left(id, 50) || %s", (_ODD_NAME,))
    lines: list[Spooled] = []
    one, _ = _lines(damaged.dsn, shared=False)
    if renamed:
        # A row of no known app (a dangling app_id) has no name: null in the report.
        assert any(_ODD_NAME in ((json.loads(line)["app"] or {}).get("name") or "") for c, _, line in one
                   if line is not None and c == SPLIT_AT)
    with open_audit(Settings(dsn=damaged.dsn, grace_seconds=0), shared=True) as run:
        first = [(f.check, f.key, None if f.check in _CLOCKED else f.line)
                 for f in run.streamed("json", listing=INFO, hidden=[], lines=lines)]
    assert first == [found for found in one if found[0] in {c for c, _, _ in first}] and first
    assert SPLIT_AT not in {c for c, _, _ in first} and len(lines) == 1
    rest = one[len(first):]
    spooled = lines[0]
    with spooled.spools:
        assert sum(spooled.counts.values()) == len(rest)
        assert spooled.counts == _counts(damaged.dsn, {c for c, _, _ in rest})
        texts = {s: spool.seek(0) or spool.read().decode() for s, spool in spooled.spools.files.items()}
    assert texts == {s: "".join(",\n  " + line for c, _, line in rest if json.loads(line)["severity"] == s)
                     for s in texts}


def _counts(dsn: str, checks: set[str]) -> Counter[tuple[str, str, str | None]]:
    """One statement's findings of ``checks`` per (check, severity, app name)."""
    with open_audit(Settings(dsn=dsn, grace_seconds=0)) as run:
        return Counter((f.check, f.severity, f.app_name) for f in run.streamed("json", listing=INFO, hidden=[])
                       if f.check in checks)


def test_the_audit_shares_its_snapshot_on_a_hot_standby(pg_server, damaged, standby):
    """A hot standby (PostgreSQL 10 and later export and import snapshots there): the primary's findings."""
    from psycopg import conninfo

    from tests.reliability.standby import wait_for_replay

    wait_for_replay(pg_server.admin_dsn, standby)
    params = conninfo.conninfo_to_dict(standby)
    params["dbname"] = damaged.name
    found, _ = _lines(conninfo.make_conninfo(**params), shared=True)
    assert found == _lines(damaged.dsn, shared=False)[0]


def test_a_sql_ascii_database_gives_the_same_lines(encoded):  # noqa: F811 (the imported fixture)
    """SQL_ASCII (bytes that are not UTF-8, keys hashed on the client): the second connection reads
    them as the first does."""
    db = encoded("SQL_ASCII")
    sql_ascii_story(db)
    seen: list[int] = []
    found, _ = _lines(db.dsn, shared=True, seen=seen, db=db)
    assert seen == [2]
    assert found == _lines(db.dsn, shared=False)[0] and found
