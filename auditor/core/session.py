"""The read-only snapshot every command that reads a database opens, from the settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from auditor.core.connection import audit_session
from auditor.core.detect import Generation, detect
from auditor.core.errors import AuditFailed
from auditor.core.messages import missing_grant
from auditor.core.settings import Settings


@contextmanager
def read_session(settings: Settings, *,
                 exported: list[str] | None = None) -> Iterator[tuple[psycopg.Connection, Generation]]:
    """One ``READ ONLY``, ``REPEATABLE READ`` transaction on the settings' target with its timeouts,
    the schema generation detected and the database announced (:meth:`Settings.announce_database`);
    a missing privilege is one line naming the GRANT.  With ``exported``: the snapshot's id appended
    to it where the server exports one (:func:`auditor.core.connection.audit_session`)."""
    with audit_session(settings.target, statement_timeout=settings.statement_timeout,
                       lock_timeout=settings.lock_timeout, exported=exported) as conn:
        try:
            try:
                generation = detect(conn)
            except psycopg.errors.QueryCanceled:
                raise AuditFailed("statement_timeout reached while detecting the schema", kind="timeout") from None
            settings.announce_database(conn, generation.label)
            yield conn, generation
        except psycopg.errors.InsufficientPrivilege as exc:
            raise AuditFailed(missing_grant(exc, conn.info.user), kind="permission denied") from None
