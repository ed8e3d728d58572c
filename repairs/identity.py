"""Which database a plan was made on, and the session settings fingerprints depend on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from auditor.core.connection import Target
from auditor.core.detect import SCHEMA_MARKERS, Generation
from auditor.core.errors import PlanRefused
from auditor.core.info import system_identifier

#: Fingerprints are ``md5(row::text)``; the text of a timestamptz depends on these settings.
FINGERPRINT_SETTINGS: tuple[tuple[str, str], ...] = (("TimeZone", "UTC"), ("DateStyle", "ISO, MDY"))


def pin_settings(conn: psycopg.Connection) -> None:
    """Fix, for the current transaction, the settings a row's text depends on."""
    for name, value in FINGERPRINT_SETTINGS:
        conn.execute("SELECT set_config(%s, %s, true)", (name, value))


@dataclass(frozen=True)
class Identity:
    """The database a plan belongs to (never a password: the target is described, not given)."""

    database: str
    system_identifier: str | None
    generation: str
    migration: int
    migration_name: str
    target: str

    def to_json(self) -> dict[str, Any]:
        return {"database": self.database, "system_identifier": self.system_identifier,
                "generation": self.generation, "migration": self.migration,
                "migration_name": self.migration_name, "target": self.target}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Identity:
        return cls(doc["database"], doc.get("system_identifier"), doc["generation"], int(doc["migration"]),
                   doc["migration_name"], doc.get("target", ""))

    @property
    def inferred(self) -> bool:
        """Whether the migration was inferred from the columns (``django_migrations`` unreadable)."""
        return "(inferred" in self.migration_name

    @property
    def migration_label(self) -> str:
        """``0028_config_termination_grace_period``, or ``0028 (inferred from columns)``."""
        return f"{self.migration:04d} (inferred from columns)" if self.inferred else self.migration_name

    def check_same(self, actual: Identity, what: str = "plan") -> None:
        """Raise :class:`PlanRefused` unless ``actual`` is the database this was made on.

        Migrations are compared like with like: by name when both sides read ``django_migrations``,
        else by the schema level the columns show (what an unreadable ``django_migrations`` leaves).
        """
        if self.system_identifier and actual.system_identifier and self.system_identifier != actual.system_identifier:
            raise PlanRefused(
                f"this {what} was made on another server (system identifier {self.system_identifier}, "
                f"this one is {actual.system_identifier}); refusing", kind="other database")
        if self.database != actual.database:
            raise PlanRefused(
                f"this {what} was made on database {self.database!r}, not {actual.database!r} "
                f"({actual.target}); refusing", kind="other database")
        if self.inferred or actual.inferred:
            same = column_level(self.migration) == column_level(actual.migration)
        else:
            same = self.migration_name == actual.migration_name
        if not same:
            raise PlanRefused(
                f"this {what} was made at api migration {self.migration_label}, the database is now at "
                f"{actual.migration_label}" + ("; make a new plan" if what == "plan" else ""), kind="other database")


def column_level(migration: int) -> int:
    """The migration the columns alone show for a database at ``migration`` (what
    :func:`auditor.core.detect.detect` infers when ``django_migrations`` is unreadable)."""
    level = 12 if migration <= 12 else 19
    for _table, _column, first, last in SCHEMA_MARKERS:
        if first > 19 and first <= migration <= last:
            level = max(level, first)
    return level


def identify(conn: psycopg.Connection, generation: Generation, target: Target) -> Identity:
    """The identity of the database ``conn`` is connected to."""
    row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None
    return Identity(
        database=row[0], system_identifier=system_identifier(conn), generation=generation.name,
        migration=generation.migration, migration_name=generation.migration_name, target=target.describe(),
    )
