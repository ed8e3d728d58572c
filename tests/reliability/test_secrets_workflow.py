"""The whole workflow with a password-bearing DSN: the password, raw or URL-quoted, is in no output
and no file - reports, baseline, plan, script, undo file - and not in any error."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from psycopg import conninfo, sql

from tests.reliability.faults import CLI, one_line_error
from tests.repairs.helpers import story

PASSWORD = "Pa55:w/rd@\u00e9%20 ;'x\\"
SPELLINGS = (PASSWORD, quote(PASSWORD, safe=""), quote(PASSWORD))


@pytest.fixture
def password_url(hephy_db):
    """A postgresql:// URL of a login role (superuser, so the workflow may write) with PASSWORD."""
    role = f"op_{uuid.uuid4().hex[:8]}"
    conn = hephy_db.conn
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(sql.Identifier(role),
                                                                              sql.Literal(PASSWORD)))
    socket = conninfo.conninfo_to_dict(hephy_db.dsn)["host"]
    yield f"postgresql://{role}:{quote(PASSWORD, safe='')}@/{hephy_db.name}?host={quote(socket, safe='')}"
    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
    conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _run(workdir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("PG", "DEIS_DATABASE_")) and k not in ("DATABASE_URL", "CONTROLLER_AUDIT_DEBUG")}
    return subprocess.run([CLI, *args], cwd=workdir, env={**clean, **(env or {})}, capture_output=True, text=True,
                          timeout=300, check=False)


def test_password_is_in_no_output_and_no_artifact(hephy_db, password_url, tmp_path):
    story(hephy_db.controller())
    web_build = hephy_db.scalar("SELECT build_id::text FROM api_release r JOIN api_app a ON a.uuid = r.app_id "
                                "WHERE a.id = 'web' ORDER BY version DESC LIMIT 1")
    web_config = hephy_db.scalar("SELECT config_id::text FROM api_release r JOIN api_app a ON a.uuid = r.app_id "
                                 "WHERE a.id = 'web' ORDER BY version DESC LIMIT 1")
    wrong = password_url.replace(quote(PASSWORD, safe=""), quote(PASSWORD + "-wrong", safe=""))
    dsn = ("--dsn", password_url)
    # A wrong password fails only where the server checks passwords (the embedded test server does).
    wrong_steps: list[tuple[tuple[str, ...], dict[str, str] | None, set[int]]] = [
        (("check", "--dsn", wrong), None, {3}),
        (("apply", "repair.plan", "--dsn", wrong, "--yes"), None, {3}),
        (("plan", "-o", "never.plan"), {"DATABASE_URL": wrong}, {3}),
    ] if hephy_db.server.password_auth else []
    # the story's worst findings on Hephy are warnings (boot re-saves a poisoned config_set.latest())
    steps: list[tuple[tuple[str, ...], dict[str, str] | None, set[int]]] = [
        (("check", *dsn, "--format", "table", "--output", "report.txt"), None, {1}),
        (("check", *dsn, "--format", "json", "--output", "report.json"), None, {1}),
        (("check", *dsn, "--format", "prometheus", "--output", "report.prom"), None, {1}),
        (("check", "--format", "json"), {"DATABASE_URL": password_url}, {1}),
        (("baseline", "create", "baseline.json", *dsn), None, {0}),
        (("check", *dsn, "--baseline", "baseline.json"), None, {0}),
        (("explain", "web", *dsn), None, {0}),
        (("blast-radius", "config", web_config, *dsn), None, {0}),
        (("blast-radius", "build", web_build, *dsn), None, {0}),
        (("blast-radius", "app", "web", *dsn), None, {0}),
        (("plan", *dsn, "-o", "repair.plan"), None, {0}),
        (("plan", "show", "repair.plan"), None, {0}),
        (("plan", "sql", "repair.plan", "-o", "repair.sql"), None, {0}),
        (("apply", "repair.plan", *dsn, "--yes", "--rehearse"), None, {0}),
        (("apply", "repair.plan", *dsn, "--yes", "--undo-file", "repair.undo"), None, {0}),
        (("undo", "repair.undo", *dsn, "--yes"), None, {0}),
        (("check", "--dsn", password_url.replace("host=", "host=%2Fnowhere")), None, {3}),
    ]
    for args, env, codes in steps + wrong_steps:
        result = _run(tmp_path, *args, env=env)
        assert result.returncode in codes, (args, result.stdout[-500:], result.stderr)
        for spelling in SPELLINGS:
            assert spelling not in result.stdout and spelling not in result.stderr, (args, spelling)
        if 3 in codes:  # a clear one-line reason
            line = one_line_error(result.stderr)
            assert ("wrong credentials: " in line) if wrong in args or wrong in (env or {}).values() \
                else ("unreachable: " in line)
    written = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert {p.name for p in written} >= {"report.txt", "report.json", "report.prom", "baseline.json", "repair.plan",
                                         "repair.sql", "repair.undo"}
    for path in written:
        text = path.read_bytes().decode("utf-8", errors="replace")
        for spelling in SPELLINGS:
            assert spelling not in text, (path.name, spelling)
