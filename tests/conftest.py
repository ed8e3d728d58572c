"""Test bed: every test talks to a real PostgreSQL.

The server comes from ``AUDITOR_TEST_DSN``, else testcontainers (when Docker answers),
else an embedded PostgreSQL from a wheel, started once per session.  Each generation's
schema is loaded once into a template database; every test gets its own clone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest

from auditor.testbed.builder import Controller
from auditor.testbed.schema import STANDARD_MIGRATIONS
from auditor.testbed.server import Server, start_server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    """The PostgreSQL server of this test session."""
    server = start_server()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def standby(pg_server: Server) -> Iterator[str]:
    """Admin DSN of a real hot standby streaming from the test server (embedded server only).

    Module-scoped: a standby replays every later write of the session, so it lives only as
    long as the tests that need it.
    """
    if pg_server.data_dir is None:
        pytest.skip("a hot standby needs the embedded test server")
    from tests.reliability.standby import hot_standby

    with hot_standby(pg_server) as dsn:
        yield dsn


@dataclass
class ControllerDB:
    """A fresh controller database: its DSN, an autocommit connection and a data builder."""

    name: str
    dsn: str
    migration: int | None
    conn: psycopg.Connection
    server: Server

    def controller(self, **kwargs) -> Controller:
        """A :class:`Controller` that writes app histories into this database."""
        return Controller(self.conn, **kwargs)

    def scalar(self, query: str, params: tuple = ()):
        """The first column of the first row of ``query``."""
        row = self.conn.execute(query, params).fetchone()
        return None if row is None else row[0]


@pytest.fixture
def make_db(pg_server: Server) -> Iterator[Callable[..., ControllerDB]]:
    """Factory: ``make_db(migration=28)`` gives a new database cloned from the template."""
    made: list[ControllerDB] = []

    def make(migration: int | None = 28) -> ControllerDB:
        name = pg_server.create_database(migration)
        dsn = pg_server.dsn(name)
        conn = psycopg.connect(dsn, autocommit=True)
        db = ControllerDB(name, dsn, migration, conn, pg_server)
        made.append(db)
        return db

    yield make
    for db in made:
        db.conn.close()
        pg_server.drop_database(db.name)


@pytest.fixture(params=STANDARD_MIGRATIONS, ids=lambda m: f"mig{m:04d}")
def db(request: pytest.FixtureRequest, make_db: Callable[..., ControllerDB]) -> ControllerDB:
    """A controller database of each standard generation (0019, 0023, 0028)."""
    return make_db(request.param)


@pytest.fixture
def hephy_db(make_db: Callable[..., ControllerDB]) -> ControllerDB:
    """A current Hephy (0028) controller database."""
    return make_db(28)


@pytest.fixture
def deis_old_db(make_db: Callable[..., ControllerDB]) -> ControllerDB:
    """An old Deis (0019) controller database: no ``api_release.failed``."""
    return make_db(19)
