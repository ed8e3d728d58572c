"""``controller-audit check``: formats, exit codes, --fail-on, --grace, --output."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timezone

import jsonschema
import pytest

from auditor.reports.progress import Progress
from auditor.reports.report_json import report_schema
from tests.cli.conftest import report
from tests.helpers import messages

ORPHANS = ("--check", "orphan-config", "--check", "orphan-build")


def poisoned_old_deis(db):
    """Old Deis: a failed push leaves the newest build orphaned; the next push diffs its
    procfile against that build and fails (critical)."""
    web = db.controller().create_app("web")
    web.push(image="web:1")
    web.config_set(DEBUG="1")
    web.failed_push(image="web:broken")
    return web


def newest_build(db, app) -> str:
    return db.scalar("SELECT uuid::text FROM api_build WHERE app_id = %s ORDER BY created DESC LIMIT 1", (app.uuid,))


def test_healthy_app_exits_0_with_an_empty_table(db, run):
    app = db.controller().create_app("web")
    app.push()
    app.config_set(A="1")
    result = run("check", "--dsn", db.dsn, *ORPHANS)
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"no findings \(2 checks, \d+\.\d\d s\)\n", result.stdout)
    assert messages(result.stderr) == ""  # no progress line when stderr is not a terminal


def test_warning_only_exits_1_and_table_groups_by_severity_and_app(hephy_db, run):
    ctl = hephy_db.controller()
    web = ctl.create_app("web")
    web.push()
    orphan = web.orphan_config(X="1")  # the newest config: boot re-saves it (a warning)
    ctl.create_app("api").push()
    result = run("check", "--dsn", hephy_db.dsn, *ORPHANS)
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "WARNING - app web"
    assert any(line.startswith("orphan-config") and orphan in line for line in lines)
    assert re.fullmatch(r"0 critical, 1 warning, 0 info in 1 app \(2 checks, \d+\.\d\d s\)", lines[-1])


def test_critical_exits_2(deis_old_db, run):
    poisoned_old_deis(deis_old_db)
    result = run("check", "--dsn", deis_old_db.dsn, "--check", "orphan-build")
    assert result.exit_code == 2, result.output
    assert result.stdout.startswith("CRITICAL - app web\n")


@pytest.mark.parametrize(("fail_on", "expected"), [("critical", 0), ("warning", 1), ("info", 1), ("never", 0)])
def test_fail_on_with_a_warning(hephy_db, run, fail_on, expected):
    web = hephy_db.controller().create_app("web")
    web.push()
    web.orphan_config(X="1")
    result = run("check", "--dsn", hephy_db.dsn, *ORPHANS, "--fail-on", fail_on)
    assert result.exit_code == expected, result.output


@pytest.mark.parametrize(("fail_on", "expected"), [("critical", 2), ("never", 0)])
def test_fail_on_with_a_critical(deis_old_db, run, fail_on, expected):
    poisoned_old_deis(deis_old_db)
    assert run("check", "--dsn", deis_old_db.dsn, *ORPHANS, "--fail-on", fail_on).exit_code == expected


def test_info_findings_count_only_with_fail_on_info(hephy_db, run):
    web = hephy_db.controller().create_app("web")
    web.push()  # v1 and v2 share the initial config: an info finding today
    args = ("check", "--dsn", hephy_db.dsn, "--check", "shared-config", "--format", "json")
    default = run(*args)
    assert report(default)["summary"]["by_severity"]["info"] >= 1
    assert report(default)["summary"]["by_severity"]["critical"] == 0
    assert default.exit_code == 0
    assert run(*args, "--fail-on", "info").exit_code == 1


def test_json_report_matches_the_schema_and_the_findings(deis_old_db, run):
    web = poisoned_old_deis(deis_old_db)
    orphan_build = newest_build(deis_old_db, web)
    web.orphan_config(X="1")
    result = run("check", "--min-severity", "info", "--dsn", deis_old_db.dsn, *ORPHANS, "--format", "json")
    assert result.exit_code == 2
    doc = report(result)
    jsonschema.validate(doc, report_schema())
    assert doc["generation"] == "deis"
    assert doc["database"]["migration"] == 19 and doc["database"]["migration_name"].startswith("0019_")
    assert doc["database"]["in_recovery"] is False
    summary = doc["summary"]
    assert summary["by_check"] == {"orphan-config": 1, "orphan-build": 1}
    assert summary["by_severity"] == {"critical": 1, "warning": 1, "info": 0}
    assert summary["total"] == 2 and summary["apps_with_findings"] == 1 and summary["exit_code"] == 2
    assert summary["checks_run"] == ["orphan-config", "orphan-build"]
    by_check = {f["check"]: f for f in doc["findings"]}
    assert by_check["orphan-build"]["object"] == {"table": "api_build", "uuid": orphan_build}
    assert by_check["orphan-config"]["app"]["name"] == "web"
    assert by_check["orphan-config"]["app"]["id"] == web.uuid


def test_json_report_of_many_findings_streams_every_one(hephy_db, run):
    web = hephy_db.controller().create_app("web")
    web.push()
    made = {web.orphan_build(image=f"x:{i}") for i in range(600)}
    doc = report(run("check", "--min-severity", "info", "--dsn", hephy_db.dsn, "--check", "orphan-build", "--format", "json"))
    jsonschema.validate(doc, report_schema())
    assert {f["object"]["uuid"] for f in doc["findings"]} == made
    assert doc["summary"]["total"] == 600


def test_json_report_of_a_whole_database_run_is_valid(db, run):
    ctl = db.controller()
    web = ctl.create_app("web")
    web.push()
    web.config_set(A="1")
    web.rollback(2)
    web.orphan_config(X="1")
    ctl.create_app("lonely")
    result = run("check", "--min-severity", "info", "--dsn", db.dsn, "--format", "json", "--fail-on", "never")
    assert result.exit_code == 0
    jsonschema.validate(report(result), report_schema())


def test_grace_hides_young_rows(hephy_db, run):
    web = hephy_db.controller().create_app("web")
    web.push()
    web.orphan_config(at=datetime.now(timezone.utc), X="1")  # the newest config: a warning once reported
    assert run("check", "--dsn", hephy_db.dsn, "--check", "orphan-config").exit_code == 0
    assert run("check", "--dsn", hephy_db.dsn, "--check", "orphan-config", "--grace", "0").exit_code == 1


def test_app_and_exclude_narrow_the_run(hephy_db, run):
    ctl = hephy_db.controller()
    web, api = ctl.create_app("web"), ctl.create_app("api")
    web.orphan_build()
    api.orphan_build()
    api.orphan_config(X="1")
    doc = report(run("check", "--min-severity", "info", "--dsn", hephy_db.dsn, *ORPHANS, "--app", "api", "--exclude", "orphan-config",
                     "--format", "json"))
    assert doc["summary"]["checks_run"] == ["orphan-build"]
    assert [(f["check"], f["app"]["name"]) for f in doc["findings"]] == [("orphan-build", "api")]


def parse_prometheus(text: str, keep_database: bool = False) -> dict[str, float]:
    """Every sample line ``name{labels} value``, checked against the exposition format; keyed by
    name and labels, the ``database`` label left out unless ``keep_database``."""
    samples: dict[str, float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind == "gauge"
            typed.add(name)
            continue
        match = re.fullmatch(r'([a-z_]+)(\{(?:[a-z_]+="(?:[^"\\]|\\.)*",?)*\})? (\S+)', line)
        assert match, f"not a sample line: {line!r}"
        assert match.group(1) in typed, f"sample before its TYPE: {line!r}"
        labels = re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', match.group(2) or "")
        kept = [f'{k}="{v}"' for k, v in labels if keep_database or k != "database"]
        samples[match.group(1) + ("{" + ",".join(kept) + "}" if kept else "")] = float(match.group(3))
    return samples


def test_prometheus_has_every_check_and_severity_and_run_health(deis_old_db, run):
    poisoned_old_deis(deis_old_db)
    result = run("check", "--dsn", deis_old_db.dsn, *ORPHANS, "--format", "prometheus")
    assert result.exit_code == 2
    samples = parse_prometheus(result.stdout)
    assert samples['controller_audit_findings{check="orphan-build",severity="critical"}'] == 1
    for check in ("orphan-config", "orphan-build"):
        for severity in ("critical", "warning", "info"):
            assert f'controller_audit_findings{{check="{check}",severity="{severity}"}}' in samples
    assert samples['controller_audit_findings{check="orphan-config",severity="warning"}'] == 0
    assert samples["controller_audit_last_run_success"] == 1
    assert samples["controller_audit_last_run_duration_seconds"] >= 0
    assert samples["controller_audit_last_run_timestamp_seconds"] > 1.7e9


def test_prometheus_output_file_is_written_whole(hephy_db, run, tmp_path):
    hephy_db.controller().create_app("web").orphan_config(X="1")
    target = tmp_path / "textfile" / "controller_audit.prom"
    target.parent.mkdir()
    result = run("check", "--dsn", hephy_db.dsn, *ORPHANS, "--format", "prometheus", "--output", str(target))
    assert result.exit_code == 1 and result.stdout == ""
    assert sorted(p.name for p in target.parent.iterdir()) == ["controller_audit.prom"]  # no temp file left
    text = target.read_text()
    assert text.endswith("\n")
    assert parse_prometheus(text)['controller_audit_findings{check="orphan-config",severity="warning"}'] == 1


def test_prometheus_output_records_a_failed_run(make_db, run, tmp_path):
    empty = make_db(None)
    target = tmp_path / "controller_audit.prom"
    result = run("check", "--dsn", empty.dsn, "--format", "prometheus", "--output", str(target))
    assert result.exit_code == 3
    assert "not a controller database" in result.stderr
    samples = parse_prometheus(target.read_text())
    assert samples["controller_audit_last_run_success"] == 0


def test_table_output_file(hephy_db, run, tmp_path):
    hephy_db.controller().create_app("web").orphan_config(X="1")
    out = tmp_path / "report.txt"
    assert run("check", "--dsn", hephy_db.dsn, *ORPHANS, "-o", str(out)).exit_code == 1
    assert out.read_text().startswith("WARNING - app web\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--check", "no-such-check"), "unknown check: no check with id 'no-such-check'"),
        (("--app", "ghost"), "unknown app: no app named 'ghost'"),
        (("--format", "xml"), "Invalid value for '--format'"),
        (("--statement-timeout", "soon"), "bad timeout value"),
        (("--baseline", "missing.json"), "baseline file missing.json does not exist"),
    ],
)
def test_bad_input_exits_3_with_one_line(hephy_db, run, args, message):
    result = run("check", "--dsn", hephy_db.dsn, *args)
    assert result.exit_code == 3
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_not_a_controller_database_exits_3(make_db, run):
    result = run("check", "--dsn", make_db(None).dsn)
    assert result.exit_code == 3
    assert result.stderr.startswith("controller-audit: not a controller database:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreachable_server_exits_3(run):
    result = run("check", "--dsn", "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2")
    assert result.exit_code == 3
    assert result.stderr.startswith("controller-audit: unreachable: x@127.0.0.1:1/x:")
    assert len(result.stderr.strip().splitlines()) == 1


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_redraws_one_line_on_a_terminal_only(hephy_db):
    from tests.helpers import audit

    web = hephy_db.controller().create_app("web")
    web.orphan_build()
    findings = audit(hephy_db, ["orphan-build"])
    terminal = _Terminal()
    assert list(Progress(terminal, ["orphan-build"]).track(findings)) == findings
    shown = terminal.getvalue()
    assert "\n" not in shown and shown.startswith("\rcontroller-audit: running 1 checks (orphan-build)")
    assert "1 findings (orphan-build 1)" in shown and shown.endswith("\r")
    quiet_after_first = _Terminal()
    assert list(Progress(quiet_after_first, ["orphan-build"], until_first=True).track(findings * 3)) == findings * 3
    assert "findings" not in quiet_after_first.getvalue()  # only the "running" line, then cleared
    assert quiet_after_first.getvalue().startswith("\rcontroller-audit: running 1 checks")
    pipe = io.StringIO()
    assert list(Progress(pipe, ["orphan-build"]).track(findings)) == findings
    assert pipe.getvalue() == ""


def test_findings_are_each_one_line_of_the_json_document(hephy_db, run):
    web = hephy_db.controller().create_app("web")
    web.orphan_build()
    web.orphan_build()
    lines = run("check", "--min-severity", "info", "--dsn", hephy_db.dsn, "--check", "orphan-build", "--format", "json").stdout.splitlines()
    finding_lines = [line for line in lines if line.startswith('  {"check": ')]
    assert len(finding_lines) == 2
    assert all(json.loads(line.rstrip(",").strip())["check"] == "orphan-build" for line in finding_lines)


def test_documented_example_matches_the_schema():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "report-format.md").read_text(encoding="utf-8")
    block = text.split("<!-- sample: controller-audit check --check orphan-config --check orphan-build --format json -->",
                       1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    example = json.loads(block[block.index("\n{\n") + 1:])
    jsonschema.validate(example, report_schema())
