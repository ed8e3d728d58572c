"""The benchmark's PostgreSQL: a throw-away cluster reachable on its unix socket and over TCP.

The test bed's clusters listen on a unix socket only; the naive baseline must also be measured
over TCP loopback (how a script reaches a database in a cluster), so the benchmark starts its
own cluster the same way (:func:`auditor.testbed.server.start_cluster`, the test bed's
``pg_hba.conf`` and settings) with ``listen_addresses = 127.0.0.1`` on a free port and the
superuser trusted from loopback.  Any installation can serve: the embedded wheel's (default),
a major of the test matrix (``tests/matrix.py``) or a ``bin`` directory.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from psycopg import conninfo as pg_conninfo

from auditor.testbed.server import SUPERUSER, embedded_bindir, start_cluster
from tests.testbed import HBA, SETTINGS, Server

LOOPBACK = "127.0.0.1"


@dataclass
class BenchServer:
    """A server to create databases on, and how to reach them over TCP (when known)."""

    server: Server
    tcp: tuple[str, int] | None = None

    def dsn(self, dbname: str) -> str:
        """The unix-socket DSN (or the ``--dsn`` server's own) of ``dbname``."""
        return self.server.dsn(dbname)

    def tcp_dsn(self, dbname: str) -> str | None:
        """A DSN for ``dbname`` over TCP loopback, or None when the server has none."""
        if self.tcp is None:
            return None
        params = pg_conninfo.conninfo_to_dict(self.server.admin_dsn)
        params.update(host=self.tcp[0], port=str(self.tcp[1]), dbname=dbname)
        return pg_conninfo.make_conninfo(**params)

    def close(self) -> None:
        self.server.close()


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel's choice)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def start_bench_server(bindir: Path | None = None, kind: str | None = None) -> BenchServer:
    """Start a cluster of the installation in ``bindir`` (default: the embedded wheel's),
    listening on its unix socket and on a free TCP port of the loopback interface."""
    bindir = bindir or embedded_bindir()
    port = free_port()
    hba = HBA + f"host all {SUPERUSER} {LOOPBACK}/32 trust\n"
    # ``port`` overrides the ``-p`` the cluster is started with: the socket is named after it too.
    cluster = start_cluster(bindir, "/tmp", hba=hba,
                            settings={**SETTINGS, "listen_addresses": LOOPBACK, "port": str(port)})
    admin = f"host={cluster.socket_dir} port={port} user={SUPERUSER} dbname=postgres"
    server = Server(admin_dsn=admin, kind=kind or "embedded", password_auth=True, cluster=cluster,
                    _stop=cluster.close)
    return BenchServer(server, (LOOPBACK, port))


def attach(admin_dsn: str, tcp_dsn: str | None = None) -> BenchServer:
    """A server given by DSN (``--dsn``); ``tcp_dsn`` (``--tcp-dsn``) says how to reach it over
    TCP, else the DSN's own host when it is not a socket directory."""
    server = Server(admin_dsn=admin_dsn, kind="--dsn")
    params = pg_conninfo.conninfo_to_dict(tcp_dsn or admin_dsn)
    host = params.get("host") or ""
    if host and not host.startswith("/"):
        return BenchServer(server, (host, int(params.get("port") or 5432)))
    return BenchServer(server, None)
