"""The audit's snapshot runs with the session settings its statement is planned for."""

from __future__ import annotations

from auditor.audit import open_audit
from auditor.core.settings import Settings


def test_the_audit_plans_without_jit_and_for_every_row(hephy_db):
    """No JIT: where the server has it (PostgreSQL 11 and later built with LLVM, as Debian's packages
    are), the audit statement's cost estimate compiled its ~1,150 lines, seconds for a statement of
    milliseconds (docs/benchmark.md, issue 16m).  The setting exists on every server the suite runs
    (11 and later) whether or not LLVM is installed, and stays set for the whole snapshot."""
    with open_audit(Settings(dsn=hephy_db.dsn)) as run:
        assert run.conn.execute("SHOW jit").fetchone() == ("off",)
        assert run.conn.execute("SHOW cursor_tuple_fraction").fetchone() == ("1",)
        assert run.conn.execute("SHOW work_mem").fetchone() == ("64MB",)
    # outside the audit's transaction the server's own setting is back
    with hephy_db.conn.cursor() as cur:
        assert cur.execute("SHOW jit").fetchone() == ("on",)
