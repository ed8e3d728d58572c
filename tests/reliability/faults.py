"""Tools for fault tests: exact table dumps, the CLI as a real process, holding apply at a known point."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import psycopg
from psycopg import sql

from auditor.core.connection import APPLICATION_NAME
from tests.helpers import messages

#: The command line as a user runs it (a real process: real exit code, real stderr).
CLI = str(Path(sys.executable).with_name("controller-audit"))


def api_tables(conn: psycopg.Connection) -> list[str]:
    """Every ``api_*`` table of the database."""
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'api\\_%' ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def full_dump(conn: psycopg.Connection, without: Mapping[str, Iterable[str]] | None = None) -> dict[str, list[str]]:
    """The full content of every ``api_*`` table, row by row as JSON text, sorted.

    ``without`` maps a table to uuids of rows left out (e.g. the rows a concurrent writer added).
    """
    skip = {table: set(uuids) for table, uuids in (without or {}).items()}
    out: dict[str, list[str]] = {}
    for table in api_tables(conn):
        rows = conn.execute(sql.SQL("SELECT row_to_json(t)::text FROM {} AS t").format(sql.Identifier(table)))
        texts = [r[0] for r in rows]
        if skip.get(table):
            texts = [t for t in texts if json.loads(t).get("uuid") not in skip[table]]
        out[table] = sorted(texts)
    return out


def cli(*args: str, input: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``controller-audit ARGS`` as a separate process."""
    return subprocess.run([CLI, *args], input=input, capture_output=True, text=True, timeout=timeout, check=False)


def _default_stop_signals() -> None:
    """In the child: SIGTERM and SIGHUP at their default action, however the suite was started
    (``nohup`` ignores SIGHUP, and a child inherits an ignored signal: the tool then keeps it
    ignored, as it should, and a test sending it would see the tool carry on)."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def start_cli(*args: str) -> subprocess.Popen:
    """Start ``controller-audit ARGS`` in the background, SIGTERM and SIGHUP at their defaults."""
    return subprocess.Popen([CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_stop_signals)


def waiting_backend(admin: psycopg.Connection, dbname: str, deadline: float = 120.0) -> tuple[int, str]:
    """``(pid, query)`` of the tool's backend on ``dbname`` once it waits for a lock.

    Polls ``pg_stat_activity`` (``application_name = 'controller-audit'``); gives up after
    ``deadline`` seconds, which only a hung or crashed tool ever reaches.
    """
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        row = admin.execute(
            "SELECT pid, query FROM pg_stat_activity WHERE datname = %s AND application_name = %s "
            "AND wait_event_type = 'Lock' ORDER BY backend_start LIMIT 1",
            (dbname, APPLICATION_NAME),
        ).fetchone()
        if row is not None:
            return row[0], row[1]
        time.sleep(0.05)
    raise AssertionError(f"no {APPLICATION_NAME} backend waited for a lock on {dbname}")


def one_line_error(stderr: str) -> str:
    """The tool's error line; fails if stderr holds anything else (a traceback, several lines) but
    the line naming the database, which a command that connected prints first."""
    lines = [line for line in messages(stderr).splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and lines[0].startswith("controller-audit: "), stderr
    return lines[0]

