"""One audit: connect, detect, resolve the scope, run the checks in one snapshot."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from auditor.audit.runner import (
    DEFAULT_GRACE_SECONDS,
    DEFAULT_SKEW_SECONDS,
    Scope,
    Selection,
    resolve_scope,
    run_checks,
    select_checks,
)
from auditor.audit.streamed import Shape, StreamedFinding
from auditor.core.catalogue import Check
from auditor.core.connection import DEFAULT_LOCK_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT, Target, audit_session
from auditor.core.detect import Generation, detect
from auditor.core.errors import AuditFailed
from auditor.core.findings import Finding


@dataclass
class Audit:
    """An open audit: the snapshot's connection, what the database is, what will run."""

    conn: psycopg.Connection
    generation: Generation
    scope: Scope
    checks: list[Check]
    grace_seconds: float
    selection: Selection
    #: Pretend the server is this version (e.g. 150000 forces the pre-16 client-side paths).
    server_version: int | None = None
    #: Rows created up to this long after now() are in flight, later ones future-dated.
    skew_seconds: float = DEFAULT_SKEW_SECONDS

    def findings(self) -> Iterator[Finding]:
        """Stream the findings, most severe first, grouped by app."""
        return run_checks(
            self.conn, self.generation, self.checks, self.scope,
            grace_seconds=self.grace_seconds, skew_seconds=self.skew_seconds,
            severity_overrides=self.selection.severity_overrides, server_version=self.server_version,
        )

    def streamed(self, shape: Shape) -> Iterator[Finding | StreamedFinding]:
        """Stream the findings rendered by the server in ``shape``, unordered (see
        :mod:`auditor.audit.streamed`; :class:`Finding` where a check filters rows client-side)."""
        return run_checks(
            self.conn, self.generation, self.checks, self.scope,
            grace_seconds=self.grace_seconds, skew_seconds=self.skew_seconds,
            severity_overrides=self.selection.severity_overrides,
            server_version=self.server_version, shape=shape, ordered=False,
        )


@contextmanager
def open_audit(
    target: Target,
    *,
    apps: Iterable[str] = (),
    selection: Selection | None = None,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    statement_timeout: str = DEFAULT_STATEMENT_TIMEOUT,
    lock_timeout: str = DEFAULT_LOCK_TIMEOUT,
    server_version: int | None = None,
    skew_seconds: float = DEFAULT_SKEW_SECONDS,
) -> Iterator[Audit]:
    """Open the read-only snapshot, detect the generation and choose the checks."""
    selection = selection or Selection()
    with audit_session(target, statement_timeout=statement_timeout, lock_timeout=lock_timeout) as conn:
        try:
            generation = detect(conn)
            scope = resolve_scope(conn, apps)
        except psycopg.errors.QueryCanceled:
            raise AuditFailed("statement_timeout reached while detecting the schema", kind="timeout") from None
        checks = select_checks(generation, selection, scope)
        yield Audit(conn, generation, scope, checks, grace_seconds, selection, server_version, skew_seconds)
