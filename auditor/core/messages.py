"""The one line every expected failure is shown as: ``controller-audit: <kind>: <message>``.

The command line prints it on stderr; ``check --format nagios`` puts it into its UNKNOWN status
line.  Passwords are removed and control characters shown escaped, whatever the message quotes.
"""

from __future__ import annotations

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
    if isinstance(exc, psycopg.Error):
        message = str(exc)
        if isinstance(exc, psycopg.ProgrammingError) and any(m in message.lower() for m in _CONNINFO_ERRORS):
            return error_line("invalid connection string: it cannot be parsed (it is not shown: it may hold a "
                              "password)")
        return error_line(AuditFailed(message).one_line())
    return error_line(f"file error: {exc}")
