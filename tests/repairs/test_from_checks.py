"""Issue #15, case 2: every repair starts from its checks' own findings.

For every check with a repair, on a damaged database of each generation, the rows the repair's
planner plans or refuses are exactly the objects the check reports (same app scope, same clock);
a finding the check marks for fixing by hand is refused with the check's own reason, and says
"fix: manual" wherever findings are shown.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from checks import CATALOGUE
from tests.helpers import audit
from tests.repairs.helpers import make_plan, run, story

REPAIRS = sorted({c.repair for c in CATALOGUE.values() if c.repair})


def damaged(db) -> None:
    """Something for every repair to do, and something for each to refuse."""
    ctl = db.controller()
    story(ctl)  # orphans, rollbacks, failed deploys, an app without releases
    search = ctl.create_app("search")
    search.push(image="search:1")
    search.config_set(SHARDS="3")
    search.push(image="search:2", at=ctl.clock - timedelta(minutes=10))  # out of order: release-order
    shop = ctl.create_app("shop")
    shop.push(image="shop:1")
    shop.config_set(A="1")
    shop.point_at(2, search, "config")  # shop v2 uses search's config: cross-app
    lonely = ctl.create_app("lonely")
    lonely.push(image="lonely:1")
    lonely.config_set(B="1")
    lonely.point_at(2, shop, "config")  # shop's live config, used by one shop release only: manual
    lender = ctl.create_app("lender")
    lender.push(image="lender:1")
    lent = lender.orphan_config(L="1")  # used by lonely v1 only: an orphan of no audit, --app lender or not
    db.conn.execute("UPDATE api_release SET config_id = %s WHERE app_id = %s AND version = 1", (lent, lonely.uuid))
    tied = ctl.create_app("tied")
    tied.push(image="tied:1")
    tied.config_set(C="1")
    newest = tied.orphan_config(C="2")
    db.conn.execute("UPDATE api_config SET created = (SELECT created FROM api_config WHERE uuid = %s) "
                    "WHERE uuid = %s", (newest, tied.current().config))  # the live config ties with an orphan
    dup = ctl.create_app("dup")
    dup.push(image="dup:1")
    dup.push(image="dup:2")
    ctl.drop_release_unique()
    dup.duplicate_version(2)  # versions repeat: release-order leaves it to a person
    ctl.failed_create_app("ghost")  # its only config: not an orphan to prune


def subjects_of_findings(findings, repair: str) -> set[tuple[str, str]]:
    """What the repair's checks report, as (table, row) or, for the per-app repairs, (table, app)."""
    if repair == "restore-latest":
        return {(f.object_table, f.app_uuid) for f in findings}
    if repair == "release-order":
        return {("api_release", f.app_uuid) for f in findings}
    return {(f.object_table, f.object_id) for f in findings}


def subjects_of_plan(plan: dict, repair: str) -> set[tuple[str, str]]:
    """What the plan plans or refuses, in the same terms."""
    actions = [a for a in plan["actions"] if a["repair"] == repair]
    refusals = [r for r in plan["refused"] if r["repair"] == repair]
    if repair in ("restore-latest", "release-order"):
        return {(a["table"], a["app"]["uuid"]) for a in actions} | {(r["table"], r["app"]["uuid"]) for r in refusals}
    return {(a["table"], a["row"]) for a in actions} | {(r["table"], r["row"]) for r in refusals}


@pytest.mark.parametrize("repair", REPAIRS)
@pytest.mark.parametrize("apps", [(), ("web", "shop", "tied", "dup", "lender")], ids=["all-apps", "some-apps"])
def test_the_planner_plans_exactly_what_its_checks_report(db, tmp_path, repair, apps):
    damaged(db)
    checks = [c.id for c in CATALOGUE.values() if c.repair == repair]
    findings = audit(db, checks, apps=apps)
    assert findings, f"the story gives {repair} nothing to do"
    scope = [arg for app in apps for arg in ("--app", app)]
    plan = make_plan(db, tmp_path / "p.json", "--repair", repair, *scope)
    assert subjects_of_plan(plan, repair) == subjects_of_findings(findings, repair)
    for finding in findings:  # the check says what the fix is
        assert finding.repair == (None if finding.manual else repair)
        if finding.manual:
            assert finding.manual in {r["why"] for r in plan["refused"]}


def test_the_newest_config_of_an_app_without_releases_is_not_offered_to_prune_orphans(hephy_db, tmp_path):
    ctl = hephy_db.controller()
    ghost = ctl.failed_create_app("ghost")
    config = ghost.latest_config()
    ctl.create_app("web").orphan_config(X="1")
    findings = {f.object_id: f for f in audit(hephy_db, ["orphan-config"], grace_seconds=0)}
    assert findings[config].repair is None and "App.create builds the next v1 on it" in str(findings[config].manual)
    assert all(f.repair == "prune-orphans" for uid, f in findings.items() if uid != config)
    explained = run("explain", "ghost", "--dsn", hephy_db.dsn, "--grace", "0")
    line = next(line for line in explained.stdout.splitlines() if "orphan-config" in line)
    assert "fix: manual" in line and "fix: prune-orphans" not in explained.stdout
    plan = make_plan(hephy_db, tmp_path / "p.json", "--repair", "prune-orphans", "--grace", "0")
    assert config not in {a["row"] for a in plan["actions"]}
    assert {r["row"] for r in plan["refused"]} == {config}


def test_an_audit_of_one_app_calls_orphan_what_an_audit_of_all_does(hephy_db):
    """A config used only by another app's release is no orphan, whichever apps are audited."""
    ctl = hephy_db.controller()
    web = ctl.create_app("web")
    web.push(image="web:1")
    web.config_set(A="1")
    borrowed = web.orphan_config(A="2")
    api = ctl.create_app("api")
    api.push(image="api:1")
    api.config_set(B="1")
    hephy_db.conn.execute("UPDATE api_release SET config_id = %s WHERE app_id = %s AND version = 2",
                          (borrowed, api.uuid))  # web's newest config, used by api v2 only
    everything = {f.object_id for f in audit(hephy_db, ["orphan-config"], grace_seconds=0)}
    web_only = {f.object_id for f in audit(hephy_db, ["orphan-config"], apps=["web"], grace_seconds=0)}
    assert borrowed not in everything
    assert web_only == everything & web_only and borrowed not in web_only
