"""Plan and undo file formats: compact rows, older versions."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from repairs import undofile
from repairs.sealed import checksum
from tests.repairs.helpers import (
    as_older_undo,
    boot,
    contents,
    copies_after,
    make_plan,
    run,
    story,
    without_updated,
)


def test_plan_stores_each_repeated_string_once(db, tmp_path):
    story(db.controller())
    plan = make_plan(db, tmp_path / "p.json")
    raw = json.loads((tmp_path / "p.json").read_text())["actions"]
    assert len(raw["rows"]) == len(plan["actions"]) > 5
    assert len(raw["ops"]) == len({(a["repair"], a["kind"], a["table"]) for a in plan["actions"]})
    assert len(raw["whys"]) == len({a["why"] for a in plan["actions"]}) < len(plan["actions"])
    text = (tmp_path / "p.json").read_text()
    copies = sum(1 for a in plan["actions"] if a["kind"] == "copy")
    assert copies > len(raw["ops"]) and text.count('"copy"') == sum(1 for op in raw["ops"] if op[1] == "copy")


def test_plan_of_format_version_1_is_refused(db, tmp_path):
    story(db.controller())
    make_plan(db, tmp_path / "p.json")
    doc = json.loads((tmp_path / "p.json").read_text())
    doc["format_version"] = 1
    doc["checksum"] = checksum(doc)
    (tmp_path / "p.json").write_text(json.dumps(doc))
    result = run("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes")
    assert result.exit_code == 4 and "older controller-audit" in result.output and "make a new plan" in result.output


def test_undo_file_of_format_version_1_still_undoes(db, tmp_path):
    """An apply made by the version 1 tool (whole release pre-images) can be undone."""
    story(db.controller())
    before = contents(db)
    releases = {json.loads(r)["uuid"]: json.loads(r) for r in before["api_release"]}
    make_plan(db, tmp_path / "p.json")
    applied = run("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes", "--undo-file", str(tmp_path / "u.json"))
    assert applied.exit_code == 0, applied.output
    v2 = json.loads((tmp_path / "u.json").read_text())
    ops, apps = v2["ops"], v2["apps"]
    after = {str(a): {"inserted": c, "release": r} for a, c, r in copies_after(db, v2)}
    changes = []
    for action, op, app, _, release, version, fp, inserted in v2["copies"]:
        repair, kind, table = ops[op]
        changes.append({"action": action, "repair": repair, "kind": kind, "table": table, "row": releases[release][
            {"api_config": "config_id", "api_build": "build_id"}[table]],
            "app": {"uuid": apps[app][0], "name": apps[app][1]}, "inserted": inserted,
            "release": {"uuid": release, "version": version, "before": releases[release], "fingerprint_before": fp}})
    for entry in v2["rows"]:
        repair, kind, table = ops[entry["op"]]
        changes.append({"action": entry["action"], "repair": repair, "kind": kind, "table": table, "row": entry["row"],
                        "app": {"uuid": apps[entry["app"]][0], "name": apps[entry["app"]][1]},
                        "before": entry["before"], "fingerprint_before": entry["fingerprint_before"]})
        if entry["fingerprint_after"]:
            after[str(entry["action"])] = {"row": entry["fingerprint_after"]}
    v1 = {key: v2[key] for key in ("format", "tool_version", "created", "plan_checksum", "database")}
    v1.update(format_version=1, changes=sorted(changes, key=lambda c: c["action"]), after=after)
    v1["checksum"] = checksum(v1)
    (tmp_path / "v1.json").write_text(json.dumps(v1))
    assert any(c["kind"] == "copy" for c in changes) and any(c["kind"] == "prune" for c in changes)
    undone = run("undo", str(tmp_path / "v1.json"), "--dsn", db.dsn, "--yes")
    assert undone.exit_code == 0, undone.output
    assert contents(db) == before


def _applied(db, tmp_path) -> dict:
    """Apply a plan of the story; the undo file's document."""
    make_plan(db, tmp_path / "p.json")
    applied = run("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes", "--undo-file", str(tmp_path / "u.json"))
    assert applied.exit_code == 0, applied.output
    return json.loads((tmp_path / "u.json").read_text())


def _uncopies(path) -> list:
    """The undo actions of an undo file that take a copy back."""
    actions = undofile.load_undo(path).actions
    return [row for row in actions.rows if actions.ops[row.op][1] == "uncopy"]


def test_undo_file_records_no_copy_fingerprints_after_and_undoes_after_a_boot(db, tmp_path):
    """Format version 4 reads nothing back for the copies (undo never compared those
    fingerprints), and takes the apply back after the controller re-saved the copies."""
    story(db.controller())
    before = contents(db)
    doc = _applied(db, tmp_path)
    assert doc["format_version"] == 4 and "copies_after" not in doc and doc["copies"]
    assert {(row.fingerprint, row.release_fingerprint) for row in _uncopies(tmp_path / "u.json")} == {(None, None)}
    copies = [inserted for *_, inserted in doc["copies"]]
    db.conn.execute("UPDATE api_config SET updated = now() WHERE uuid::text = ANY(%s)", (copies,))
    db.conn.execute("UPDATE api_build SET updated = now() WHERE uuid::text = ANY(%s)", (copies,))
    resaved = set(boot(db))
    undone = run("undo", str(tmp_path / "u.json"), "--dsn", db.dsn, "--yes")
    assert undone.exit_code == 0, undone.output
    assert without_updated(contents(db), resaved) == without_updated(before, resaved)


@pytest.mark.parametrize("version", [2, 3])
def test_undo_file_of_format_version_2_or_3_with_copies_after_still_undoes(db, tmp_path, version):
    """Undo files written before version 4 hold ``copies_after``: read into the undo's actions
    as before (a record, never compared), and the apply is taken back."""
    story(db.controller())
    before = contents(db)
    doc = as_older_undo(db, _applied(db, tmp_path), version)
    (tmp_path / "old.json").write_text(json.dumps(doc))
    recorded = {(c, r) for _, c, r in doc["copies_after"]}
    assert {(row.fingerprint, row.release_fingerprint) for row in _uncopies(tmp_path / "old.json")} == recorded
    assert None not in {fp for pair in recorded for fp in pair} and len(recorded) == len(doc["copies"])
    undone = run("undo", str(tmp_path / "old.json"), "--dsn", db.dsn, "--yes")
    assert undone.exit_code == 0, undone.output
    assert contents(db) == before


def test_plan_sql_and_undo_sql_say_one_line_on_stderr(db, tmp_path):
    """A real process (not click's runner, whose logging pytest captures): the parser's own
    warnings about the DO blocks it does not lay out never reach the user."""
    story(db.controller())
    plan = tmp_path / "p.plan"
    assert run("plan", "--dsn", db.dsn, "-o", str(plan)).exit_code == 0
    out = tmp_path / "p.sql"
    done = subprocess.run([sys.executable, "-m", "auditor", "plan", "sql", str(plan), "-o", str(out)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [f"script {out}: run it with  psql -v ON_ERROR_STOP=1 -f {out}"]
    assert "DO $$" in out.read_text()
