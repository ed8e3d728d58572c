"""The audit's snapshot runs with the session settings its statement is planned for."""

from __future__ import annotations

from auditor.audit import open_audit
from auditor.core.connection import snapshot_session
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


def test_both_backends_read_every_table_from_its_first_page(hephy_db):
    """No synchronized scans on either connection of the audit: with them, a table larger than a
    quarter of ``shared_buffers`` is read from where another scan of it left off (the other backend's,
    another session's, one stopped early), and the order of the lines of a check that follows a scan
    changed from run to run at 1M releases (main's own reports differed in their orphan-build lines)."""
    assert hephy_db.scalar("SHOW synchronize_seqscans") == "on"  # the server's default
    with open_audit(Settings(dsn=hephy_db.dsn), shared=True) as run:
        assert run.snapshot is not None
        assert run.conn.execute("SHOW synchronize_seqscans").fetchone() == ("off",)
        settings = run.settings
        with snapshot_session(settings.target, run.snapshot, statement_timeout=settings.statement_timeout,
                              lock_timeout=settings.lock_timeout) as second:
            assert second.execute("SHOW synchronize_seqscans").fetchone() == ("off",)
    with hephy_db.conn.cursor() as cur:
        assert cur.execute("SHOW synchronize_seqscans").fetchone() == ("on",)
