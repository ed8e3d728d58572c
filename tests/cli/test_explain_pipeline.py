"""``explain`` sends the app's story and the audit statement in one pipeline (the server runs the
audit while the client turns the story's rows into objects), and reads what the statements it
sent one by one read: the same story, the same findings in the same order, the same counts."""

from __future__ import annotations

import gc

import psycopg
import pytest
from psycopg import pq

from auditor.audit import open_audit
from auditor.audit.listing import EVERYTHING, Listing
from auditor.audit.story import app_story, send_story
from auditor.core.errors import AuditFailed
from auditor.core.findings import Counted
from auditor.core.settings import Settings
from auditor.demo import write_story

pytestmark = pytest.mark.skipif(not psycopg.Pipeline.is_supported(), reason="libpq without pipeline mode")


def test_the_audit_statement_goes_in_the_storys_pipeline(hephy_db, run, monkeypatch):
    names = write_story(hephy_db.conn)
    sent: list[tuple[str, bool]] = []

    def recorder(original):
        def execute(self, query, params=None, *args, **kwargs):
            text = query.as_string(self.connection) if isinstance(query, psycopg.sql.Composable) else str(query)
            sent.append((text, self.connection.pgconn.pipeline_status != pq.PipelineStatus.OFF))
            return original(self, query, params, *args, **kwargs)
        return execute

    for cls in (psycopg.Cursor, psycopg.ServerCursor):
        monkeypatch.setattr(cls, "execute", recorder(cls.execute))
    result = run("explain", names["poisoned"], "--dsn", hephy_db.dsn)
    assert result.exit_code == 0, result.output
    audit = [piped for text, piped in sent if "AS check_id" in text]
    story = [piped for text, piped in sent if "FROM api_release WHERE app_id = %s ORDER BY version" in text]
    assert audit == [True] and story == [True]


@pytest.mark.parametrize("listing", [Listing("warning"), EVERYTHING], ids=["default", "everything"])
def test_pipelined_story_and_findings_equal_those_read_one_by_one(hephy_db, listing):
    write_story(hephy_db.conn)
    settings = Settings(dsn=hephy_db.dsn)
    said = []
    for name in [row[0] for row in hephy_db.conn.execute("SELECT id FROM api_app ORDER BY id")]:
        one_by_one: list[Counted] = []
        pipelined: list[Counted] = []
        with open_audit(settings, apps=[name], selection=settings.overrides_only) as run:
            expected_story = app_story(run.conn, run.generation, name, pipeline=False)
            expected = list(run.findings(listing=listing, hidden=one_by_one))
            pending = run.pending_findings(listing=listing, hidden=pipelined)
            with run.conn.pipeline():
                told = send_story(run.conn, run.generation, name, run.scope.uuids[0])
                pending.send()
                story = told.read()
                findings = pending.read()
        assert story == expected_story, name
        assert findings == expected, name
        assert pipelined == one_by_one, name
        said.append(bool(findings or pipelined))
    assert len(said) > 3 and any(said)


def test_a_timeout_of_the_pipelined_audit_is_one_line(hephy_db):
    """The audit statement times out inside the pipeline: the one line of every audit timeout."""
    names = write_story(hephy_db.conn)
    settings = Settings(dsn=hephy_db.dsn)
    with open_audit(settings, apps=[names["poisoned"]], selection=settings.overrides_only) as run:
        pending = run.pending_findings(listing=Listing("warning"), hidden=[])
        assert pending.statement is not None
        pending.statement = psycopg.sql.SQL("SELECT * FROM ({}) f, pg_sleep(0.2) s").format(pending.statement)
        run.conn.execute("SET LOCAL statement_timeout = '50ms'")
        with pytest.raises(AuditFailed, match="statement_timeout reached while running check"), run.conn.pipeline():
            pending.send()
            pending.read()


@pytest.mark.parametrize(("connections", "expected"), [
    ("1", ["releases", "uses", "sync", "audit"]), ("2", ["sync", "audit", "releases", "uses"])])
def test_the_storys_rows_arrive_before_the_audit_is_sent(hephy_db, run, monkeypatch, connections, expected):
    """On one connection the pipeline is synced after the story's statements and before the audit's:
    the server runs the audit while the client turns the story's rows into objects (without the sync,
    reading the story waited for the audit's results as well, and nothing overlapped).  With a second
    connection the audit is sent first (after the clock's sync alone), the story then on the other
    backend: no sync waits for the audit's rows before the story is read."""
    names = write_story(hephy_db.conn)
    events: list[str] = []
    original_execute, original_sync = psycopg.Cursor.execute, psycopg.Pipeline.sync

    def execute(self, query, params=None, *args, **kwargs):
        text = query.as_string(self.connection) if isinstance(query, psycopg.sql.Composable) else str(query)
        if "AS check_id" in text:
            events.append("audit")
        elif "FROM api_release WHERE app_id = %s ORDER BY version" in text:
            events.append("releases")
        elif "coalesce(f.uses, 0)" in text:
            events.append("uses")
        return original_execute(self, query, params, *args, **kwargs)

    def sync(self):
        events.append("sync")
        return original_sync(self)

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    monkeypatch.setattr(psycopg.Pipeline, "sync", sync)
    result = run("explain", names["poisoned"], "--dsn", hephy_db.dsn, "--connections", connections)
    assert result.exit_code == 0, result.output
    assert events == expected


def test_the_story_is_read_and_written_with_the_collector_paused(hephy_db, run, monkeypatch):
    """The story's releases and rows live to the end of ``explain``: the cyclic collector is paused
    while they are read and the text (or JSON) is written (its full collections rescanned every
    object made so far, a third of reading 10,000 releases), and restored afterwards."""
    from auditor.audit.story import PendingStory
    from auditor.cli.commands import explain

    names = write_story(hephy_db.conn)
    collecting: list[tuple[str, bool]] = []

    def watched(name, original):
        def call(*args, **kwargs):
            collecting.append((name, gc.isenabled()))
            return original(*args, **kwargs)
        return call

    monkeypatch.setattr(PendingStory, "read", watched("story", PendingStory.read))
    monkeypatch.setattr(explain, "render", watched("text", explain.render))
    monkeypatch.setattr(explain, "formatted", watched("json", explain.formatted))
    assert gc.isenabled()
    for args in ([], ["--all"], ["--format", "json"]):
        result = run("explain", names["poisoned"], "--dsn", hephy_db.dsn, *args)
        assert result.exit_code == 0, result.output
        assert gc.isenabled()
    assert collecting == [("story", False), ("text", False)] * 2 + [("story", False), ("json", False)]
