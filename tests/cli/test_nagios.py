"""``check --format nagios``: a monitoring plugin's status line, performance data and details
(issue 17: the monitoring-plugins development guidelines, exit codes as for every format)."""

from __future__ import annotations

import os
import re
import stat
import uuid

import pytest

from auditor.reports.report_nagios import DETAIL_LINES
from tests.cli.test_check import poisoned_old_deis
from tests.helpers import login_role_dsn, messages

ORPHANS = ("--check", "orphan-config", "--check", "orphan-build")
NAGIOS = ("--format", "nagios")

# The guidelines' grammar: 'label'=value[UOM];[warn];[crit];[min];[max], space separated,
# trailing empty fields may be left off.  A label has at least one non-space character and no
# '=' or "'" (quoted when it holds spaces); values are decimal numbers (no scientific notation);
# warn and crit are range expressions [@][start:][end] (start may be ~), never empty when given.
_NUMBER = r"-?\d+(?:\.\d+)?"
_RANGE = rf"@?(?:(?:{_NUMBER}|~):)?(?:{_NUMBER})?"
_LABEL = r"(?:'[^'=]*[^'=\s][^'=]*'|[^'=\s]+)"
_UOM = r"(?:[munk]?s|%|[KMGT]?B|c)?"
PERF_VALUE = re.compile(
    rf"^(?P<label>{_LABEL})=(?P<value>{_NUMBER})(?P<uom>{_UOM})"
    rf"(?:;(?P<warn>{_RANGE})(?:;(?P<crit>{_RANGE})(?:;(?P<min>{_NUMBER})?(?:;(?P<max>{_NUMBER})?)?)?)?)?$"
)
STATUS_LINE = re.compile(r"^CONTROLLER-AUDIT (?P<state>OK|WARNING|CRITICAL|UNKNOWN) - (?P<text>[^|]+?)"
                         r"(?: \| (?P<perf>[^|]*))?$")
STATES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}


def plugin_output(result) -> tuple[str, str, dict[str, dict[str, str]], list[str]]:
    """(state, text, perfdata by label, detail lines) of a run, checked against the grammar."""
    first, *details = result.stdout.splitlines()
    status = STATUS_LINE.match(first)
    assert status, first
    assert STATES[result.exit_code] == status["state"], (result.exit_code, first)
    perf: dict[str, dict[str, str]] = {}
    for item in (status["perf"] or "").split():
        value = PERF_VALUE.match(item)
        assert value, f"not perfdata by the guidelines' grammar: {item!r}"
        perf[value["label"]] = {k: v or "" for k, v in value.groupdict().items() if k != "label"}
    for line in details:
        assert "|" not in line, f"a '|' in the long text would start performance data: {line!r}"
    return status["state"], status["text"], perf, details


def counts(perf: dict[str, dict[str, str]]) -> dict[str, int]:
    return {label: int(v["value"]) for label, v in perf.items() if label in ("critical", "warning", "info")}


def test_ok_is_one_line_with_perfdata_for_every_severity(db, run):
    app = db.controller().create_app("web")
    app.push()
    result = run("check", "--dsn", db.dsn, *ORPHANS, *NAGIOS)
    assert result.exit_code == 0, result.output
    state, text, perf, details = plugin_output(result)
    assert (state, text, details) == ("OK", "0 critical, 0 warning, 0 info", [])
    assert list(perf) == ["critical", "warning", "info", "apps", "unlisted", "suppressed", "stale", "time"]
    assert counts(perf) == {"critical": 0, "warning": 0, "info": 0}
    assert perf["time"]["uom"] == "s" and perf["time"]["min"] == "0"
    # --fail-on warning (the default): any critical is critical, any warning is a warning.
    assert (perf["critical"]["warn"], perf["critical"]["crit"]) == ("", "0")
    assert (perf["warning"]["warn"], perf["warning"]["crit"]) == ("0", "")
    assert (perf["info"]["warn"], perf["info"]["crit"]) == ("", "")
    assert messages(result.stderr) == ""


def test_warning_names_each_finding_below_the_status_line(hephy_db, run):
    web = hephy_db.controller().create_app("web")
    web.push()
    orphan = web.orphan_config(X="1")  # the newest config: boot re-saves it (a warning)
    result = run("check", "--dsn", hephy_db.dsn, *ORPHANS, *NAGIOS)
    assert result.exit_code == 1, result.output
    state, text, perf, details = plugin_output(result)
    assert (state, text) == ("WARNING", "0 critical, 1 warning, 0 info in 1 app")
    assert counts(perf) == {"critical": 0, "warning": 1, "info": 0} and perf["apps"]["value"] == "1"
    assert len(details) == 1
    assert details[0].startswith("WARNING orphan-config app web: ") and orphan in details[0]


