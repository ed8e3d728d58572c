"""One audit's statement split across two backends that share one snapshot (as ``pg_dump -j`` does).

``check --format json --min-severity info`` of a whole database is bound by the server's CPU: one
backend renders every finding while the machine's other cores wait.  Here the checks are cut in
two at :data:`SPLIT_AT` (catalogue order): the audit's own connection streams the first half to the
report as before, while a second connection, in a ``READ ONLY``, ``REPEATABLE READ`` transaction
that imported the first one's snapshot (``SET TRANSACTION SNAPSHOT``), runs the second half in a
thread.  When the first half ends the second one's follow: the same findings in the same order as
one statement gives (its union of checks runs them in catalogue order), read from exactly the same
data.  The thread keeps them in one of two ways: as the report's lines, per severity, with their
counts (:class:`~auditor.audit.spools.Spooled`: the JSON report copies them after the first half's
by the kernel, and the main thread never touches them), or, where every finding must pass the main
thread in order (a baseline judges them), pickled to a temporary file and read back.

Where the second connection cannot be had (no snapshot exported, no connection left, the import
refused), the audit runs as one statement on its own connection, with the same output.  An error of
either half ends the run as an error of the one statement would: the other is cancelled and the
second connection closed before the error goes on.
"""

from __future__ import annotations

import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from functools import partial
from typing import Any, TypeVar

import psycopg

from auditor.audit.spools import SeveritySpools, Spooled
from auditor.audit.streamed import StreamedFinding
from auditor.core.catalogue import Check
from auditor.core.errors import AuditorError
from auditor.core.findings import Counted

#: The first check the second backend runs: the two halves then cost the server about the same with
#: every info finding listed (the shared checks' listings are most of them; docs/benchmark.md, 16aa).
SPLIT_AT = "shared-build"

T = TypeVar("T")

#: Findings pickled to the spool at a time (or spooled as lines between two looks at a stop).
_BATCH = 2000
#: How long a stop waits for the thread before it cancels the second statement again.
_JOIN_SECONDS = 0.2

#: The findings of ``checks`` on one connection, the counted ones appended to the list given.
Run = Callable[[list[Check], list[Counted]], Iterator[StreamedFinding]]
#: One half's findings, its counted ones appended to the list given.
Job = Callable[[list[Counted]], Iterator[StreamedFinding]]
#: Opens the second connection and gives it with its :data:`Run`.
Second = Callable[[], AbstractContextManager[tuple[psycopg.Connection, Run]]]


def halves(checks: list[Check]) -> tuple[list[Check], list[Check]] | None:
    """``checks`` cut before :data:`SPLIT_AT`, or None when that leaves a half empty."""
    ids = [c.id for c in checks]
    if SPLIT_AT not in ids or ids.index(SPLIT_AT) == 0:
        return None
    cut = ids.index(SPLIT_AT)
    return checks[:cut], checks[cut:]


def two_backends(checks: list[Check], run: Run, hidden: list[Counted], second: Second,
                 lines: list[Spooled] | None = None) -> Iterator[StreamedFinding]:
    """The findings of ``checks`` as ``run`` yields them, computed by two backends when ``second()``
    opens a connection in the snapshot of ``run``'s and the checks can be cut (:func:`halves`).
    With ``lines`` the second half's findings are not yielded: its thread spools their report lines
    itself, handed over in ``lines`` (:class:`~auditor.audit.spools.Spooled`) when the first half ends."""
    cut = halves(checks)
    with ExitStack() as stack:
        other = _opened(stack, second) if cut is not None else None
        if cut is None or other is None:
            yield from run(checks, hidden)
            return
        conn, run_other = other
        job: Job = partial(run_other, cut[1])
        half = _Pickled(conn, job) if lines is None else _Lines(conn, job, lines)
        stack.enter_context(half)
        with _closing(run(cut[0], hidden)) as first:
            for finding in first:
                half.check()
                yield finding
        half.join(hidden)
        yield from half.rest()


@contextmanager
def _closing(items: Iterator[T]) -> Iterator[Iterator[T]]:
    """``items``, closed at the end of the block (a generator left suspended cancels its statement)."""
    try:
        yield items
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()


def _opened(stack: ExitStack, second: Callable[[], AbstractContextManager[T]]) -> T | None:
    """The second connection, closed with ``stack``; None (nothing to close) when it cannot be had."""
    try:
        return stack.enter_context(second())
    except (AuditorError, psycopg.Error):
        return None


def opening(stack: ExitStack, second: Callable[[], AbstractContextManager[T]]) -> Callable[[], T | None]:
    """Open ``second()`` (a second connection in the audit's snapshot) in a thread while the caller
    goes on; the function returned waits for it and gives it, or None when it cannot be had
    (:func:`_opened`).  Whatever the thread opened is closed with ``stack``, after the thread ended."""
    own = ExitStack()
    got: list[T | None] = [None]
    failed: list[BaseException] = []

    def open_it() -> None:
        try:
            got[0] = _opened(own, second)
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread (result)
            failed.append(exc)

    thread = threading.Thread(target=open_it, name="controller-audit-second", daemon=True)

    def closed() -> None:
        thread.join()
        own.close()

    stack.callback(closed)
    thread.start()

    def result() -> T | None:
        thread.join()
        if failed:
            raise failed[0]
        return got[0]
    return result


