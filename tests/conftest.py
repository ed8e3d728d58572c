"""Test bed: every test talks to a real PostgreSQL.

The session's server (:mod:`tests.testbed`) is a major of the matrix with ``--pg-major``
(``pytest -m compat --pg-major 14``), any installation with ``--pg-bindir``, else
``AUDITOR_TEST_DSN``, testcontainers (when Docker answers) or the embedded wheel's
PostgreSQL.  Each generation's schema is loaded once into a template database; every test
gets its own clone.

Markers (registered in pyproject.toml):

* ``compat``: what runs on every major of the matrix.  A test opts in with
  ``@pytest.mark.compat``, or its module or directory is listed in :data:`tests.markers.COMPAT`;
  every test that uses a hot standby is in it too.
* ``pg(">= 16")``: the test needs a server version (``<``, ``<=``, ``>``, ``>=``, ``==``,
  ``!=`` and a major, or ``9.6``-style version); elsewhere it is skipped, saying why.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from auditor.testbed.builder import Controller
from auditor.testbed.schema import STANDARD_MIGRATIONS
from tests.damage import DamagingController
from tests.markers import is_compat, version_matches
from tests.testbed import Server, start_server


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C reaches the tool's subprocesses however the suite was started: a shell without job
    control starts a background job (``cmd &``, ``nohup``) with SIGINT ignored, and a child
    inherits an ignored signal, so the tests that interrupt the tool would see it carry on.
    With a handler here, each child starts with SIGINT at its default (Python's KeyboardInterrupt)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("controller-audit test bed")
    group.addoption("--pg-major", type=int, default=None, metavar="MAJOR",
                    help="start a PostgreSQL of this major from the matrix (tests/matrix.py) for the session")
    group.addoption("--pg-bindir", type=Path, default=None, metavar="DIR",
                    help="start a PostgreSQL from this installation's bin directory for the session")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the :data:`tests.markers.COMPAT` tests (before ``-m`` selects)."""
    for item in items:
        if is_compat(Path(str(item.path)), getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.compat)


@pytest.fixture(autouse=True)
def _server_version_gate(request: pytest.FixtureRequest) -> None:
    """Skip a test whose ``pg(...)`` marker the session's server does not satisfy."""
    specs = [spec for marker in request.node.iter_markers("pg") for spec in marker.args]
    if not specs:
        return
    server = request.getfixturevalue("pg_server")
    number = server.version_num
    for spec in specs:
        if not version_matches(spec, number):
            pytest.skip(f"needs PostgreSQL {spec}; the server is {server.version}")


_SERVER_DESCRIPTION = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def pg_server(pytestconfig: pytest.Config) -> Iterator[Server]:
    """The PostgreSQL server of this test session."""
    server = start_server(pytestconfig.getoption("pg_major"), pytestconfig.getoption("pg_bindir"))
    pytestconfig.stash[_SERVER_DESCRIPTION] = f"PostgreSQL {server.version} ({server.kind})"
    try:
        yield server
    finally:
        server.close()


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """Name the server the session ran on (``.ci/run`` prints it per major)."""
    description = config.stash.get(_SERVER_DESCRIPTION, None)
    if description:
        terminalreporter.write_line(f"server: {description}")


@pytest.fixture(scope="module")
def standby(pg_server: Server) -> Iterator[str]:
    """Admin DSN of a real hot standby streaming from the test server (clusters we start only).

    Module-scoped: a standby replays every later write of the session, so it lives only as
    long as the tests that need it.
    """
    if pg_server.cluster is None:
        pytest.skip("a hot standby needs a server the test bed started")
    from tests.reliability.standby import hot_standby

    with hot_standby(pg_server.cluster) as dsn:
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
        return DamagingController(self.conn, **kwargs)

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
