"""A real hot standby of a test-bed cluster (pg_basebackup + streaming replication).

The standby uses the primary's own installation (``pg_basebackup`` and ``pg_ctl`` of the
same major) and runs as the same system user.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import conninfo

from auditor.testbed.server import PORT, SUPERUSER, Cluster, give_to_server_user, run_as_server_user


@contextmanager
def hot_standby(primary: Cluster) -> Iterator[str]:
    """Yield the admin DSN of a hot standby streaming from ``primary``."""
    base = Path(tempfile.mkdtemp(prefix="ca-standby-"))
    data = base / "data"
    give_to_server_user(base)
    try:
        run_as_server_user([primary.binary("pg_basebackup"), "-D", str(data), "-R", "-X", "stream",
                            "-h", str(primary.socket_dir), "-p", str(PORT), "-U", SUPERUSER])
        # -R writes every option of pg_basebackup's libpq into primary_conninfo, some of which the
        # server's own walreceiver may not know (sslcertmode): name the primary plainly instead.
        primary_conninfo = f"host={primary.socket_dir} port={PORT} user={SUPERUSER}"
        run_as_server_user([primary.binary("pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"),
                            "-o", f"-h '' -k {base} -p {PORT} -c \"primary_conninfo={primary_conninfo}\"",
                            "start"])
        dsn = conninfo.make_conninfo(host=str(base), port=PORT, user=SUPERUSER, dbname="postgres")
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
            run_as_server_user([primary.binary("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
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
