"""Small helpers shared by the tests."""

from __future__ import annotations

from collections.abc import Iterable

from auditor.audit import open_audit
from auditor.connection import resolve_target
from auditor.findings import Finding
from auditor.runner import Selection


def audit(db, checks: Iterable[str] = (), apps: Iterable[str] = (), grace_seconds: float = 300,
          server_version: int | None = None, dsn: str | None = None) -> list[Finding]:
    """Run the audit against ``db`` (or ``dsn``) and return every finding.

    ``server_version=150000`` forces the pre-PostgreSQL-16 paths on a newer test server.
    """
    selection = Selection(include=tuple(checks))
    with open_audit(resolve_target(dsn or db.dsn), apps=apps, selection=selection, grace_seconds=grace_seconds,
                    server_version=server_version) as run:
        return list(run.findings())


def by_check(findings: list[Finding], check: str) -> list[Finding]:
    """The findings of one check."""
    return [f for f in findings if f.check == check]
