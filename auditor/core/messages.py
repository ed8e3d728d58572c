"""The one line every expected failure is shown as: ``controller-audit: <kind>: <message>``.

The command line prints it on stderr; ``check --format nagios`` puts it into its UNKNOWN status
line.  Passwords are removed and control characters shown escaped, whatever the message quotes.
"""

from __future__ import annotations

import re

import psycopg

from auditor.core.connection import redact
from auditor.core.errors import AuditFailed, AuditorError
from auditor.core.text import escape

PROGRAM = "controller-audit"

#: libpq's messages for a connection string it cannot parse: they quote the string, which may
#: hold a password, so they are never printed (every connection goes through
#: :func:`auditor.core.connection.connect`, which refuses such strings first; this is the net below).
_CONNINFO_ERRORS = ("missing \"=\" after", "unterminated quoted string", "invalid percent-encoded token",
                    "unexpected spaces found", "invalid connection option", "invalid uri query parameter",
                    "key/value separator", "invalid ipv6 host address", "matching \"]\"",
                    "invalid integer value", "invalid connection string", "invalid dsn")


def error_line(message: str) -> str:
    """``controller-audit: <message>`` with passwords removed and control characters shown."""
    return f"{PROGRAM}: {escape(redact(message))}"


def failure_line(exc: AuditorError | psycopg.Error | OSError) -> str:
    """The one line for an expected failure: an :class:`AuditorError`, a database error, a file error."""
    if isinstance(exc, AuditorError):
        return error_line(exc.one_line())
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return error_line(f"permission denied: {missing_grant(exc)}")
    if isinstance(exc, psycopg.Error):
        message = str(exc)
        if isinstance(exc, psycopg.ProgrammingError) and any(m in message.lower() for m in _CONNINFO_ERRORS):
            return error_line("invalid connection string: it cannot be parsed (it is not shown: it may hold a "
                              "password)")
        return error_line(AuditFailed(message).one_line())
    return error_line(f"file error: {exc}")


#: What each kind of object needs to be read, and how to say it: ``permission denied for table x``.
_GRANTS = {"table": ("read", "SELECT ON {}"), "relation": ("read", "SELECT ON {}"), "view": ("read", "SELECT ON {}"),
           "sequence": ("read", "SELECT ON SEQUENCE {}"), "schema": ("use schema", "USAGE ON SCHEMA {}"),
           "database": ("connect to database", "CONNECT ON DATABASE {}"),
           "function": ("call", "EXECUTE ON FUNCTION {}")}
_DENIED = re.compile(r"^permission denied for (\w+) (.+)$")
_PLAIN_NAME = re.compile(r"^[a-z_][a-z0-9_$]*$")


def missing_grant(exc: psycopg.errors.InsufficientPrivilege, role: str | None = None) -> str:
    """``role audit cannot read api_config; GRANT SELECT ON api_config TO audit``: a missing privilege
    of ``role`` (the connection's user) as the GRANT that gives it (the server's own words when it
    names no object it can be read from)."""
    primary = exc.diag.message_primary or str(exc)
    found = _DENIED.match(primary)
    if found is None or found.group(1) not in _GRANTS:
        return f"{primary} (role {role})" if role else primary
    verb, grant = _GRANTS[found.group(1)]
    on = grant.format(found.group(2))
    if role is None:
        return f"cannot {verb} {found.group(2)}; GRANT {on} TO the role controller-audit connects as"
    grantee = role if _PLAIN_NAME.match(role) else '"' + role.replace('"', '""') + '"'
    return f"role {role} cannot {verb} {found.group(2)}; GRANT {on} TO {grantee}"
