"""Every statement any command sends to the server stays within PostgreSQL 9.4.

The commands run for real against the test database; a wrapper records the SQL they send
(the database is not mocked: every statement executes).
"""

from __future__ import annotations

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql as pgsql

from auditor.cli import cli
from auditor.demo import write_story
from repairs.model import REPAIRS
from tests.checks.test_sql_portability import VERSION_SWITCHED, portability_problems


@pytest.fixture
def sent(monkeypatch) -> list[str]:
    """The text of every statement executed through psycopg cursors during the test."""
    recorded: list[str] = []

    def recorder(original):
        def execute(self, query, params=None, *args, **kwargs):
            conn = self.connection
            if isinstance(query, pgsql.Composable):
                text = query.as_string(conn)
            elif isinstance(query, bytes):
                text = query.decode()
            else:
                text = str(query)
            recorded.append(text)
            return original(self, query, params, *args, **kwargs)
        return execute

    # Every way a statement reaches the server (the JSON report's findings come through
    # Cursor.stream on libpq 17+, not execute); each still runs on the real server.
    for cls, method in ((psycopg.Cursor, "execute"), (psycopg.ServerCursor, "execute"), (psycopg.Cursor, "stream")):
        monkeypatch.setattr(cls, method, recorder(getattr(cls, method)))
    return recorded


@pytest.mark.parametrize("migration", [19, 28])
def test_every_command_sends_only_94_sql(make_db, tmp_path, monkeypatch, sent, migration):
    db = make_db(migration)
    names = write_story(db.conn)
    sent.clear()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db.dsn)
    runner = CliRunner()
    shared = db.scalar("SELECT config_id::text FROM api_release ORDER BY version DESC LIMIT 1")
    steps = [
        ["info"], ["check", "--fail-on", "never", "--format", "json"], ["explain", names["poisoned"]],
        ["blast-radius", "config", shared], ["blast-radius", "app", names["rolled_back"]],
        ["check", "--fail-on", "never", "--format", "html", "-o", "r.html"],
        ["explain", names["poisoned"], "--format", "html", "-o", "e.html"],
        ["check", "--app", names["out_of_order"], "--fail-on", "never"], ["explain", names["out_of_order"]],
        ["plan", "-o", "p.plan", *(f"--repair={r}" for r in REPAIRS)],
        ["plan", "show", "p.plan", "--format", "html", "-o", "p.html"],
        ["plan", "sql", "p.plan", "-o", "p.sql"],
        ["apply", "p.plan", "--rehearse", "--yes"], ["apply", "p.plan", "--yes"],
        ["apply", "p.plan", "--yes"],  # already applied: the statements that find what is in effect
        ["undo", "sql", "p.plan.undo.json", "-o", "u.sql"],
        ["undo", "p.plan.undo.json", "--yes"], ["undo", "p.plan.undo.json", "--yes"],
    ]
    for args in steps:
        result = runner.invoke(cli, args)
        assert result.exit_code in (0, 1, 2), f"{args}: {result.output}"
    mistyped = runner.invoke(cli, ["explain", names["poisoned"][:-1] + "x"])  # "did you mean": the app names
    assert mistyped.exit_code == 3 and "did you mean" in mistyped.output
    assert "SELECT id FROM api_app ORDER BY id" in sent
    assert any('{"check": ' in text for text in sent), "the server-rendered findings statement was not recorded"
    assert len(sent) > 20
    problems = {text[:200]: portability_problems(text, VERSION_SWITCHED) for text in sent}
    assert {k: v for k, v in problems.items() if v} == {}
    for name in ("p.sql", "u.sql"):
        assert portability_problems((tmp_path / name).read_text()) == [], name
