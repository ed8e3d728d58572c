"""Writing files so that no reader ever sees a truncated one: temp file, fsync, rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (best effort where directories can't be opened)."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: int = 0o644, binary: bool = False) -> Iterator[IO[Any]]:
    """A stream that replaces ``path`` atomically when the block ends without error.

    Same-directory temp file, fsync, rename, fsync of the directory; on any error (or a kill)
    the old file stays and the temp file is removed (or, after a kill, left under a name no
    reader takes for the target). For output too large to hold in memory.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        opened = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")
        with opened as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def atomic_write(path: str | os.PathLike[str], data: str | bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically: the one-shot form of :func:`atomic_open`."""
    payload = data.encode() if isinstance(data, str) else data
    with atomic_open(path, mode, binary=True) as handle:
        handle.write(payload)
