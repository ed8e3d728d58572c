"""Plan and undo file formats: compact rows, older versions."""

from __future__ import annotations

import json
import subprocess
import sys

from repairs.sealed import checksum
from tests.repairs.helpers import contents, make_plan, run, story


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
    after = {str(a): {"inserted": c, "release": r} for a, c, r in v2["copies_after"]}
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
