"""``check --min-severity``: what each format lists, what it counts, with a baseline too."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from auditor.reports.report_json import report_schema
from tests.cli.conftest import report
from tests.cli.test_check import parse_prometheus
from tests.cli.test_nagios import NAGIOS, plugin_output
from tests.test_bench import damaged_story

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SUMMARY_KEYS = ("total", "by_severity", "by_check", "by_check_severity", "top_hazard_apps", "apps_with_findings",
                 "exit_code")


@pytest.fixture
def damaged(make_db):
    db = make_db(28)
    damaged_story(db.conn)
    return db


def test_json_lists_from_warning_and_counts_the_rest(damaged, run):
    default = run("check", "--dsn", damaged.dsn, "--format", "json")
    everything = run("check", "--dsn", damaged.dsn, "--format", "json", "--min-severity", "info")
    assert default.exit_code == everything.exit_code == 2
    doc, full = report(default), report(everything)
    for document in (doc, full):
        jsonschema.validate(document, report_schema())
    assert doc["summary"]["min_severity"] == "warning" and full["summary"]["min_severity"] == "info"
    assert {f["severity"] for f in doc["findings"]} == {"critical", "warning"}
    assert {f["severity"] for f in full["findings"]} == {"critical", "warning", "info"}
    # Same counts either way; only the listing differs.
    for key in _SUMMARY_KEYS:
        assert doc["summary"][key] == full["summary"][key], key
    info = full["summary"]["by_severity"]["info"]
    assert info > 0
    assert doc["summary"]["listed"] == {"from": "warning", "total": len(doc["findings"]),
                                        "by_severity": {**doc["summary"]["by_severity"], "info": 0}}
    assert doc["summary"]["not_listed"] == {"total": info, "by_severity": {"critical": 0, "warning": 0, "info": info}}
    assert full["summary"]["not_listed"]["total"] == 0 and full["summary"]["listed"]["total"] == len(full["findings"])
    # The listed findings are the same ones (messages say how far ahead of the clock: not compared).
    assert ([(f["key"], f["severity"], f["evidence"].keys()) for f in full["findings"] if f["severity"] != "info"]
            == [(f["key"], f["severity"], f["evidence"].keys()) for f in doc["findings"]])
    # The apps with the most hazards: the info findings of the full listing, per app, most first.
    hazards: dict[str, int] = {}
    for finding in full["findings"]:
        if finding["severity"] == "info" and finding["app"] and finding["app"]["name"]:
            hazards[finding["app"]["name"]] = hazards.get(finding["app"]["name"], 0) + 1
    top = doc["summary"]["top_hazard_apps"]
    assert [(t["app"], t["hazards"]) for t in top] == sorted(hazards.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert all(sum(t["by_check"].values()) == t["hazards"] for t in top)


def test_critical_floor_counts_warnings_too(damaged, run):
    doc = report(run("check", "--dsn", damaged.dsn, "--format", "json", "--min-severity", "critical",
                     "--fail-on", "critical"))
    assert {f["severity"] for f in doc["findings"]} == {"critical"}
    assert doc["summary"]["listed"]["from"] == "critical"
    assert doc["summary"]["not_listed"]["by_severity"]["warning"] == doc["summary"]["by_severity"]["warning"] > 0


def test_fail_on_info_lists_what_it_counts(damaged, run):
    """A finding that makes the exit code non-zero is always listed (and judged by a baseline)."""
    doc = report(run("check", "--dsn", damaged.dsn, "--format", "json", "--fail-on", "info"))
    assert doc["summary"]["min_severity"] == "warning" and doc["summary"]["listed"]["from"] == "info"
    assert doc["summary"]["not_listed"]["total"] == 0
    assert "info" in {f["severity"] for f in doc["findings"]}


def test_table_footer_counts_what_it_did_not_list_and_names_the_flag(damaged, run):
    table = run("check", "--dsn", damaged.dsn)
    assert table.exit_code == 2
    assert "\nINFO - " not in table.stdout
    full = report(run("check", "--dsn", damaged.dsn, "--format", "json", "--min-severity", "info"))["summary"]
    info = full["by_severity"]["info"]
    counts = ", ".join(f"{full['by_severity'][s]} {s}" for s in ("critical", "warning", "info"))
    assert f"{counts} in {full['apps_with_findings']} apps" in table.stdout
    per_check = sorted(((c, by["info"]) for c, by in full["by_check_severity"].items() if by["info"]),
                       key=lambda kv: (-kv[1], kv[0]))
    assert (f"\nnot listed (below --min-severity warning): {info} info; --min-severity info lists them\n"
            "  by check: " + ", ".join(f"{c} {n}" for c, n in per_check) + "\n") in table.stdout
    top = ", ".join(f"{t['app']} {t['hazards']}" for t in full["top_hazard_apps"])
    assert f"\n  apps with the most hazards: {top} (controller-audit explain APP)\n" in table.stdout
    everything = run("check", "--dsn", damaged.dsn, "--min-severity", "info")
    assert "\nINFO - " in everything.stdout and "not listed" not in everything.stdout


def test_prometheus_counts_are_the_same_whatever_is_listed(damaged, run):
    default = parse_prometheus(run("check", "--dsn", damaged.dsn, "--format", "prometheus").stdout)
    everything = parse_prometheus(run("check", "--dsn", damaged.dsn, "--format", "prometheus",
                                      "--min-severity", "info").stdout)
    findings = {k: v for k, v in default.items() if k.startswith("controller_audit_findings{")}
    assert findings == {k: v for k, v in everything.items() if k.startswith("controller_audit_findings{")}
    info = sum(v for k, v in findings.items() if 'severity="info"' in k)
    assert info > 0
    assert default['controller_audit_not_listed_findings{severity="info"}'] == info
    assert everything['controller_audit_not_listed_findings{severity="info"}'] == 0
    hazards = {k: v for k, v in default.items() if k.startswith("controller_audit_app_hazards{")}
    assert hazards and hazards == {k: v for k, v in everything.items() if k.startswith("controller_audit_app_hazards{")}
    assert all('app_name="' in k and 'check="' in k for k in hazards)


def test_nagios_perfdata_counts_the_unlisted(damaged, run):
    default = plugin_output(run("check", "--dsn", damaged.dsn, *NAGIOS))
    everything = plugin_output(run("check", "--dsn", damaged.dsn, *NAGIOS, "--min-severity", "info"))
    assert default[1] == everything[1]  # the status text counts everything
    for label in ("critical", "warning", "info", "apps"):
        assert default[2][label]["value"] == everything[2][label]["value"], label
    assert int(default[2]["unlisted"]["value"]) == int(default[2]["info"]["value"]) > 0
    assert everything[2]["unlisted"]["value"] == "0"


def test_html_ranks_apps_by_every_finding(damaged, run):
    default = run("check", "--dsn", damaged.dsn, "--format", "html")
    everything = run("check", "--dsn", damaged.dsn, "--format", "html", "--min-severity", "info")
    assert default.exit_code == everything.exit_code == 2

    def ranking(page: str) -> str:
        # Times, durations, and how far ahead a future-dated row is (the two runs are a second apart).
        page = re.sub(r"\d+\.\d+ s|\d{4}-\d\d-\d\d[ T][\d:.+Z-]+|\"duration_seconds\": [\d.]+"
                      r"|[\d:]+ ahead of", "T", page)
        return page[page.index("<table"):]

    assert ranking(default.stdout) == ranking(everything.stdout)


def test_config_file_key_and_precedence(damaged, run):
    with open("controller-audit.toml", "w") as handle:
        handle.write('min_severity = "info"\n')
    doc = report(run("check", "--dsn", damaged.dsn, "--format", "json"))
    assert doc["summary"]["min_severity"] == "info" and doc["summary"]["not_listed"]["total"] == 0
    doc = report(run("check", "--dsn", damaged.dsn, "--format", "json", "--min-severity", "critical"))
    assert doc["summary"]["min_severity"] == "critical"
    with open("controller-audit.toml", "w") as handle:
        handle.write('min_severity = "loud"\n')
    bad = run("check", "--dsn", damaged.dsn)
    assert bad.exit_code == 3 and "min_severity" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_baseline_made_with_every_finding_read_by_a_default_run(damaged, run):
    """Listed findings are judged by key; those counted below the floor (no key) are accepted by
    number, per check and app; what exceeds the baseline's entries stays counted as not listed."""
    assert run("baseline", "create", "known.json", "--dsn", damaged.dsn).exit_code == 0
    entries = json.load(open("known.json"))["entries"]
    assert [e for e in entries if e["severity"] == "info"] and [e for e in entries if e["severity"] != "info"]

    doc = report(run("check", "--dsn", damaged.dsn, "--format", "json", "--baseline", "known.json"))
    jsonschema.validate(doc, report_schema())
    base = doc["summary"]["baseline"]
    assert doc["findings"] == [] and base["suppressed"] == len(entries)
    assert base["stale"] == 0 and base["unjudged"] == 0 and doc["summary"]["not_listed"]["total"] == 0
    table = run("check", "--dsn", damaged.dsn, "--baseline", "known.json")
    assert table.exit_code == 0 and "no new findings" in table.stdout and "stale" not in table.stdout

    # A new app whose push shares its first config: info findings the baseline never accepted.
    damaged.controller().create_app("fresh").push()
    doc = report(run("check", "--dsn", damaged.dsn, "--format", "json", "--baseline", "known.json"))
    assert doc["findings"] == [] and doc["summary"]["not_listed"]["total"] >= 1
    full = report(run("check", "--dsn", damaged.dsn, "--format", "json", "--baseline", "known.json",
                      "--min-severity", "info"))
    assert len(full["findings"]) == doc["summary"]["not_listed"]["total"]  # the same new ones, by key
    assert {f["app"]["name"] for f in full["findings"]} == {"fresh"}