def test_critical_lists_the_most_severe_first(deis_old_db, run):
    poisoned_old_deis(deis_old_db)
    worker = deis_old_db.controller().create_app("worker")
    worker.push()
    worker.orphan_config(X="1")
    result = run("check", "--dsn", deis_old_db.dsn, *ORPHANS, *NAGIOS)
    assert result.exit_code == 2, result.output
    state, text, perf, details = plugin_output(result)
    assert state == "CRITICAL" and text.startswith("1 critical, 1 warning, 0 info in 2 apps")
    assert [d.split()[:3] for d in details] == [["CRITICAL", "orphan-build", "app"], ["WARNING", "orphan-config", "app"]]


def test_info_findings_are_counted_not_listed_unless_they_count(hephy_db, run):
    web = hephy_db.controller().create_app("web")
    web.push()  # v1 and v2 share the initial config: normal sharing, info
    args = ("check", "--dsn", hephy_db.dsn, "--check", "shared-config", *NAGIOS)
    default = run(*args)
    state, _, perf, details = plugin_output(default)
    assert (state, details) == ("OK", []) and int(perf["info"]["value"]) >= 1
    counted = run(*args, "--fail-on", "info")
    state, _, perf, details = plugin_output(counted)
    assert state == "WARNING" and counted.exit_code == 1
    assert details and all(d.startswith("INFO shared-config app web: ") for d in details)
    assert perf["info"]["warn"] == "0"


@pytest.mark.parametrize(("fail_on", "state", "thresholds"), [
    ("critical", "CRITICAL", {"critical": ("", "0"), "warning": ("", ""), "info": ("", "")}),
    ("warning", "CRITICAL", {"critical": ("", "0"), "warning": ("0", ""), "info": ("", "")}),
    ("never", "OK", {"critical": ("", ""), "warning": ("", ""), "info": ("", "")}),
])
def test_fail_on_sets_the_state_and_the_thresholds(deis_old_db, run, fail_on, state, thresholds):
    poisoned_old_deis(deis_old_db)
    result = run("check", "--dsn", deis_old_db.dsn, *ORPHANS, *NAGIOS, "--fail-on", fail_on)
    got_state, text, perf, details = plugin_output(result)
    assert got_state == state
    assert {s: (perf[s]["warn"], perf[s]["crit"]) for s in thresholds} == thresholds
    assert counts(perf)["critical"] == 1 and text.startswith("1 critical")
    assert details[0].startswith("CRITICAL orphan-build app web: ")  # listed even when it does not count


def test_fail_on_critical_with_only_warnings_is_ok(hephy_db, run):
    web = hephy_db.controller().create_app("web")
    web.push()
    web.orphan_config(X="1")
    result = run("check", "--dsn", hephy_db.dsn, *ORPHANS, *NAGIOS, "--fail-on", "critical")
    assert result.exit_code == 0
    state, _, perf, details = plugin_output(result)
    assert state == "OK" and counts(perf)["warning"] == 1 and len(details) == 1


def test_baseline_accepted_findings_are_ok_and_counted_as_suppressed(hephy_db, run):
    ctl = hephy_db.controller()
    web = ctl.create_app("web")
    web.push()
    web.orphan_config(X="1")
    api = ctl.create_app("api")
    api.push()
    fixed = api.orphan_config(X="old")
    assert run("baseline", "create", "known.json", "--dsn", hephy_db.dsn, *ORPHANS).exit_code == 0

    accepted = run("check", "--dsn", hephy_db.dsn, *ORPHANS, *NAGIOS, "--baseline", "known.json")
    state, text, perf, details = plugin_output(accepted)
    assert (state, text) == ("OK", "0 critical, 0 warning, 0 info, 2 accepted by baseline")
    assert perf["suppressed"]["value"] == "2" and perf["stale"]["value"] == "0"
    assert details == ["2 known findings suppressed by baseline known.json"]

    shop = ctl.create_app("shop")
    new = shop.orphan_config(X="new")
    hephy_db.conn.execute("DELETE FROM api_config WHERE uuid = %s", (fixed,))  # repaired since accepted
    changed = run("check", "--dsn", hephy_db.dsn, *ORPHANS, *NAGIOS, "--baseline", "known.json")
    state, text, perf, details = plugin_output(changed)
    assert (state, changed.exit_code) == ("WARNING", 1)
    assert text == "0 critical, 1 warning, 0 info in 1 app, 1 accepted by baseline"
    assert (perf["suppressed"]["value"], perf["stale"]["value"]) == ("1", "1")
    assert details[0].startswith("WARNING orphan-config app shop: ") and new in details[0]
    assert "1 baseline entry no longer matches; remove them with `controller-audit baseline create` again" in details
    assert any(d.startswith("  stale: orphan-config api api_config ") for d in details)


