"""The privileges a repair transaction needs, checked before it takes any lock.

``apply`` and ``undo`` read ``api_app`` and every table a repair writes (the snapshot and the
row counts), lock and change configs and builds (``SELECT ... FOR NO KEY UPDATE``, ``INSERT``
copies and re-inserted rows, ``UPDATE`` dates, ``DELETE`` orphans and undone copies), lock and
re-point releases (``UPDATE``), and keep the planned rows in temporary tables (``TEMPORARY`` on
the database).  The same set serves an apply and its undo, so a role that can apply a plan can
take it back.  ``django_migrations`` is optional: without it the schema level comes from the
columns (:meth:`repairs.identity.Identity.check_same`).
"""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

#: table -> the privileges a repair needs on it, in GRANT order.
TABLE_PRIVILEGES: dict[str, tuple[str, ...]] = {
    "api_app": ("SELECT",),
    "api_config": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "api_build": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "api_release": ("SELECT", "UPDATE"),
}


def missing_grants(conn: psycopg.Connection, *, role: str, database: str) -> list[str]:
    """The GRANT statements that would give ``role`` what a repair needs (empty: nothing missing)."""
    checks = [(table, privilege) for table, privileges in TABLE_PRIVILEGES.items() for privilege in privileges]
    row = conn.execute(
        "SELECT ARRAY(SELECT has_table_privilege(t.name, t.privilege) FROM unnest(%s::text[], %s::text[]) "
        "WITH ORDINALITY AS t(name, privilege, n) ORDER BY t.n), has_database_privilege(current_database(), 'TEMPORARY')",
        ([t for t, _ in checks], [p for _, p in checks]),
    ).fetchone()
    assert row is not None
    lacking: dict[str, list[str]] = {}
    for (table, privilege), granted in zip(checks, row[0], strict=True):
        if not granted:
            lacking.setdefault(table, []).append(privilege)
    who = _name(conn, role)
    grants = [f"GRANT {', '.join(privileges)} ON {table} TO {who}" for table, privileges in lacking.items()]
    if not row[1]:
        grants.append(f"GRANT TEMPORARY ON DATABASE {_name(conn, database)} TO {who}")
    return grants


def _name(conn: psycopg.Connection, name: str) -> str:
    """``name`` as SQL: bare when it needs no quotes, else quoted."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else sql.Identifier(name).as_string(conn)
