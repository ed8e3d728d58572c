"""Before PostgreSQL 16: the optimistic JSON cast.

Those servers have no ``pg_input_is_valid()``, and a cast of a value that does not parse aborts the
statement (``invalid_text_representation``).  A check that validates JSON (``cast_probe_sql``) first
casts every candidate value inside a savepoint of the audit's transaction (allowed on a hot standby;
nothing is created).  In the normal case no value fails and the check runs on the server like on 16+;
when one fails, the savepoint is rolled back and only that check's rows are filtered on the client.
"""

from __future__ import annotations

from collections.abc import Mapping

import psycopg
from psycopg import sql

#: The savepoint the probe runs in.
SAVEPOINT = sql.Identifier("controller_audit_json_cast")

#: The SQLSTATE classes of what a value the cast cannot take raises: invalid_text_representation
#: (22P02) and the rest of class 22 (e.g. an untranslatable character), or a nesting deeper than
#: the server's stack (54001, class 54).
_REFUSED = ("22", "54")


def casts_cleanly(conn: psycopg.Connection, probe: sql.Composed, params: Mapping[str, object]) -> bool:
    """Run ``probe`` (rows ending with the count of values only Python can judge) in a savepoint:
    whether it succeeded with no such value.  A refused cast is rolled back to the savepoint; any
    other error (a timeout) is the caller's."""
    conn.execute(sql.SQL("SAVEPOINT {}").format(SAVEPOINT))
    try:
        rows = conn.execute(probe, params).fetchall()
    except psycopg.Error as exc:
        if (exc.sqlstate or "")[:2] not in _REFUSED:
            raise
        conn.execute(sql.SQL("ROLLBACK TO SAVEPOINT {}").format(SAVEPOINT))
        return False
    conn.execute(sql.SQL("RELEASE SAVEPOINT {}").format(SAVEPOINT))
    return all(row[-1] == 0 for row in rows)
