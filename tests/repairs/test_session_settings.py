"""The settings a repair transaction's statements run with (``apply`` and ``undo``)."""

from __future__ import annotations

from tests.repairs.helpers import make_plan, run, story

#: A statement-level trigger noting the ``jit`` setting of the transaction that changes api_release:
#: what the apply's own statements run with, read inside its transaction by the server itself.
_NOTE_JIT = """
CREATE TABLE jit_seen (seen text NOT NULL);
CREATE FUNCTION note_jit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO jit_seen VALUES (current_setting('jit')); RETURN NULL; END $$;
CREATE TRIGGER note_jit AFTER UPDATE ON api_release FOR EACH STATEMENT EXECUTE PROCEDURE note_jit();
"""


def test_apply_and_undo_change_rows_without_jit(hephy_db, tmp_path):
    """No JIT in the repair's transaction: where the server has it (PostgreSQL 11 and later built with
    LLVM, as Debian's packages are), the set-based statements over every planned row passed
    ``jit_above_cost`` and compiling them cost more than it won (the 250k unshare on Debian's
    PostgreSQL 15: docs/benchmark.md, issue 16s).  The server's own setting is left alone."""
    story(hephy_db.controller())
    make_plan(hephy_db, tmp_path / "p.json")
    hephy_db.conn.execute(_NOTE_JIT)
    assert hephy_db.scalar("SHOW jit") == "on"  # the suite's server has the setting, on by default

    applied = run("apply", str(tmp_path / "p.json"), "--dsn", hephy_db.dsn, "--yes")
    assert applied.exit_code == 0, applied.output
    undone = run("undo", str(tmp_path / "p.json.undo.json"), "--dsn", hephy_db.dsn, "--yes")
    assert undone.exit_code == 0, undone.output

    seen = [row[0] for row in hephy_db.conn.execute("SELECT seen FROM jit_seen")]
    assert seen and set(seen) == {"off"}, seen  # the apply's UPDATE and the undo's
    assert hephy_db.scalar("SHOW jit") == "on"
