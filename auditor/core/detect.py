"""Is this a controller database, and of which schema generation?

The ``django_migrations`` rows of app ``api`` say which migrations ran; the columns actually
present must agree (``../shared/controller-schema.md`` section 3).  A disagreement means a
half-applied migration or a hand-edited schema, and the audit refuses to guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import psycopg

from auditor.core.errors import NotControllerDatabase, UnknownGeneration
from auditor.core.migrations import API_MIGRATIONS

CORE_TABLES = ("api_app", "api_config", "api_build", "api_release")
NEWEST_KNOWN = len(API_MIGRATIONS)
#: A name Hephy master carried for two weeks in 2018 before renaming it to 0028.
TRANSIENT_0027 = "0027_config_termination_grace_period"

#: (table, column or None for the table itself, first migration that has it, last migration that has it)
SCHEMA_MARKERS: tuple[tuple[str, str | None, int, int], ...] = (
    ("api_config", "registry", 8, NEWEST_KNOWN),
    ("api_config", "healthcheck", 10, NEWEST_KNOWN),
    ("api_push", None, 1, 12),
    ("api_release", "failed", 20, NEWEST_KNOWN),
    ("api_config", "lifecycle_post_start", 24, NEWEST_KNOWN),
    ("api_app", "procfile_structure", 25, NEWEST_KNOWN),
    ("api_release", "exception", 26, NEWEST_KNOWN),
    ("api_service", None, 27, NEWEST_KNOWN),
    ("api_config", "termination_grace_period", 28, NEWEST_KNOWN),
)

#: Columns that are bookkeeping, not content, in config and build rows.
NON_CONTENT_COLUMNS = frozenset({"uuid", "created", "updated", "app_id", "owner_id"})


@dataclass(frozen=True)
class Generation:
    """What kind of controller database this is."""

    name: str  # "deis" or "hephy"
    migration: int  # number of the last api migration applied
    migration_name: str
    has_failed: bool  # api_release.failed (0020+)
    has_exception: bool  # api_release.exception (0026+)
    columns: dict[str, tuple[str, ...]]  # table -> columns, in table order
    #: The database's server_encoding: ``SQL_ASCII`` databases hold unchecked bytes (see
    #: :func:`auditor.core.connection.setup_encoding`); checks and keys read them differently.
    encoding: str = "UTF8"

    @property
    def label(self) -> str:
        """``hephy 0028`` - the generation with its last migration number."""
        return f"{self.name} {self.migration:04d}"

    def content_columns(self, table: str) -> tuple[str, ...]:
        """The columns of a config or build row that a per-release copy must keep verbatim."""
        return tuple(c for c in self.columns[table] if c not in NON_CONTENT_COLUMNS)


def generation_name(migration: int) -> str:
    """``deis`` up to 0023, ``hephy`` from 0024 (Hephy's first migration)."""
    return "deis" if migration <= 23 else "hephy"


_COLUMNS_SQL = """
SELECT c.relname, a.attname
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relname = ANY(%s::text[]) AND c.relkind = 'r' AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY c.relname, a.attnum
"""

_TABLES = CORE_TABLES + ("django_migrations", "api_push", "api_service", "api_appsettings", "auth_user")


def detect(conn: psycopg.Connection) -> Generation:
    """Detect the generation or raise :class:`NotControllerDatabase` / :class:`UnknownGeneration`."""
    columns: dict[str, list[str]] = {}
    for table, column in conn.execute(_COLUMNS_SQL, (list(_TABLES),)).fetchall():
        columns.setdefault(table, []).append(column)
    missing = [t for t in CORE_TABLES if t not in columns]
    if "django_migrations" not in columns or len(missing) == len(CORE_TABLES):
        raise NotControllerDatabase(
            "no controller tables (api_app, api_config, api_build, api_release, django_migrations) "
            "in this database; is this the controller's database?"
        )
    if missing:
        raise NotControllerDatabase(f"controller tables missing: {', '.join(missing)}")
    frozen = {t: tuple(c) for t, c in columns.items()}
    encoding = str(conn.info.parameter_status("server_encoding") or "UTF8")
    readable = conn.execute("SELECT has_table_privilege('django_migrations', 'SELECT')").fetchone()
    if readable is not None and not readable[0]:
        # A least-privilege role with SELECT on the api_* tables only: infer from the columns.
        return replace(_generation_from_columns(frozen), encoding=encoding)
    names = [r[0] for r in conn.execute("SELECT name FROM django_migrations WHERE app = 'api'").fetchall()]
    if not names:
        raise NotControllerDatabase("django_migrations has no rows for app 'api'")
    return replace(_generation_from(names, frozen), encoding=encoding)


def _generation_from_columns(columns: dict[str, tuple[str, ...]]) -> Generation:
    """The newest migration whose schema markers are all present (django_migrations unreadable)."""
    effective = 19 if "api_push" not in columns else 12
    for table, column, first, _last in SCHEMA_MARKERS:
        if first > 19 and table in columns and (column is None or column in columns[table]):
            effective = max(effective, first)
    return Generation(
        name=generation_name(effective),
        migration=effective,
        migration_name=API_MIGRATIONS[effective - 1] + " (inferred from columns: django_migrations unreadable)",
        has_failed="failed" in columns["api_release"],
        has_exception="exception" in columns["api_release"],
        columns=columns,
    )


def _generation_from(names: list[str], columns: dict[str, tuple[str, ...]]) -> Generation:
    numbers: dict[int, str] = {}
    for name in names:
        match = re.match(r"^(\d{4})_", name)
        if not match:
            raise UnknownGeneration(f"api migration {name!r} is not one the controller ships")
        numbers[int(match.group(1))] = name
    top = max(numbers)
    if top > NEWEST_KNOWN:
        raise UnknownGeneration(
            f"api migration {numbers[top]} is newer than the newest this tool knows "
            f"({API_MIGRATIONS[-1]}); upgrade controller-audit"
        )
    transient = numbers.get(27) == TRANSIENT_0027
    for number, name in numbers.items():
        expected = API_MIGRATIONS[number - 1]
        if name != expected and not (number == 27 and transient):
            raise UnknownGeneration(f"api migration {name!r} is not the controller's {expected!r}")
    gaps = [n for n in range(1, top + 1) if n not in numbers]
    if gaps:
        listed = ", ".join(f"{n:04d}" for n in gaps[:5])
        raise UnknownGeneration(f"half-applied migrations: api {listed} missing below {top:04d}")
    effective = 28 if transient and top == 27 else top
    for table, column, first, last in SCHEMA_MARKERS:
        if transient and table == "api_service":
            continue
        present = table in columns and (column is None or column in columns[table])
        expected_present = first <= effective <= last
        if present != expected_present:
            thing = f"{table}.{column}" if column else f"table {table}"
            state = "is missing" if expected_present else "is present"
            raise UnknownGeneration(
                f"schema disagrees with its migrations: last api migration is {numbers[top]} "
                f"but {thing} {state} (half-applied or hand-edited schema)"
            )
    return Generation(
        name=generation_name(effective),
        migration=top,
        migration_name=numbers[top],
        has_failed="failed" in columns["api_release"],
        has_exception="exception" in columns["api_release"],
        columns=columns,
    )
