"""Choosing, describing and opening the connection to a controller database.

The target comes from, in order: ``--dsn``, ``DATABASE_URL``, the controller's own
``DEIS_DATABASE_*`` variables, then whatever libpq finds itself (``PG*`` variables,
``~/.pgpass``, ``pg_service.conf``); the psql-style flags ``-h``/``-p``/``-U``/``-d`` then
replace their part of it (:func:`with_parts`).  Passwords never leave this module in readable form:
:func:`redact` is applied to every message that could carry one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg import sql
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg.types.json import set_json_loads

from auditor.core.errors import AuditFailed, BadInput, ConnectionFailed
from auditor.core.server_support import UnsupportedServer, require_supported
from auditor.core.text import decode_lenient

APPLICATION_NAME = "controller-audit"
DEFAULT_CONNECT_TIMEOUT = 10
#: Memory per sort/hash for the audit's one big statement: sorting 1M releases by app in
#: 4 MB (the server default) spills to disk several times. Local to the audit transaction.
DEFAULT_WORK_MEM = "64MB"

#: A select-list item turning JIT off for the current transaction, read from ``pg_settings`` so a
#: server without the setting (before 11) is sent nothing it lacks (no version branch).  Where the
#: server was built with LLVM (Debian's and most packages; on by default from 12) the cost estimates
#: of the audit's statement and of a repair's set-based statements pass ``jit_above_cost``: compiling
#: took seconds the statements did not win back (docs/benchmark.md, issues 16m and 16s).
JIT_OFF = "(SELECT set_config(name, 'off', true) FROM pg_settings WHERE name = 'jit')"

_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


#: What an unparsable connection string is told (never any part of the string itself).
UNPARSABLE_HINT = ("in a postgresql:// URL percent-encode @ / % and spaces in the user name and password "
                   "(@ is %40, / is %2F, a space %20); in key=value form single-quote a value that has spaces "
                   "or quotes ('a b', 'it\\'s')")


class UnparsableConnectionString(ValueError):
    """A connection string libpq cannot read, or would read other than it looks; the message is
    safe to print (it never quotes the string)."""


def _uri_problem(conninfo: str) -> str | None:
    """Why a ``postgresql://`` URL is ambiguous (libpq would read part of a password as the
    host, port or database), or None."""
    rest = conninfo.strip().split("://", 1)[1]
    authority, _, path_and_query = rest.partition("/")
    if authority.count("@") > 1:
        return "it has more than one @ before the host (an @ in the password must be written %40)"
    if "@" in path_and_query.partition("?")[0]:
        return "it has an @ after the host (a / in the password must be written %2F)"
    return None


def parse_conninfo(conninfo: str) -> dict[str, str]:
    """libpq's reading of ``conninfo``; :class:`UnparsableConnectionString` when libpq cannot
    read it, or would read it other than it looks (a password split into host and port)."""
    try:
        params = {k: str(v) for k, v in pg_conninfo.conninfo_to_dict(conninfo).items()}
    except psycopg.ProgrammingError:
        raise UnparsableConnectionString("libpq cannot parse it") from None
    if conninfo.lstrip().startswith(("postgresql://", "postgres://")):
        problem = _uri_problem(conninfo)
        if problem:
            raise UnparsableConnectionString(problem)
    ports = params.get("port", "")
    if ports and not all(p.strip().isdigit() for p in ports.split(",") if p.strip()):
        raise UnparsableConnectionString("its port is not a number")
    return params


@dataclass(frozen=True)
class Target:
    """Where to connect: a libpq conninfo string and where it came from."""

    conninfo: str
    source: str
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def params(self) -> dict[str, str]:
        """The parsed connection parameters, or :class:`ConnectionFailed` (kind ``invalid
        connection string``) that says why without quoting any part of the string."""
        try:
            return parse_conninfo(self.conninfo)
        except UnparsableConnectionString as exc:
            raise ConnectionFailed(
                f"the connection string from {self.source} cannot be used: {exc} (it is not shown: it may "
                f"hold a password); {UNPARSABLE_HINT}", kind="invalid connection string") from None

    def _where(self) -> tuple[str, str, str, str] | None:
        """(user, host, port, dbname) as libpq would resolve them, or None if unparsable."""
        try:
            params = parse_conninfo(self.conninfo)
        except UnparsableConnectionString:
            return None
        host = params.get("host") or os.environ.get("PGHOST") or "local socket"
        port = params.get("port") or os.environ.get("PGPORT") or "5432"
        user = params.get("user") or os.environ.get("PGUSER") or ""
        dbname = params.get("dbname") or os.environ.get("PGDATABASE") or user or "?"
        return user, host, port, dbname

    def describe(self) -> str:
        """``user@host:port/dbname`` as libpq would resolve it, without the password."""
        where = self._where()
        if where is None:
            return "(unparsable connection string)"
        user, host, port, dbname = where
        return f"{user}@{host}:{port}/{dbname}" if user else f"{host}:{port}/{dbname}"

    def database_label(self) -> str | None:
        """``host:port/dbname`` (no user, no password): which database, for metric labels."""
        where = self._where()
        return None if where is None else f"{where[1]}:{where[2]}/{where[3]}"

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
    try:  # libpq's own (lenient) reading: every password it would see is redacted
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


#: The psql-style flags that replace one part of the target, by the libpq keyword they set.
PART_FLAGS: dict[str, str] = {"host": "-h", "port": "-p", "user": "-U", "dbname": "-d"}


def looks_like_conninfo(value: str) -> bool:
    """Whether a ``-d`` value is a whole connection string (as psql reads it), not a database name."""
    return "=" in value or value.lstrip().startswith(("postgresql://", "postgres://"))


def with_parts(base: Target, parts: Mapping[str, str | int | None]) -> Target:
    """``base`` with the parts given by ``-h``/``-p``/``-U``/``-d`` replaced (libpq keywords
    ``host``, ``port``, ``user``, ``dbname``); the rest of ``base`` stays.

    A password in ``base`` belongs to its user on its host: when ``-h`` or ``-U`` names another
    one, that password is not sent (libpq then reads ``PGPASSWORD`` or ``~/.pgpass``).  No flag
    takes a password.
    """
    given = {key: str(value) for key, value in parts.items() if value is not None and str(value) != ""}
    if not given:
        return base
    params = dict(base.params())
    if "password" in params and any(key in given and given[key] != params.get(key) for key in ("host", "user")):
        del params["password"]
    params.update(given)
    flags = ", ".join(flag for key, flag in PART_FLAGS.items() if key in given)
    return Target(pg_conninfo.make_conninfo(**params), f"{flags} over {base.source}", base.secrets)


#: Said when the server wants a password and none was given (libpq never prompts here).
NO_PASSWORD_HINT = ("the server asks for a password and none was given: set PGPASSWORD or add a line to ~/.pgpass "
                    "(controller-audit never prompts, and takes no password on its command line)")


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


def _connect_timeout(params: Mapping[str, str]) -> dict[str, int]:
    """The ``connect_timeout`` to pass: none when the target sets one, else ``PGCONNECT_TIMEOUT``
    (validated), else the default."""
    if params.get("connect_timeout"):
        return {}
    raw = os.environ.get("PGCONNECT_TIMEOUT")
    if raw is None or not raw.strip():
        return {"connect_timeout": DEFAULT_CONNECT_TIMEOUT}
    if not raw.strip().isdigit() or not 0 <= int(raw) <= 86400:
        raise BadInput("PGCONNECT_TIMEOUT must be a whole number of seconds from 0 to 86400", kind="bad input")
    return {"connect_timeout": int(raw)}



def connect(target: Target, *, autocommit: bool = False) -> psycopg.Connection:
    """Open a connection tagged ``application_name=controller-audit``, reading text the way
    the server's encoding needs (:func:`setup_encoding`).

    Raises :class:`ConnectionFailed` with a one-line reason built from the parsed target and
    redacted; a string that cannot be parsed is never quoted.  A server older than the minimum
    is :class:`~auditor.core.server_support.UnsupportedServer`.
    """
    params = target.params()
    extra: dict[str, Any] = _connect_timeout(params)
    try:
        conn = psycopg.connect(target.conninfo, application_name=APPLICATION_NAME, client_encoding="UTF8",
                               autocommit=autocommit, **extra)
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
        reason = " ".join(target.redact(str(exc)).split()) or type(exc).__name__
        kind = _classify_connect_error(reason)
        if "no password supplied" in reason:
            reason = f"{reason}: {NO_PASSWORD_HINT}"
        raise ConnectionFailed(f"{target.describe()}: {reason}", kind=kind) from None
    try:
        require_supported(conn.info.server_version)
    except UnsupportedServer as exc:
        conn.close()
        raise UnsupportedServer(f"{target.describe()}: {exc}") from None
    try:
        setup_encoding(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def setup_encoding(conn: psycopg.Connection) -> None:
    """Make every text value readable, whatever the database's encoding.

    The connection speaks UTF8 (the server converts LATIN1 and the like).  A ``SQL_ASCII``
    database converts nothing and holds whatever bytes clients wrote, so there the session
    asks for the raw bytes (``client_encoding SQL_ASCII``: a UTF8 session would fail on the
    first byte that is not UTF-8) and :func:`auditor.core.text.decode_lenient` decodes them:
    UTF-8 where they are, each other byte as Latin-1.
    """
    if conn.info.parameter_status("server_encoding") != "SQL_ASCII":
        return
    conn.execute("SET client_encoding TO 'SQL_ASCII'")
    if not conn.autocommit:
        conn.commit()
    register_lenient_loaders(conn)


_UNKNOWN_OID = 705  # an untyped literal (not in psycopg's registry by name)


class _LenientTextLoader(Loader):
    """Text of a ``SQL_ASCII`` database: UTF-8 where it is, Latin-1 byte by byte where not."""

    def load(self, data: Buffer) -> str:
        return decode_lenient(bytes(data))


def register_lenient_loaders(conn: psycopg.Connection) -> None:
    """Load every text and JSON type of ``conn`` with :func:`auditor.core.text.decode_lenient`."""
    for name in ("text", "varchar", "bpchar", "name", '"char"', "xml", _UNKNOWN_OID):
        conn.adapters.register_loader(name, _LenientTextLoader)
    set_json_loads(lambda data: json.loads(decode_lenient(bytes(data)) if not isinstance(data, str) else data),
                   conn)


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
    statement_timeout: str,
    lock_timeout: str,
    work_mem: str = DEFAULT_WORK_MEM,
    exported: list[str] | None = None,
) -> Iterator[psycopg.Connection]:
    """One ``READ ONLY``, ``REPEATABLE READ`` transaction: a consistent snapshot.

    Safe on a busy primary and on a hot standby; needs only ``SELECT`` privileges.  With ``exported``
    the transaction first tries ``pg_export_snapshot()`` and appends the snapshot's id to the list
    (for :func:`snapshot_session`); where the server refuses, the failed transaction is rolled back
    before anything was read and the audit runs in a new one, without the id.
    """
    conn = connect(target)
    try:
        _read_only(conn, statement_timeout, lock_timeout)
        snapshot = _export_snapshot(conn) if exported is not None else []
        if exported is not None and snapshot:
            exported.extend(snapshot)
            # The transaction that exported it goes on (ended by the close: it wrote nothing).
            _plan_settings(conn, work_mem)
            yield conn
            return
        with conn.transaction():
            _plan_settings(conn, work_mem)
            yield conn
    finally:
        conn.close()


@contextmanager
def snapshot_session(
    target: Target,
    snapshot: str,
    *,
    statement_timeout: str,
    lock_timeout: str,
    work_mem: str = DEFAULT_WORK_MEM,
) -> Iterator[psycopg.Connection]:
    """A second connection to ``target`` in the snapshot ``snapshot`` (exported by
    :func:`audit_session`): the same settings, timeouts and ``application_name``, and a ``READ ONLY``,
    ``REPEATABLE READ`` transaction that sees exactly what the first one sees (as ``pg_dump -j``'s
    workers do).  Raises :class:`ConnectionFailed` or :class:`psycopg.Error` when the server will not
    have it (no connection left, a standby before PostgreSQL 10, a pooler)."""
    conn = connect(target)
    try:
        _read_only(conn, statement_timeout, lock_timeout)
        with conn.transaction():
            # SET TRANSACTION SNAPSHOT must be the transaction's first statement, and takes no parameters.
            conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
            _plan_settings(conn, work_mem)
            yield conn
    finally:
        conn.close()


def _read_only(conn: psycopg.Connection, statement_timeout: str, lock_timeout: str) -> None:
    """Make ``conn``'s transactions ``READ ONLY``, ``REPEATABLE READ``, with the session's timeouts."""
    conn.read_only = True
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    set_timeouts(conn, statement_timeout, lock_timeout)
    conn.commit()


def _export_snapshot(conn: psycopg.Connection) -> list[str]:
    """``[id]`` of the snapshot of the transaction this starts on ``conn`` (left open), or ``[]``
    (and no transaction) where the server refuses to export one."""
    try:
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
    except psycopg.Error:
        conn.rollback()
        return []
    return [row[0]] if row is not None else []


def _plan_settings(conn: psycopg.Connection, work_mem: str) -> None:
    """The audit reads every row its server-side cursors return: plan for all of them, not for the
    first 10% (cursor_tuple_fraction's default made the 1M audit 1.6x slower).  No JIT (PostgreSQL 11
    and later, where the server was built with it: Debian's and most packages are): the statement's
    cost estimate sends its ~1,150 lines through LLVM with inlining and optimisation, ~7 s of
    compiling for a 60 ms statement (the largest app, Debian's PostgreSQL 15); the whole audit of
    300k releases took 12.6 s instead of 2.0 s.  Read from pg_settings, so a server without the
    setting (before 11) changes nothing.  No synchronized scans: a table larger than a quarter of
    ``shared_buffers`` is otherwise read from wherever another scan of it (the other backend's, another
    session's, one stopped early) left off, and the rows of a check whose order follows a scan (the
    orphans of a use pass, in its hash table's buckets) came in another order from run to run at 1M
    releases.  Local to the transaction."""
    conn.execute("SELECT set_config('work_mem', %s, true), set_config('cursor_tuple_fraction', '1', true), "
                 "set_config('synchronize_seqscans', 'off', true), " + JIT_OFF, (work_mem,))