class _Spool(ABC):
    """A thread reading one half's findings on its own connection (what it keeps of them: the subclass's)."""

    def __init__(self, conn: psycopg.Connection, run: Job) -> None:
        self.conn = conn
        self.hidden: list[Counted] = []
        self.error: Exception | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(run,), name="controller-audit-second", daemon=True)

    def __enter__(self) -> _Spool:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.close()

    def _read(self, run: Job) -> None:
        """The thread: every finding of the half kept (:meth:`_keep`)."""
        try:
            with _closing(run(self.hidden)) as findings:
                self._keep(findings)
        except Exception as exc:  # noqa: BLE001 - handed to the main thread (it raises it, or has stopped us)
            self.error = exc

    @abstractmethod
    def _keep(self, findings: Iterator[StreamedFinding]) -> None:
        """In the thread: keep each of the half's findings."""

    @abstractmethod
    def rest(self) -> Iterator[StreamedFinding]:
        """What the half gives once :meth:`join` has returned."""

    def _stopped(self) -> None:
        """End the thread (between batches) once the main thread has stopped the half."""
        if self.stopping.is_set():
            raise _Stopped

    @abstractmethod
    def close(self) -> None:
        """Remove what the thread kept."""

    def check(self) -> None:
        """Raise the half's error, if it has failed (the run ends as soon as either half does)."""
        if self.error is not None:
            raise self.error

    def join(self, hidden: list[Counted]) -> None:
        """Wait for the half to end; raise its error, else append its counted findings to ``hidden``."""
        while self.thread.is_alive():
            self.thread.join(_JOIN_SECONDS)
        self.check()
        hidden.extend(self.hidden)

    def stop(self) -> None:
        """Stop the thread: its statement cancelled (again until it has ended), then joined."""
        self.stopping.set()
        while self.thread.is_alive():
            try:
                self.conn.cancel_safe()
            except psycopg.Error:
                pass  # the connection is gone: the thread ends on its own error
            self.thread.join(_JOIN_SECONDS)


class _Pickled(_Spool):
    """The half's findings pickled to a temporary file, read back after the first half
    (with a baseline, every finding passes the main thread's judgement in order)."""

    def __init__(self, conn: psycopg.Connection, run: Job) -> None:
        super().__init__(conn, run)
        self.file = tempfile.TemporaryFile("w+b")

    def _keep(self, findings: Iterator[StreamedFinding]) -> None:
        batch: list[tuple[Any, ...]] = []
        for f in findings:
            batch.append((f.check, f.severity, f.app_name, f.key, f.line))
            if len(batch) >= _BATCH:
                self._dump(batch)
        self._dump(batch)

    def _dump(self, batch: list[tuple[Any, ...]]) -> None:
        self._stopped()
        if batch:
            import pickle  # a baseline's second half alone spools to a file: not at every start

            pickle.dump(batch, self.file, pickle.HIGHEST_PROTOCOL)
            batch.clear()

    def close(self) -> None:
        self.file.close()

    def rest(self) -> Iterator[StreamedFinding]:
        """The spooled findings."""
        import pickle

        self.file.seek(0)
        while True:
            try:
                batch = pickle.load(self.file)
            except EOFError:
                return
            for row in batch:
                yield StreamedFinding(*row)


class _Lines(_Spool):
    """The half's findings written by the thread as the report's lines, per severity, and counted:
    the main thread neither reads nor writes them again (the report copies the spools by the kernel)."""

    def __init__(self, conn: psycopg.Connection, run: Job, lines: list[Spooled]) -> None:
        super().__init__(conn, run)
        self.lines = lines
        self.spooled: Spooled | None = Spooled(SeveritySpools())

    def _keep(self, findings: Iterator[StreamedFinding]) -> None:
        assert self.spooled is not None
        spools, counts = self.spooled.spools, self.spooled.counts
        for n, f in enumerate(findings, 1):
            spools.add(f.severity, f.json_text())
            counts[(f.check, f.severity, f.app_name)] += 1
            if not n % _BATCH:
                self._stopped()
        self._stopped()
        spools.flush()

    def rest(self) -> Iterator[StreamedFinding]:
        """No finding: the spooled lines are appended to the list given (theirs to close who reads it)."""
        assert self.spooled is not None
        self.lines.append(self.spooled)
        self.spooled = None
        return iter(())

    def close(self) -> None:
        if self.spooled is not None:
            self.spooled.spools.close()


class _Stopped(Exception):
    """The main thread stopped the half."""


def clock_lag(first: psycopg.Connection, second: psycopg.Connection) -> float:
    """How many seconds ``second``'s transaction clock (``now()``) runs after ``first``'s.  The checks'
    in-flight and future windows are relative to ``now()``: the second half widens its grace and
    narrows its skew by this much, so that both halves draw the same lines (one snapshot, one clock)."""
    row = first.execute("SELECT now()").fetchone()
    assert row is not None
    lag = second.execute("SELECT extract(epoch FROM now() - %s::timestamptz)", (row[0],)).fetchone()
    assert lag is not None
    return float(lag[0])
