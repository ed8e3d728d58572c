"""Choosing, describing and opening the connection to a controller database.

The target comes from, in order: ``--dsn``, ``DATABASE_URL``, the controller's own
``DEIS_DATABASE_*`` variables, then whatever libpq finds itself (``PG*`` variables,
``~/.pgpass``, ``pg_service.conf``).  Passwords never leave this module in readable form:
:func:`redact` is applied to every message that could carry one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg import conninfo as pg_conninfo

from auditor.errors import AuditFailed, ConnectionFailed
from auditor.server_support import UnsupportedServer, require_supported

APPLICATION_NAME = "controller-audit"
DEFAULT_STATEMENT_TIMEOUT = "60s"
DEFAULT_LOCK_TIMEOUT = "5s"
DEFAULT_CONNECT_TIMEOUT = 10
#: Memory per sort/hash for the audit's one big statement: sorting 1M releases by app in
#: 4 MB (the server default) spills to disk several times. Local to the audit transaction.
DEFAULT_WORK_MEM = "64MB"

_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class Target:
    """Where to connect: a libpq conninfo string and where it came from."""

    conninfo: str
    source: str
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def describe(self) -> str:
        """``user@host:port/dbname`` as libpq would resolve it, without the password."""
        try:
            params = pg_conninfo.conninfo_to_dict(self.conninfo)
        except psycopg.ProgrammingError:
            return "(unparsable connection string)"
        host = params.get("host") or os.environ.get("PGHOST") or "local socket"
        port = params.get("port") or os.environ.get("PGPORT") or "5432"
        user = params.get("user") or os.environ.get("PGUSER") or ""
        dbname = params.get("dbname") or os.environ.get("PGDATABASE") or user or "?"
        where = f"{host}:{port}/{dbname}"
        return f"{user}@{where}" if user else where

    def redact(self, text: str) -> str:
        """``text`` with this target's password, in any spelling, replaced by ``***``."""
        return redact(text, self.secrets)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove passwords from ``text``: known secrets, URL user-info and ``password=``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    text = _URL_PASSWORD.sub(r"\1***@", text)
    return _KV_PASSWORD.sub(r"\1***", text)


def _password_of(conninfo: str) -> tuple[str, ...]:
    """The password in ``conninfo`` (if any), raw and URL-quoted, for redaction."""
    found: list[str] = []
    try:
        password = pg_conninfo.conninfo_to_dict(conninfo).get("password")
    except psycopg.ProgrammingError:
        password = None
    if password:
        from urllib.parse import quote

        found += [str(password), quote(str(password), safe="")]
    match = _URL_PASSWORD.search(conninfo)
    if match:
        start = match.end(1)
        found.append(conninfo[start : conninfo.index("@", start)])
    return tuple(dict.fromkeys(found))


def resolve_target(dsn: str | None = None, environ: Mapping[str, str] | None = None) -> Target:
    """Pick the connection target by the documented order of precedence."""
    env = os.environ if environ is None else environ
    if dsn:
        return Target(dsn, "--dsn", _password_of(dsn))
    if env.get("DATABASE_URL"):
        url = env["DATABASE_URL"]
        return Target(url, "DATABASE_URL", _password_of(url))
    deis_keys = ("USER", "PASSWORD", "NAME", "SERVICE_HOST", "SERVICE_PORT")
    if any(env.get(f"DEIS_DATABASE_{key}") for key in deis_keys):
        user = env.get("DEIS_DATABASE_USER", "")
        params = {
            "dbname": env.get("DEIS_DATABASE_NAME") or user or "deis",
            "user": user or None,
            "password": env.get("DEIS_DATABASE_PASSWORD") or None,
            "host": env.get("DEIS_DATABASE_SERVICE_HOST") or None,
            "port": env.get("DEIS_DATABASE_SERVICE_PORT") or "5432",
        }
        conninfo = pg_conninfo.make_conninfo(**{k: v for k, v in params.items() if v})
        secrets = (params["password"],) if params["password"] else ()
        return Target(conninfo, "DEIS_DATABASE_*", secrets)
    secrets = (env["PGPASSWORD"],) if env.get("PGPASSWORD") else ()
    return Target("", "libpq defaults (PG* variables, ~/.pgpass)", secrets)


def _classify_connect_error(message: str) -> str:
    lowered = message.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return "wrong credentials"
    if "does not exist" in lowered and "database" in lowered:
        return "no such database"
    if "role" in lowered and "does not exist" in lowered:
        return "wrong credentials"
    if "no pg_hba.conf entry" in lowered or "permission denied" in lowered:
        return "access denied"
    if "invalid" in lowered and ("dsn" in lowered or "connection option" in lowered or "uri" in lowered):
        return "invalid connection string"
    if "missing \"=\"" in lowered:
        return "invalid connection string"
    return "unreachable"


def connect(target: Target, *, autocommit: bool = False) -> psycopg.Connection:
    """Open a connection tagged ``application_name=controller-audit``.

    Raises :class:`ConnectionFailed` with a redacted one-line reason, and
    :class:`~auditor.server_support.UnsupportedServer` for a server older than the minimum.
    """
    try:
        conn = psycopg.connect(
            target.conninfo,
            application_name=APPLICATION_NAME,
            connect_timeout=int(os.environ.get("PGCONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT)),
            autocommit=autocommit,
        )
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
        reason = " ".join(target.redact(str(exc)).split()) or type(exc).__name__
        kind = _classify_connect_error(reason)
        raise ConnectionFailed(f"{target.describe()}: {reason}", kind=kind) from None
    try:
        require_supported(conn.info.server_version)
    except UnsupportedServer as exc:
        conn.close()
        raise UnsupportedServer(f"{target.describe()}: {exc}") from None
    return conn


def set_timeouts(conn: psycopg.Connection, statement_timeout: str, lock_timeout: str) -> None:
    """Set session timeouts with parameters (``SET`` itself takes no parameters)."""
    try:
        conn.execute(
            "SELECT set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false)",
            (statement_timeout, lock_timeout),
        )
    except psycopg.DataError as exc:
        raise AuditFailed(f"bad timeout value: {exc}", kind="bad input") from None


@contextmanager
def audit_session(
    target: Target,
    *,
    statement_timeout: str = DEFAULT_STATEMENT_TIMEOUT,
    lock_timeout: str = DEFAULT_LOCK_TIMEOUT,
    work_mem: str = DEFAULT_WORK_MEM,
) -> Iterator[psycopg.Connection]:
    """One ``READ ONLY``, ``REPEATABLE READ`` transaction: a consistent snapshot.

    Safe on a busy primary and on a hot standby; needs only ``SELECT`` privileges.
    """
    conn = connect(target)
    try:
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        set_timeouts(conn, statement_timeout, lock_timeout)
        conn.commit()
        with conn.transaction():
            conn.execute("SELECT set_config('work_mem', %s, true)", (work_mem,))
            yield conn
    finally:
        conn.close()
