"""A real hot standby of the embedded test server (pg_basebackup + streaming replication)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import conninfo

from auditor.testbed.server import Server, server_binary


def _run_as_server_user(args: list[str]) -> None:
    kwargs: dict = {}
    if os.geteuid() == 0:
        kwargs["user"] = "embedded_postgres"
    subprocess.run(args, check=True, capture_output=True, timeout=60, **kwargs)


@contextmanager
def hot_standby(primary: Server) -> Iterator[str]:
    """Yield the admin DSN of a hot standby streaming from ``primary`` (embedded only)."""
    socket_dir = conninfo.conninfo_to_dict(primary.admin_dsn)["host"]
    base = Path(tempfile.mkdtemp(prefix="controller-audit-standby-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "embedded_postgres")
        shutil.chown(sock, "embedded_postgres")
    try:
        _run_as_server_user([server_binary("pg_basebackup"), "-D", str(data), "-R", "-X", "stream",
                             "-h", str(socket_dir), "-U", "postgres"])
        _run_as_server_user([server_binary("pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"),
                             "-o", f"-h '' -k {sock}", "start"])
        dsn = conninfo.make_conninfo(host=str(sock), user="postgres", dbname="postgres")
        for _ in range(100):
            try:
                with psycopg.connect(dsn) as conn:
                    if conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                        break
            except psycopg.OperationalError:
                time.sleep(0.1)
        yield dsn
    finally:
        if (data / "postmaster.pid").exists():
            _run_as_server_user([server_binary("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(base, ignore_errors=True)


def wait_for_replay(primary_dsn: str, standby_dsn: str, timeout: float = 20.0) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    with psycopg.connect(primary_dsn, autocommit=True) as conn:
        target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    deadline = time.monotonic() + timeout
    with psycopg.connect(standby_dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()[0]:
                return
            time.sleep(0.05)
    raise TimeoutError("standby did not catch up")