def test_a_hazard_that_becomes_damage_is_worse_under_the_default_floor(hephy_db, run):
    web = hephy_db.controller().create_app("web")
    web.push()
    web.push()  # v1..v3 share configs: info hazards
    assert run("baseline", "create", "known.json", "--dsn", hephy_db.dsn, "--check", "shared-config").exit_code == 0
    reader = hephy_db.controller().create_app("reader")
    hephy_db.conn.execute("UPDATE api_release SET config_id = %s WHERE app_id = %s", (web.release(1).config, reader.uuid))
    doc = report(run("check", "--dsn", hephy_db.dsn, "--check", "shared-config", "--format", "json",
                     "--baseline", "known.json"))
    assert [(f["severity"], f["baseline"]["accepted_severity"]) for f in doc["findings"]] == [("critical", "info")]
    assert doc["summary"]["baseline"]["worse"] == 1 and doc["summary"]["baseline"]["stale"] == 0


def test_an_entry_whose_damage_is_gone_is_stale_under_the_default_floor(hephy_db, run):
    web = hephy_db.controller().create_app("web")
    web.push()
    orphan = web.orphan_config(X="1")  # the newest config, used by no release: a warning
    assert run("baseline", "create", "known.json", "--dsn", hephy_db.dsn, "--check", "orphan-config").exit_code == 0
    hephy_db.conn.execute("DELETE FROM api_config WHERE uuid = %s", (orphan,))
    doc = report(run("check", "--dsn", hephy_db.dsn, "--check", "orphan-config", "--format", "json",
                     "--baseline", "known.json"))
    assert doc["summary"]["baseline"]["stale"] == 1 and doc["summary"]["baseline"]["unjudged"] == 0
