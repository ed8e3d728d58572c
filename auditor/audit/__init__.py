"""One audit: connect, detect, resolve the scope, run the checks in one snapshot."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from auditor.audit.listing import EVERYTHING, Listing
from auditor.audit.runner import PendingFindings, Scope, resolve_scope, run_checks, select_checks, stream_checks
from auditor.audit.streamed import Shape, StreamedFinding
from auditor.core.catalogue import Check
from auditor.core.detect import Generation
from auditor.core.errors import AuditFailed
from auditor.core.findings import Counted, Finding
from auditor.core.session import read_session
from auditor.core.settings import Selection, Settings


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

    def findings(self, checks: list[Check] | None = None, scope: Scope | None = None, *,
                 listing: Listing = EVERYTHING, hidden: list[Counted] | None = None) -> Iterator[Finding]:
        """Stream the findings, most severe first, grouped by app (of ``checks`` in ``scope``: by
        default the audit's own; the same snapshot, clock and severity overrides either way).
        Those ``listing`` does not list are counted by the server into ``hidden`` instead."""
        return run_checks(
            self.conn, self.generation, self.checks if checks is None else checks,
            self.scope if scope is None else scope,
            grace_seconds=self.settings.grace_seconds, skew_seconds=self.settings.skew_seconds,
            severity_overrides=self.selection.severity_overrides, server_version=self.server_version,
            listing=listing, hidden=hidden,
        )

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

    def streamed(self, shape: Shape, *, listing: Listing = EVERYTHING,
                 hidden: list[Counted] | None = None) -> Iterator[StreamedFinding]:
        """Stream the findings rendered by the server in ``shape``, unordered (see
        :mod:`auditor.audit.streamed`); those ``listing`` does not list are counted into ``hidden``."""
        return stream_checks(
            self.conn, self.generation, self.checks, self.scope, shape,
            grace_seconds=self.settings.grace_seconds, skew_seconds=self.settings.skew_seconds,
            severity_overrides=self.selection.severity_overrides, server_version=self.server_version,
            listing=listing, hidden=hidden,
        )


@contextmanager
def open_audit(settings: Settings, *, apps: Iterable[str] | None = None, selection: Selection | None = None,
               server_version: int | None = None) -> Iterator[Audit]:
    """Open the read-only snapshot of the settings' target, detect the generation and choose the
    checks: ``apps`` (default: the settings' scope) and ``selection`` (default: the settings')."""
    chosen = settings.selection if selection is None else selection
    with read_session(settings) as (conn, generation):
        try:
            scope = resolve_scope(conn, settings.scope if apps is None else apps, settings.allowed_apps)
        except psycopg.errors.QueryCanceled:
            raise AuditFailed("statement_timeout reached while detecting the schema", kind="timeout") from None
        checks = select_checks(generation, chosen, scope)
        yield Audit(conn, generation, scope, checks, chosen, settings, server_version)
