"""Which database a plan was made on, and the session settings fingerprints depend on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from auditor.connection import Target
from auditor.detect import Generation
from auditor.errors import PlanRefused
from auditor.info import system_identifier

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

    def check_same(self, actual: Identity, what: str = "plan") -> None:
        """Raise :class:`PlanRefused` unless ``actual`` is the database this was made on."""
        if self.system_identifier and actual.system_identifier and self.system_identifier != actual.system_identifier:
            raise PlanRefused(
                f"this {what} was made on another server (system identifier {self.system_identifier}, "
                f"this one is {actual.system_identifier}); refusing", kind="other database")
        if self.database != actual.database:
            raise PlanRefused(
                f"this {what} was made on database {self.database!r}, not {actual.database!r} "
                f"({actual.target}); refusing", kind="other database")
        if self.migration_name != actual.migration_name:
            raise PlanRefused(
                f"this {what} was made at api migration {self.migration_name}, the database is now at "
                f"{actual.migration_name}; make a new plan", kind="other database")


def identify(conn: psycopg.Connection, generation: Generation, target: Target) -> Identity:
    """The identity of the database ``conn`` is connected to."""
    row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None
    return Identity(
        database=row[0], system_identifier=system_identifier(conn), generation=generation.name,
        migration=generation.migration, migration_name=generation.migration_name, target=target.describe(),
    )
