"""Severity overrides that keep a graded check graded (issue 13, case 6).

``shared-config = "warning"`` used to turn every info sharing row into a warning, so cron
failed on the sharing every push creates.  A plain string is now only for a check with one
level; a graded check takes a level map and/or a floor and ceiling.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from auditor.testbed.schema import STANDARD_MIGRATIONS
from checks import CATALOGUE
from tests.cli.conftest import report
from tests.cli.test_check import parse_prometheus


def write(text: str) -> None:
    with open("controller-audit.toml", "w") as handle:
        handle.write(text)


def graded_sharing(db) -> None:
    """shared-config at every level: info (sharing inside one app, a hazard), warning (another
    app's old release uses the row), critical (another app's live release does)."""
    ctl = db.controller()
    calm = ctl.create_app("calm")
    calm.push()  # v1, v2 share the first config: info
    old = ctl.create_app("old")
    other = ctl.create_app("other")
    other.config_set(X="1")
    other.point_at(1, old)  # other's v1 (not live) uses old's config: warning, owned by old
    live = ctl.create_app("live")
    ctl.create_app("user").point_at(1, live)  # user's live v1 uses live's config: critical


def _severities(result) -> Counter:
    return Counter((f["app"]["name"], f["severity"]) for f in report(result)["findings"])


def test_a_plain_severity_for_a_graded_check_is_refused(run):
    write('[severity]\nshared-config = "warning"\n')
    result = run("check")
    assert result.exit_code == 3
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1
    assert line.startswith("controller-audit: bad config file: controller-audit.toml: severity.shared-config: "
                           "shared-config reports critical, warning, info findings, so one severity would flatten "
                           "them: map each level (shared-config = {critical = \"critical\", warning = \"warning\", "
                           "info = \"info\"}) or set a floor or ceiling"), line


def test_a_level_map_changes_only_the_levels_it_names(hephy_db, run):
    graded_sharing(hephy_db)
    args = ("check", "--min-severity", "info", "--dsn", hephy_db.dsn, "--check", "shared-config", "--format", "json")
    assert _severities(run(*args)) == Counter({("calm", "info"): 1, ("old", "warning"): 1, ("live", "critical"): 1})
    write('[severity]\nshared-config = {info = "info", warning = "critical"}\n')
    result = run(*args)
    assert result.exit_code == 2
    assert _severities(result) == Counter({("calm", "info"): 1, ("old", "critical"): 1, ("live", "critical"): 1})
    table = run("check", "--dsn", hephy_db.dsn, "--check", "shared-config")  # the Finding path agrees (counts)
    assert "2 critical, 0 warning, 1 info in 3 apps" in table.stdout
    samples = parse_prometheus(run("check", "--dsn", hephy_db.dsn, "--check", "shared-config", "--format",
                                   "prometheus").stdout)
    assert samples['controller_audit_findings{check="shared-config",severity="critical"}'] == 2
    assert samples['controller_audit_findings{check="shared-config",severity="info"}'] == 1


@pytest.mark.parametrize(("override", "expected"), [
    ('{floor = "warning"}', {("calm", "warning"): 1, ("old", "warning"): 1, ("live", "critical"): 1}),
    ('{ceiling = "warning"}', {("calm", "info"): 1, ("old", "warning"): 1, ("live", "warning"): 1}),
    ('{floor = "warning", ceiling = "warning"}', {("calm", "warning"): 1, ("old", "warning"): 1,
                                                 ("live", "warning"): 1}),
    ('{critical = "info", floor = "warning"}', {("calm", "warning"): 1, ("old", "warning"): 1,
                                               ("live", "warning"): 1}),
])
def test_floor_and_ceiling(hephy_db, run, override, expected):
    graded_sharing(hephy_db)
    write(f"[severity]\nshared-config = {override}\n")
    result = run("check", "--min-severity", "info", "--dsn", hephy_db.dsn, "--check", "shared-config", "--format",
                 "json")
    assert _severities(result) == Counter(expected)


def test_a_plain_severity_still_works_for_a_check_with_one_level(hephy_db, run):
    hephy_db.controller().failed_create_app("half")
    write('[severity]\napp-without-release = "critical"\n')
    result = run("check", "--dsn", hephy_db.dsn, "--check", "app-without-release", "--format", "json")
    assert result.exit_code == 2
    assert [f["severity"] for f in report(result)["findings"]] == ["critical"]


@pytest.mark.parametrize(("override", "message"), [
    ('app-without-release = {info = "critical"}',
     "app-without-release never reports info findings (it reports warning)"),
    ('shared-config = {fatal = "info"}', "unknown key 'fatal' (a level: critical, warning, info; or floor, ceiling)"),
    ('shared-config = {warning = "loud"}', "warning must be one of critical, warning, info (got 'loud')"),
    ('shared-config = {floor = "critical", ceiling = "warning"}', "floor critical is above ceiling warning"),
    ('shared-config = {}', "must be a severity or a table of level = severity, floor, ceiling"),
])
def test_bad_overrides_name_the_problem(run, override, message):
    write(f"[severity]\n{override}\n")
    result = run("check")
    assert result.exit_code == 3
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


_SEVERITY_LITERAL = re.compile(r"'(critical|warning|info)'")


@pytest.mark.parametrize("legacy", [False, True], ids=["16+", "pre-16"])
def test_declared_levels_are_the_severities_each_check_sql_can_give(make_db, legacy):
    """Check.levels is what an override must map: it must be exactly what the SQL can emit on
    some schema generation (severities follow what a damage breaks there: a poisoned
    ``build_set.latest()`` fails pushes up to 0019 and is read by nothing later; Deis v2.0,
    before 0010, merged ``config:set`` over ``config_set.latest()``), and no more on any."""
    from dataclasses import replace

    from psycopg import sql

    from auditor.core.detect import detect

    emitted: dict[str, set[str]] = {}
    for migration in STANDARD_MIGRATIONS:
        generation = detect(make_db(migration).conn)
        variants = [generation] + ([replace(generation, migration=8)] if migration == min(STANDARD_MIGRATIONS) else [])
        for variant in variants:
            for check in CATALOGUE.values():
                text = check.sql_for(variant, legacy).compose(
                    scope=sql.SQL("true"), app_scope=sql.SQL("true"), partial=sql.SQL("false")).as_string(None)
                found = {m.group(1) for m in _SEVERITY_LITERAL.finditer(text)}
                assert found <= set(check.levels), (check.id, variant.migration, found, check.levels)
                emitted.setdefault(check.id, set()).update(found)
    for check in CATALOGUE.values():
        assert emitted[check.id] == set(check.levels), (check.id, emitted[check.id], check.levels)


def test_the_documented_config_file_is_valid():
    """docs/cli.md's example config file parses, with the overrides it shows."""
    import sys
    from pathlib import Path

    from auditor.core.configfile import parse_config
    from checks import CATALOGUE

    tomllib = __import__("tomllib" if sys.version_info >= (3, 11) else "tomli")
    text = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(# controller-audit\.toml\n.*?)```", text, flags=re.DOTALL)
    assert block is not None
    settings = parse_config(tomllib.loads(block.group(1)), "docs/cli.md", CATALOGUE)
    assert settings.severity["shared-config"] == {"critical": "critical", "warning": "critical", "info": "info"}
    assert settings.severity["missing-constraint"] == {"critical": "critical", "warning": "warning", "info": "warning"}
    assert settings.severity["invalid-json"] == {"critical": "warning", "warning": "warning"}
    assert settings.severity["app-without-release"] == {"warning": "critical"}
