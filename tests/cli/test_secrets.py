"""A DSN password never appears in any command's output or error."""

from __future__ import annotations

import uuid

import pytest
from psycopg import sql

PASSWORD = "Sup3r-s3cret-pw"


@pytest.fixture
def password_dsn(hephy_db):
    """A DSN for a SELECT-only role that logs in with ``PASSWORD``."""
    role = f"auditor_{uuid.uuid4().hex[:8]}"
    conn = hephy_db.conn
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(PASSWORD)))
    conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(sql.Identifier(role)))
    info = conn.info.get_parameters()
    host = info.get("host") or conn.info.host
    dsn = f"host={host} port={conn.info.port} dbname={hephy_db.name} user={role} password={PASSWORD}"
    web = hephy_db.controller().create_app("web")
    web.push()
    web.orphan_config(X="1")
    yield dsn, web, hephy_db.server.password_auth
    conn.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(sql.Identifier(role)))
    conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
    conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def commands(dsn: str, web) -> list[tuple[str, ...]]:
    return [
        ("check", "--dsn", dsn),
        ("check", "--dsn", dsn, "--format", "json"),
        ("check", "--dsn", dsn, "--format", "prometheus", "--output", "out.prom"),
        ("check", "--dsn", dsn, "--app", "ghost"),
        ("check", "--dsn", dsn, "--check", "nope"),
        ("check", "--dsn", dsn, "--statement-timeout", "bogus"),
        ("baseline", "create", "b.json", "--dsn", dsn),
        ("explain", "web", "--dsn", dsn),
        ("explain", "ghost", "--dsn", dsn),
        ("blast-radius", "build", web.current().build, "--dsn", dsn),
        ("blast-radius", "app", "web", "--dsn", dsn),
        ("blast-radius", "config", "not-a-uuid", "--dsn", dsn),
    ]


def test_password_never_printed(password_dsn, run, tmp_path):
    dsn, web, password_auth = password_dsn
    wrong = dsn.replace(PASSWORD, PASSWORD + "-wrong")
    url = f"postgresql://someone:{PASSWORD}@127.0.0.1:1/x?connect_timeout=2"
    codes = {}
    for args in [*commands(dsn, web), *commands(wrong, web), ("check", "--dsn", url), ("explain", "web", "--dsn", url)]:
        result = run(*args)
        codes[args] = result.exit_code
        assert PASSWORD not in result.output, args
        for written in tmp_path.iterdir():
            assert PASSWORD not in written.read_text(), (args, written)
    assert codes[("check", "--dsn", dsn)] == 1  # the password really was used to log in
    assert codes[("explain", "web", "--dsn", dsn)] == 0
    assert all(code == 3 for args, code in codes.items() if url in args)
    if password_auth:  # a server that trusts every login would accept the wrong password
        assert all(code == 3 for args, code in codes.items() if wrong in args)
