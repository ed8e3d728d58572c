"""What ``controller-audit info`` reports about the target database."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from auditor.core.detect import Generation
from auditor.core.server_support import MINIMUM, PG_CONTROL_SYSTEM_SINCE, degradations, version_text

#: Above this many rows (catalogue estimate) a table is not counted exactly.
EXACT_COUNT_LIMIT = 100_000

INFO_TABLES = (
    "api_app", "api_config", "api_build", "api_release", "api_appsettings", "api_tls",
    "api_domain", "api_service", "api_certificate", "api_key", "auth_user",
)


@dataclass(frozen=True)
class TableCount:
    """A row count, exact or from ``pg_class.reltuples``."""

    table: str
    rows: int
    estimated: bool


@dataclass(frozen=True)
class DatabaseInfo:
    """Identity and shape of the audited database."""

    server_version: str
    server_version_num: int
    database: str
    in_recovery: bool
    system_identifier: str | None
    generation: Generation
    counts: tuple[TableCount, ...]


def system_identifier(conn: psycopg.Connection) -> str | None:
    """The server's system identifier (9.6+, where the role may read it), else None."""
    if conn.info.server_version < PG_CONTROL_SYSTEM_SINCE:
        return None
    try:
        with conn.transaction():
            row = conn.execute("SELECT system_identifier::text FROM pg_control_system()").fetchone()
    except psycopg.Error:
        return None
    return row[0] if row else None


def table_counts(conn: psycopg.Connection, tables: tuple[str, ...] = INFO_TABLES) -> tuple[TableCount, ...]:
    """Exact counts for small tables, catalogue estimates for large ones (one query)."""
    rows = conn.execute(
        """
        SELECT t, c.reltuples::bigint, has_table_privilege(c.oid, 'SELECT')
        FROM unnest(%s::text[]) WITH ORDINALITY AS u(t, n)
        JOIN pg_catalog.pg_class c
          ON c.relname = u.t AND c.relkind = 'r' AND pg_catalog.pg_table_is_visible(c.oid)
        ORDER BY u.n
        """,
        (list(tables),),
    ).fetchall()
    counts = []
    for table, estimate, readable in rows:
        if (estimate is not None and estimate > EXACT_COUNT_LIMIT) or not readable:
            counts.append(TableCount(table, max(int(estimate or 0), 0), True))
        else:
            exact = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            ).fetchone()
            counts.append(TableCount(table, exact[0] if exact else 0, False))
    return tuple(counts)


def gather(conn: psycopg.Connection, generation: Generation) -> DatabaseInfo:
    """Collect :class:`DatabaseInfo` inside the current (read-only) transaction."""
    row = conn.execute(
        "SELECT current_setting('server_version'), current_database(), pg_is_in_recovery()"
    ).fetchone()
    assert row is not None
    return DatabaseInfo(
        server_version=row[0],
        server_version_num=conn.info.server_version,
        database=row[1],
        in_recovery=row[2],
        system_identifier=system_identifier(conn),
        generation=generation,
        counts=table_counts(conn),
    )


def support_lines(server_version_num: int) -> list[str]:
    """What ``info`` says about this server's support: the minimum, then what is degraded here."""
    lines = [f"supported:       yes (controller-audit supports PostgreSQL {version_text(MINIMUM)} and newer)"]
    degraded = degradations(server_version_num)
    if not degraded:
        lines.append("degraded:        nothing (every server-side path is used)")
    for item in degraded:
        lines.append(f"degraded:        {item.below} (needs PostgreSQL {version_text(item.since)}: {item.feature})")
    return lines
