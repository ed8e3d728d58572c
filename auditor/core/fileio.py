"""Every file the tool writes (reports, plans, scripts, baselines, undo files, Prometheus
textfiles) goes through :func:`atomic_open` / :func:`atomic_write`, which decide by what the
path names:

* a regular file, or a path that does not exist yet: a temporary file beside it, fsync,
  rename over it, fsync of the directory, so no reader ever sees a truncated file;
* a symbolic link: the link is followed and its target replaced that way (the link stays);
* a FIFO or a character device (``/dev/null``, a terminal), ``-`` (standard output) or a
  name of one of this process's open descriptors (``/dev/stdout``, ``/dev/stderr``,
  ``/dev/fd/N``, ``/proc/self/fd/N``: the descriptor itself is written, so a shell's ``>>``
  still appends): written through, streamed, never replaced or removed;
* a directory, a socket, a block device or anything else: refused with one line
  (:class:`~auditor.core.errors.BadInput`, kind ``bad output``) before anything is written;
* a plan or an undo file (the tool's sealed documents): refused the same way, unless the writer
  replaces that kind of file (``plan -o`` a plan): an undo file is the only way back of a repair.

A replaced file never gets wider permissions than the file it replaces had.
"""

from __future__ import annotations

import mmap
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from auditor.core.errors import BadInput

#: The path that means standard output.
STDOUT = "-"
#: Mode of files that may hold data values (config excerpts, pre-images): owner only.
PRIVATE = 0o600
#: Mode of files meant for other readers (a Prometheus textfile read by node_exporter).
SHARED = 0o644
#: Paths that name an open file descriptor of this process: that descriptor is written.
_DESCRIPTOR_PATH = re.compile(r"^/(?:dev/(?:stdout|stderr|fd/\d+)|proc/self/fd/\d+)$")
#: How a sealed document (a plan, an undo file) ends, also when reformatted: its checksum member.
_SEALED_END = re.compile(rb'"checksum"\s*:\s*"sha256:[0-9a-f]{64}"\s*\}\s*\Z')
#: Its ``format`` member (``controller-audit-plan``, ``controller-audit-undo``).
_SEALED_FORMAT = re.compile(rb'"format"\s*:\s*"(controller-audit-[a-z]+)"')


@dataclass(frozen=True)
class Output:
    """How a path is written: ``replace`` (atomically, at ``path``), ``stream`` (a FIFO or
    device, opened), ``descriptor`` (one this process has open) or ``stdout``."""

    how: Literal["replace", "stream", "descriptor", "stdout"]
    path: Path
    mode: int | None = None  # the mode of the file being replaced, if it exists
    descriptor: int | None = None

    @property
    def streamed(self) -> bool:
        return self.how != "replace"


def _refused(path: str, problem: str) -> BadInput:
    return BadInput(f"{path} {problem}; give a file path, - for standard output, or a FIFO or device",
                    kind="bad output")


def _kind(st_mode: int) -> str:
    if stat.S_ISDIR(st_mode):
        return "is a directory"
    if stat.S_ISSOCK(st_mode):
        return "is a socket"
    if stat.S_ISBLK(st_mode):
        return "is a block device (a disk), which is never written"
    return "is not a regular file"


def resolve_output(path: str | os.PathLike[str]) -> Output:
    """What writing ``path`` will do, or :class:`BadInput` (kind ``bad output``) if it must not."""
    name = os.fspath(path)
    if name == STDOUT:
        return Output("stdout", Path(STDOUT))
    if not name:  # `-o ""`, `-o "$UNSET"`: it would name the working directory's parent entry
        raise BadInput("the path is empty; give a file path, - for standard output, or a FIFO or device",
                       kind="bad output")
    if _DESCRIPTOR_PATH.match(name):
        number = {"/dev/stdout": 1, "/dev/stderr": 2}.get(name) or int(name.rsplit("/", 1)[1])
        try:
            os.fstat(number)
        except OSError:
            raise _refused(name, "names a descriptor this process does not have open") from None
        return Output("descriptor", Path(name), descriptor=number)
    try:
        st = os.stat(name)  # follows symbolic links
    except FileNotFoundError:
        real = Path(os.path.realpath(name))  # a missing file, or a link to one: create it
        if not real.parent.is_dir():
            raise _refused(name, f"cannot be created: directory {real.parent} does not exist") from None
        return Output("replace", real)
    except OSError as exc:
        raise _refused(name, f"cannot be used ({exc.strerror})") from None
    if stat.S_ISREG(st.st_mode):
        return Output("replace", Path(os.path.realpath(name)), stat.S_IMODE(st.st_mode))
    if stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode):
        return Output("stream", Path(name))
    raise _refused(name, _kind(st.st_mode))


