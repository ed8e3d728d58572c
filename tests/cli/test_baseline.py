"""Living with known damage: baseline create, check --baseline, stale entries."""

from __future__ import annotations

import json

import jsonschema

from auditor.reports.report_json import report_schema
from tests.cli.conftest import report
from tests.cli.test_check import parse_prometheus

ORPHANS = ("--check", "orphan-config", "--check", "orphan-build")


def damaged(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    web.push()
    build = web.orphan_build()
    api = ctl.create_app("api")
    api.push()
    config = api.orphan_config(X="1")
    return ctl, web, api, build, config


def test_baseline_accepts_todays_findings(hephy_db, run):
    damaged(hephy_db)
    created = run("baseline", "create", "known.json", "--dsn", hephy_db.dsn, *ORPHANS)
    assert created.exit_code == 0, created.output
    assert created.stdout == "baseline known.json: 2 findings accepted (2 checks)\n"
    data = json.load(open("known.json"))
    assert data["version"] == 1 and len(data["entries"]) == 2
    assert {e["check"] for e in data["entries"]} == {"orphan-config", "orphan-build"}
    assert all(set(e) == {"key", "check", "severity", "app", "object", "message", "first_seen"}
               for e in data["entries"])

    result = run("check", "--min-severity", "info", "--dsn", hephy_db.dsn, *ORPHANS, "--baseline", "known.json")
    assert result.exit_code == 0, result.output
    assert "no new findings (2 checks" in result.stdout
    assert "2 known findings suppressed by baseline known.json" in result.stdout


def test_new_damage_is_reported_alone(hephy_db, run):
    _, web, _, _, _ = damaged(hephy_db)
    run("baseline", "create", "known.json", "--dsn", hephy_db.dsn, *ORPHANS)
    new = web.orphan_config(NEW="1")  # web's newest config now: boot re-saves it (a warning)
    result = run("check", "--min-severity", "info", "--dsn", hephy_db.dsn, *ORPHANS, "--baseline", "known.json", "--format", "json")
    assert result.exit_code == 1
    doc = report(result)
    jsonschema.validate(doc, report_schema())
    assert [f["object"]["uuid"] for f in doc["findings"]] == [new]
    assert doc["summary"]["baseline"]["suppressed"] == 2 and doc["summary"]["baseline"]["stale"] == 0


def test_fixed_damage_shows_as_stale_entry(hephy_db, run):
    _, _, _, build, _ = damaged(hephy_db)
    run("baseline", "create", "known.json", "--dsn", hephy_db.dsn, *ORPHANS)
    hephy_db.conn.execute("DELETE FROM api_build WHERE uuid = %s", (build,))  # the damage was repaired
    result = run("check", "--dsn", hephy_db.dsn, *ORPHANS, "--baseline", "known.json")
    assert result.exit_code == 0
    assert ("1 baseline entry no longer matches; remove them with `controller-audit baseline create` again"
            in result.stdout)
    assert f"stale: orphan-build web api_build {build}" in result.stdout
    doc = report(run("check", "--min-severity", "info", "--dsn", hephy_db.dsn, *ORPHANS, "--baseline", "known.json", "--format", "json"))
    assert doc["summary"]["baseline"]["stale"] == 1
    assert doc["summary"]["baseline"]["stale_entries"][0]["object"] == f"api_build {build}"


def test_entries_of_checks_not_run_are_not_stale(hephy_db, run):
    damaged(hephy_db)
    run("baseline", "create", "known.json", "--dsn", hephy_db.dsn, *ORPHANS)
    doc = report(run("check", "--min-severity", "info", "--dsn", hephy_db.dsn, "--check", "orphan-build", "--app", "web",
                     "--baseline", "known.json", "--format", "json"))
    assert doc["summary"]["baseline"] | {"stale_entries": None} == {
        "file": "known.json", "entries": 2, "suppressed": 1, "stale": 0, "stale_entries": None,
        "worse": 0, "unjudged": 0, "improved": 0, "improved_entries": []}


def test_recreating_keeps_first_seen(hephy_db, run):
    _, web, _, _, _ = damaged(hephy_db)
    run("baseline", "create", "known.json", "--dsn", hephy_db.dsn, *ORPHANS)
    before = {e["key"]: e["first_seen"] for e in json.load(open("known.json"))["entries"]}
    data = json.load(open("known.json"))
    for entry in data["entries"]:
        entry["first_seen"] = "2021-01-01T00:00:00+00:00"
    json.dump(data, open("known.json", "w"))
    web.orphan_build(image="web:new")
    again = run("baseline", "create", "known.json", "--dsn", hephy_db.dsn, *ORPHANS)
    assert again.stdout == ("baseline known.json: 3 findings accepted (2 checks, 2 already in the previous "
                            "baseline kept their first-seen time)\n")
    after = {e["key"]: e["first_seen"] for e in json.load(open("known.json"))["entries"]}
    assert all(after[key] == "2021-01-01T00:00:00+00:00" for key in before)
    assert len(after) == 3


def test_prometheus_reports_baseline_counts(hephy_db, run):
    damaged(hephy_db)
    run("baseline", "create", "known.json", "--dsn", hephy_db.dsn, "--check", "orphan-build")
    text = run("check", "--min-severity", "info", "--dsn", hephy_db.dsn, *ORPHANS, "--baseline", "known.json", "--format", "prometheus").stdout
    samples = parse_prometheus(text)
    assert samples["controller_audit_baseline_suppressed_findings"] == 1
    assert samples["controller_audit_baseline_stale_entries"] == 0


def test_malformed_baseline_exits_3(hephy_db, run):
    for content in ("{not json", '{"version": 7, "entries": []}', '{"version": 1, "entries": [{"key": 1}]}'):
        with open("bad.json", "w") as handle:
            handle.write(content)
        result = run("check", "--dsn", hephy_db.dsn, "--baseline", "bad.json")
        assert result.exit_code == 3
        assert result.stderr.startswith("controller-audit: bad baseline: baseline file bad.json is malformed:")
        assert len(result.stderr.strip().splitlines()) == 1


def test_an_empty_baseline_path_is_refused_not_ignored(hephy_db, run):
    """``--baseline "$UNSET"`` in a cron line: one line, exit 3 (it used to audit without the
    baseline, every accepted finding alerting again), in every format."""
    damaged(hephy_db)
    for fmt in ("table", "json", "prometheus", "nagios"):
        result = run("check", "--dsn", hephy_db.dsn, "--baseline", "", "--format", fmt, *ORPHANS)
        assert result.exit_code == 3, (fmt, result.output)
        assert ("controller-audit: bad baseline: the baseline path is empty; give the file baseline create wrote"
                in result.stderr.splitlines())
