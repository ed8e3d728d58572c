"""The changes ``apply`` and ``undo`` send: only those that can change a row of the actions they hold."""

from __future__ import annotations

from tests.repairs.helpers import make_plan, run, story

#: Statement-level triggers noting each statement that writes a repaired table (a statement with no
#: row to change still fires them): what the transaction sent, seen by the server itself.
_NOTE_STATEMENTS = """
CREATE TABLE sent (op text NOT NULL, tbl text NOT NULL);
CREATE FUNCTION note_sent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO sent VALUES (TG_OP, TG_TABLE_NAME); RETURN NULL; END $$;
""" + "".join(
    f"CREATE TRIGGER note_sent AFTER INSERT OR UPDATE OR DELETE ON {table} FOR EACH STATEMENT "
    "EXECUTE PROCEDURE note_sent();\n" for table in ("api_config", "api_build", "api_release"))


def _sent(db) -> list[tuple[str, str]]:
    """The statements noted so far, sorted; the note is emptied."""
    noted = sorted(db.conn.execute("SELECT op, tbl FROM sent").fetchall())
    db.conn.execute("DELETE FROM sent")
    return noted


def test_apply_sends_only_the_changes_its_actions_make(hephy_db, tmp_path):
    """An unshare copies and repoints: no re-dating UPDATE, pruning DELETE or re-inserting INSERT is
    sent with nothing to change (each read the whole plan table: ~0.3 s of a 250k unshare), and no
    query of re-dated or pruned rows for the undo file.  An undo of it deletes the copies and
    repoints, nothing else; a prune still deletes."""
    story(hephy_db.controller())
    make_plan(hephy_db, tmp_path / "u.json", "--repair", "unshare")
    hephy_db.conn.execute(_NOTE_STATEMENTS)

    applied = run("apply", str(tmp_path / "u.json"), "--dsn", hephy_db.dsn, "--yes")
    assert applied.exit_code == 0, applied.output
    assert _sent(hephy_db) == [("INSERT", "api_build"), ("INSERT", "api_config"), ("UPDATE", "api_release")]

    undone = run("undo", str(tmp_path / "u.json.undo.json"), "--dsn", hephy_db.dsn, "--yes")
    assert undone.exit_code == 0, undone.output
    assert _sent(hephy_db) == [("DELETE", "api_build"), ("DELETE", "api_config"), ("UPDATE", "api_release")]

    make_plan(hephy_db, tmp_path / "p.json", "--repair", "prune-orphans")
    applied = run("apply", str(tmp_path / "p.json"), "--dsn", hephy_db.dsn, "--yes")
    assert applied.exit_code == 0, applied.output
    assert _sent(hephy_db) == [("DELETE", "api_build"), ("DELETE", "api_config")]
