"""A baseline accepts a finding at the severity it had (issue 13, case 2): worse is new, less
severe is improved, older baseline files (no severities) keep working - in every format."""

from __future__ import annotations

import json

import jsonschema

from auditor.reports.report_json import report_schema
from tests.cli.conftest import report
from tests.cli.test_check import parse_prometheus

SHARING = ("--check", "shared-config", "--check", "shared-build")
APPS = ("web", "api", "worker")


def normal_sharing(db) -> dict:
    """Three apps whose rows are shared the way every push and config:set shares them (info)."""
    ctl = db.controller()
    apps = {}
    for name in APPS:
        app = ctl.create_app(name)
        app.push()
        app.config_set(X="1")
        apps[name] = app
    return apps


def test_a_rollback_that_makes_accepted_info_critical_is_reported(hephy_db, run):
    apps = normal_sharing(hephy_db)
    created = run("baseline", "create", "accepted.json", "--dsn", hephy_db.dsn, *SHARING)
    assert created.exit_code == 0, created.output
    entries = json.load(open("accepted.json"))["entries"]
    assert {e["severity"] for e in entries} == {"info"} and len(entries) == 6
    ctl = hephy_db.controller()
    for name, app in apps.items():
        # another app's live release is pointed at the app's v1/v2 config (a cross-app reference):
        # deleting that config, or the app, would now take another app's live release with it
        foreign_in(ctl, f"{name}-reader", app.release(1).config)

    table = run("check", "--min-severity", "info", "--dsn", hephy_db.dsn, *SHARING, "--baseline", "accepted.json")
    assert table.exit_code == 2, table.output
    # Each app's v1 config, shared by v1, v2 and now another app's live v1: critical (the builds stay adjacent).
    assert "3 critical, 0 warning, 0 info in 3 apps" in table.stdout
    assert table.stdout.count("(was info when accepted)") == 3
    assert "3 known findings suppressed by baseline accepted.json" in table.stdout
    assert "3 accepted findings got worse since accepted" in table.stdout

    doc = report(run("check", "--min-severity", "info", "--dsn", hephy_db.dsn, *SHARING, "--baseline", "accepted.json", "--format", "json"))
    jsonschema.validate(doc, report_schema())
    assert doc["summary"]["exit_code"] == 2 and doc["summary"]["by_severity"]["critical"] == 3
    assert [(f["check"], f["baseline"]["accepted_severity"]) for f in doc["findings"]] == [("shared-config", "info")] * 3
    assert doc["summary"]["baseline"]["worse"] == 3 and doc["summary"]["baseline"]["suppressed"] == 3

    prom = run("check", "--min-severity", "info", "--dsn", hephy_db.dsn, *SHARING, "--baseline", "accepted.json", "--format", "prometheus")
    assert prom.exit_code == 2
    samples = parse_prometheus(prom.stdout)
    assert samples['controller_audit_findings{check="shared-config",severity="critical"}'] == 3
    assert samples['controller_audit_findings{check="shared-build",severity="info"}'] == 0
    assert samples["controller_audit_baseline_worse_findings"] == 3


def foreign_in(ctl, name: str, config: str):
    """A new app whose live release v1 uses ``config`` of another app (a cross-app reference)."""
    app = ctl.create_app(name)
    ctl.conn.execute("UPDATE api_release SET config_id = %s WHERE app_id = %s", (config, app.uuid))
    return app


def test_a_finding_less_severe_than_accepted_is_reported_as_improved(hephy_db, run):
    apps = normal_sharing(hephy_db)
    web = apps["web"]
    # another app's live release uses web's v1/v2 config: deleting it would take that release: critical
    reader = foreign_in(hephy_db.controller(), "reader", web.release(1).config)
    run("baseline", "create", "accepted.json", "--dsn", hephy_db.dsn, "--check", "shared-config")
    reader.config_set(Y="2")  # the reader deploys its own config: its old release is no longer live

    table = run("check", "--min-severity", "info", "--dsn", hephy_db.dsn, "--check", "shared-config", "--baseline", "accepted.json")
    assert table.exit_code == 0, table.output
    assert "1 accepted finding is less severe than when accepted (improved)" in table.stdout
    assert "critical when accepted, warning now" in table.stdout
    doc = report(run("check", "--min-severity", "info", "--dsn", hephy_db.dsn, "--check", "shared-config", "--baseline", "accepted.json",
                     "--format", "json"))
    jsonschema.validate(doc, report_schema())
    improved = doc["summary"]["baseline"]["improved_entries"]
    assert [(i["app"], i["accepted_severity"], i["severity"]) for i in improved] == [("web", "critical", "warning")]
    samples = parse_prometheus(run("check", "--min-severity", "info", "--dsn", hephy_db.dsn, "--check", "shared-config", "--baseline",
                                   "accepted.json", "--format", "prometheus").stdout)
    assert samples["controller_audit_baseline_improved_findings"] == 1


def test_a_baseline_without_severities_keeps_working(hephy_db, run):
    apps = normal_sharing(hephy_db)
    run("baseline", "create", "accepted.json", "--dsn", hephy_db.dsn, *SHARING)
    data = json.load(open("accepted.json"))
    for entry in data["entries"]:
        del entry["severity"]  # as written before severities were recorded
    json.dump(data, open("old.json", "w"))
    apps["web"].rollback(2)
    result = run("check", "--min-severity", "info", "--dsn", hephy_db.dsn, *SHARING, "--baseline", "old.json")
    assert result.exit_code == 0, result.output  # accepted at any severity, as before
    assert "no new findings (" in result.stdout
    assert "6 known findings suppressed by baseline old.json" in result.stdout