def test_details_are_capped_and_say_how_many_more(hephy_db, run):
    ctl = hephy_db.controller()
    for n in range(DETAIL_LINES + 3):
        ctl.create_app(f"web{n}").orphan_config(X=str(n))  # each app's newest config: a warning each
    result = run("check", "--dsn", hephy_db.dsn, "--check", "orphan-config", *NAGIOS)
    state, _, perf, details = plugin_output(result)
    assert state == "WARNING" and perf["warning"]["value"] == str(DETAIL_LINES + 3)
    assert len(details) == DETAIL_LINES + 1
    assert details[-1] == "... and 3 more (controller-audit check lists every finding)"


def test_a_pipe_or_control_character_from_the_database_cannot_forge_perfdata(hephy_db, run):
    app = hephy_db.controller().create_app("we|b=1\nCONTROLLER-AUDIT OK")
    app.push()
    app.orphan_config(X="1")
    result = run("check", "--dsn", hephy_db.dsn, *ORPHANS, *NAGIOS)
    state, _, perf, details = plugin_output(result)
    assert state == "WARNING" and list(perf)[0] == "critical"
    assert details == [d for d in details if d.startswith("WARNING orphan-config app we\\x7cb=1\\nCONTROLLER-AUDIT OK: ")]
    assert len(details) == 1


def test_cannot_audit_is_unknown_on_stdout_and_the_error_on_stderr(make_db, run):
    empty = make_db(None)  # a database without the controller's schema
    result = run("check", "--dsn", empty.dsn, *NAGIOS)
    assert result.exit_code == 3
    assert STATUS_LINE.match(result.stdout.rstrip("\n"))
    assert result.stdout.startswith("CONTROLLER-AUDIT UNKNOWN - not a controller database: ")
    assert result.stdout.count("\n") == 1
    assert result.stderr.startswith("controller-audit: not a controller database: ")
    assert result.stdout.removeprefix("CONTROLLER-AUDIT UNKNOWN - ") == result.stderr.removeprefix("controller-audit: ")


def test_unknown_never_shows_the_password(hephy_db, run):
    role = f"nag_{uuid.uuid4().hex[:8]}"
    dsn = login_role_dsn(hephy_db, role, "N4gios-Secret")
    wrong = dsn.replace("N4gios-Secret", "N4gios-Wrong")
    result = run("check", "--dsn", wrong, *NAGIOS)
    assert result.exit_code == 3
    assert result.stdout.startswith("CONTROLLER-AUDIT UNKNOWN - ")
    assert "N4gios" not in result.stdout + result.stderr
    # no privilege on the tables: the audit itself fails, still one UNKNOWN line
    denied = run("check", "--dsn", dsn, *NAGIOS)
    assert denied.exit_code == 3 and denied.stdout.startswith("CONTROLLER-AUDIT UNKNOWN - ")
    assert "N4gios" not in denied.stdout + denied.stderr


def test_bad_arguments_inside_the_command_are_unknown_too(hephy_db, run):
    result = run("check", "--dsn", hephy_db.dsn, *NAGIOS, "--app", "nope")
    assert result.exit_code == 3
    assert result.stdout.startswith("CONTROLLER-AUDIT UNKNOWN - unknown app: ")


def test_output_file_gets_the_report_or_the_unknown_line(hephy_db, make_db, run, tmp_path):
    out = tmp_path / "nagios.txt"
    web = hephy_db.controller().create_app("web")
    web.push()
    web.orphan_config(X="1")
    result = run("check", "--dsn", hephy_db.dsn, *ORPHANS, *NAGIOS, "-o", str(out))
    assert result.exit_code == 1 and result.stdout == ""
    assert out.read_text().startswith("CONTROLLER-AUDIT WARNING - 0 critical, 1 warning, 0 info in 1 app | ")
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    failed = run("check", "--dsn", make_db(None).dsn, *NAGIOS, "-o", str(out))
    assert failed.exit_code == 3 and failed.stdout == ""
    assert out.read_text().startswith("CONTROLLER-AUDIT UNKNOWN - not a controller database: ")


def test_config_file_may_choose_nagios(hephy_db, run, tmp_path):
    (tmp_path / "controller-audit.toml").write_text('format = "nagios"\nfail_on = "critical"\n')
    web = hephy_db.controller().create_app("web")
    web.push()
    web.orphan_config(X="1")
    result = run("check", "--dsn", hephy_db.dsn, *ORPHANS)
    state, _, perf, _ = plugin_output(result)
    assert state == "OK" and perf["warning"]["value"] == "1" and perf["warning"]["warn"] == ""
