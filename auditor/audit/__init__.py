"""One audit: connect, detect, resolve the scope, run the checks in one snapshot."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TypeVar

import psycopg

from auditor.audit.listing import EVERYTHING, Listing
from auditor.audit.runner import PendingFindings, Scope, resolve_scope, run_checks, select_checks, stream_checks
from auditor.audit.split import Run, clock_lag, two_backends
from auditor.audit.spools import Spooled
from auditor.audit.streamed import Shape, StreamedFinding
from auditor.core.catalogue import Check
from auditor.core.connection import snapshot_session
from auditor.core.detect import Generation
from auditor.core.errors import AuditFailed
from auditor.core.findings import Counted, Finding
from auditor.core.session import read_session
from auditor.core.settings import Selection, Settings

T = TypeVar("T")


@dataclass
class Audit:
    """An open audit: the snapshot's connection, what the database is, what will run."""

    conn: psycopg.Connection
    generation: Generation
    scope: Scope
    checks: list[Check]
    selection: Selection
    settings: Settings
    #: Pretend the server is this version (e.g. 150000 forces the pre-16 client-side paths).
    server_version: int | None = None
    #: The id of the transaction's exported snapshot: a second backend may share it (:meth:`streamed`).
    snapshot: str | None = None
    #: The findings streams handed out, closed when the audit ends (:meth:`close`).
    streams: list[Iterator[object]] = field(default_factory=list, init=False, repr=False)

    def _tracked(self, stream: Iterator[T]) -> Iterator[T]:
        self.streams.append(stream)
        return stream

    def close(self) -> None:
        """Close the findings streams handed out, newest first: one a consumer left suspended (its
        write failed mid-stream) cancels its statement and lets go of the connection, whose rollback
        would otherwise wait for it for ever.  A stream read to its end closes as a no-op."""
        for stream in reversed(self.streams):
            close = getattr(stream, "close", None)
            if close is not None:
                with suppress(psycopg.Error):  # the connection may be gone: the caller's error says why
                    close()
        self.streams.clear()

    def findings(self, checks: list[Check] | None = None, scope: Scope | None = None, *,
                 listing: Listing = EVERYTHING, hidden: list[Counted] | None = None) -> Iterator[Finding]:
        """Stream the findings, most severe first, grouped by app (of ``checks`` in ``scope``: by
        default the audit's own; the same snapshot, clock and severity overrides either way).
        Those ``listing`` does not list are counted by the server into ``hidden`` instead."""
        return self._tracked(run_checks(
            self.conn, self.generation, self.checks if checks is None else checks,
            self.scope if scope is None else scope,
            grace_seconds=self.settings.grace_seconds, skew_seconds=self.settings.skew_seconds,
            severity_overrides=self.selection.severity_overrides, server_version=self.server_version,
            listing=listing, hidden=hidden,
        ))

    def pending_findings(self, *, listing: Listing = EVERYTHING,
                         hidden: list[Counted] | None = None) -> PendingFindings:
        """The audit's findings as :meth:`findings` yields them, their statement sent when asked
        (:class:`~auditor.audit.runner.PendingFindings`: in a pipeline with other statements)."""
        return PendingFindings(
            self.conn, self.generation, self.checks, self.scope,
            grace_seconds=self.settings.grace_seconds, skew_seconds=self.settings.skew_seconds,
            severity_overrides=self.selection.severity_overrides, server_version=self.server_version,
            listing=listing, hidden=hidden,
        )

    def streamed(self, shape: Shape, *, listing: Listing = EVERYTHING, hidden: list[Counted] | None = None,
                 lines: list[Spooled] | None = None) -> Iterator[StreamedFinding]:
        """Stream the findings rendered by the server in ``shape``, by check, app and object, not by
        severity (:func:`~auditor.audit.runner.check_order`; see :mod:`auditor.audit.streamed`); those ``listing`` does not list are counted into ``hidden``.
        The JSON lines of a whole database with its info findings listed are computed by two
        backends on the audit's snapshot where a second connection can join it (:mod:`auditor.audit.split`);
        with ``lines``, the second backend's are not yielded but spooled by its thread into ``lines``."""
        sink: list[Counted] = [] if hidden is None else hidden
        run = self._run(self.conn, shape, listing, hidden is not None)
        if self.snapshot is None or shape != "json" or not self.scope.everything or not listing.lists("info"):
            return self._tracked(run(self.checks, sink))
        return self._tracked(two_backends(self.checks, run, sink, lambda: self._second(shape, listing, hidden is not None),
                                          lines))

    def _run(self, conn: psycopg.Connection, shape: Shape, listing: Listing, counting: bool,
             lag: float = 0.0) -> Run:
        """:func:`~auditor.audit.runner.stream_checks` of the checks given on ``conn``, whose clock runs
        ``lag`` seconds after the audit's (:func:`~auditor.audit.split.clock_lag`)."""
        def run(checks: list[Check], found: list[Counted]) -> Iterator[StreamedFinding]:
            return stream_checks(
                conn, self.generation, checks, self.scope, shape,
                grace_seconds=self.settings.grace_seconds + lag, skew_seconds=self.settings.skew_seconds - lag,
                severity_overrides=self.selection.severity_overrides, server_version=self.server_version,
                listing=listing, hidden=found if counting else None,
            )
        return run

    @contextmanager
    def _second(self, shape: Shape, listing: Listing, counting: bool) -> Iterator[tuple[psycopg.Connection, Run]]:
        """A second connection in the audit's snapshot (:func:`auditor.core.connection.snapshot_session`),
        with the findings it streams on the audit's clock."""
        with self.snapshot_connection() as conn:
            yield conn, self._run(conn, shape, listing, counting, clock_lag(self.conn, conn))

    @contextmanager
    def snapshot_connection(self) -> Iterator[psycopg.Connection]:
        """A second connection in the audit's snapshot (:func:`auditor.core.connection.snapshot_session`):
        it reads exactly what the audit's connection reads (its clock, ``now()``, is its own)."""
        assert self.snapshot is not None
        with snapshot_session(self.settings.target, self.snapshot, statement_timeout=self.settings.statement_timeout,
                              lock_timeout=self.settings.lock_timeout) as conn:
            yield conn


@contextmanager
def open_audit(settings: Settings, *, apps: Iterable[str] | None = None, selection: Selection | None = None,
               server_version: int | None = None, shared: bool = False) -> Iterator[Audit]:
    """Open the read-only snapshot of the settings' target, detect the generation and choose the
    checks: ``apps`` (default: the settings' scope) and ``selection`` (default: the settings').  The
    findings streams it hands out are closed before the snapshot ends (:meth:`Audit.close`).
    ``shared``: export the snapshot (where the server does) so that a second backend may share the work
    (:meth:`Audit.streamed`); everything the audit reads, on either connection, is then this one snapshot."""
    chosen = settings.selection if selection is None else selection
    exported: list[str] | None = [] if shared else None
    with read_session(settings, exported=exported) as (conn, generation):
        try:
            scope = resolve_scope(conn, settings.scope if apps is None else apps, settings.allowed_apps)
        except psycopg.errors.QueryCanceled:
            raise AuditFailed("statement_timeout reached while detecting the schema", kind="timeout") from None
        checks = select_checks(generation, chosen, scope)
        audit = Audit(conn, generation, scope, checks, chosen, settings, server_version, exported[0] if exported else None)
        try:
            yield audit
        finally:
            audit.close()