def sealed_format(path: Path) -> str | None:
    """The ``format`` of the plan or undo file at ``path``, or None for any other file (read: its
    last bytes, and only when they are a sealed document's, its ``format`` member)."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - 200))
            if not _SEALED_END.search(handle.read()):
                return None
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
                at = view.find(b'"format"')
                while at != -1:
                    found = _SEALED_FORMAT.match(view[at:at + 80])
                    if found:
                        return found.group(1).decode()
                    at = view.find(b'"format"', at + 1)
    except (OSError, ValueError):
        return None
    return None


def _keep_sealed(name: str, out: Output, replaces: str | None) -> None:
    """Refuse to replace a plan or undo file with anything but a document of its own format."""
    if out.how != "replace" or out.mode is None:
        return
    found = sealed_format(out.path)
    if found is None or found == replaces:
        return
    if found.endswith("-undo"):
        problem = "is an undo file (the record apply keeps to take its repair back), which is never replaced"
    else:
        problem = "is a plan file, which only plan -o replaces"
    raise BadInput(f"{name} {problem}; nothing was written: give another path", kind="bad output")


def check_output(path: str | os.PathLike[str], replaces: str | None = None) -> Output:
    """Refuse a bad output path early (before an audit or a repair starts); ``replaces``: the
    format of sealed file the writer may replace (``controller-audit-plan`` for ``plan -o``)."""
    out = resolve_output(path)
    _keep_sealed(os.fspath(path), out, replaces)
    return out


def is_stdout(path: str | os.PathLike[str] | None) -> bool:
    """Whether ``path`` is ``-`` (so messages about it belong on stderr)."""
    return path is not None and os.fspath(path) == STDOUT


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
def _stdout(binary: bool) -> Iterator[IO[Any]]:
    sys.stdout.flush()
    stream: IO[Any] = sys.stdout.buffer if binary else sys.stdout
    yield stream
    stream.flush()


@contextmanager
def _descriptor(number: int, binary: bool) -> Iterator[IO[Any]]:
    """Write through a copy of descriptor ``number`` (its offset and O_APPEND are shared)."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.dup(number)
    opened = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")
    with opened as handle:
        yield handle


@contextmanager
def _stream(path: Path, binary: bool) -> Iterator[IO[Any]]:
    """Write through to a FIFO or device: no O_CREAT, no O_TRUNC, and checked once open."""
    fd = os.open(path, os.O_WRONLY | getattr(os, "O_NOCTTY", 0))
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
        os.close(fd)
        raise _refused(str(path), "changed while it was being opened")
    opened = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")
    with opened as handle:
        yield handle


@contextmanager
def _replace(target: Path, mode: int, binary: bool) -> Iterator[IO[Any]]:
    """Same-directory temp file, fsync, rename, fsync of the directory."""
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


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: int = SHARED, binary: bool = False,
                replaces: str | None = None) -> Iterator[IO[Any]]:
    """A stream to ``path``, written as the module docstring says (``replaces``: see :func:`check_output`).

    A regular file is replaced only when the block ends without error; on any error (or a
    kill) the old file stays and the temp file is removed (or, after a kill, left under a
    name no reader takes for the target).  ``mode`` is the new file's permission bits,
    narrowed to those of the file it replaces.  For output too large to hold in memory.
    """
    out = check_output(path, replaces)
    if out.how == "stdout":
        with _stdout(binary) as handle:
            yield handle
    elif out.how == "stream":
        with _stream(out.path, binary) as handle:
            yield handle
    elif out.how == "descriptor":
        assert out.descriptor is not None
        with _descriptor(out.descriptor, binary) as handle:
            yield handle
    else:
        effective = mode if out.mode is None else mode & out.mode
        with _replace(out.path, effective, binary) as handle:
            yield handle


def atomic_write(path: str | os.PathLike[str], data: str | bytes, mode: int = SHARED,
                 replaces: str | None = None) -> None:
    """Write ``data`` to ``path``: the one-shot form of :func:`atomic_open`."""
    payload = data.encode() if isinstance(data, str) else data
    with atomic_open(path, mode, binary=True, replaces=replaces) as handle:
        handle.write(payload)


def discard_output(path: str | os.PathLike[str]) -> None:
    """Take back a file written to ``path``: remove it if it is a regular file (a symbolic
    link's target, not the link); a FIFO, a device or standard output is left alone."""
    try:
        out = resolve_output(path)
    except BadInput:
        return
    if out.how == "replace":
        out.path.unlink(missing_ok=True)


def read_existing(path: str | os.PathLike[str]) -> str | None:
    """The text of the regular file ``path`` names (through a link), or None (missing, a FIFO,
    a device, standard output, unreadable): reading a FIFO would take another writer's data."""
    try:
        out = resolve_output(path)
    except BadInput:
        return None
    if out.how != "replace" or out.mode is None:
        return None
    try:
        return out.path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
