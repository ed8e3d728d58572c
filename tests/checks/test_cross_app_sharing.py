"""Sharing is counted by row, across apps; a reference to a row that does not exist is dangling,
never shared.  The cascade of an ORM delete follows the row, whatever app uses it (§8)."""

from __future__ import annotations

from tests.helpers import audit, by_check


def cross_app(db):
    """Release v2 of app ``shop`` points at the config of app ``billing``, whose own live
    release uses it too; shop's next config:set... reuses it (the controller copies the live
    release's foreign reference into every new release)."""
    ctl = db.controller()
    billing = ctl.create_app("billing")
    billing.config_set(PLAN="pro")  # v2: billing's live release, on config C
    shop = ctl.create_app("shop")
    shop.push(image="shop:1")  # v2
    config = shop.point_at(2, billing)  # a hand-written "fix": shop v2 now uses billing's C
    return ctl, billing, shop, config


def test_a_row_shared_across_apps_is_damage_and_names_the_app_the_cascade_crosses_into(db):
    ctl, billing, shop, config = cross_app(db)
    (finding,) = by_check(audit(db, ["shared-config"]), "shared-config")
    assert finding.object_id == config and finding.app_name == "billing"
    # deleting C, or app billing, through the ORM removes shop's live release v2
    assert finding.severity == "critical" and finding.evidence["reason"] == "cross-app"
    assert finding.evidence["crosses_into"] == ["shop"]
    assert finding.evidence["blast_radius"] == {"releases": 2, "includes_live": True, "foreign_live": True, "apps": 2}
    assert [(a["app"]["name"], a["versions"], a["owner"]) for a in finding.evidence["apps"]] == [
        ("billing", [2], True), ("shop", [2], False)]
    assert "the cascade crosses into app shop" in finding.message
    assert "would delete app shop's v2 (its live release v2) too" in finding.message
    assert sorted((r["app"], r["version"]) for r in finding.related) == [("billing", 2), ("shop", 2)]


def test_the_cross_app_row_is_seen_from_either_app_under_app(db):
    ctl, billing, shop, config = cross_app(db)
    for app in ("shop", "billing"):
        found = by_check(audit(db, ["shared-config"], apps=[app]), "shared-config")
        assert [(f.object_id, f.evidence["reason"], f.evidence["crosses_into"]) for f in found] == [
            (config, "cross-app", ["shop"])], app


def test_a_cross_app_row_with_both_apps_in_scope_is_the_whole_databases_finding(db):
    """Both apps under --app: the other app's release using the row is in scope (read through
    ``foreign_rel``, not the scan of the pointer index, which leaves the scope's releases out)."""
    ctl, billing, shop, config = cross_app(db)
    checks = ["shared-config", "cross-app-reference"]
    everything = sorted(audit(db, checks), key=repr)
    assert {f.check for f in everything} == set(checks)
    for apps in (["shop", "billing"], ["billing", "shop"]):
        assert sorted(audit(db, checks, apps=apps), key=repr) == everything, apps


def test_the_foreign_reference_spreads_and_stays_one_finding(db):
    ctl, billing, shop, config = cross_app(db)
    shop.push(image="shop:2")  # v3 reuses the live release's config: billing's C
    (finding,) = by_check(audit(db, ["shared-config"]), "shared-config")
    assert finding.evidence["blast_radius"]["releases"] == 3
    assert [(a["app"]["name"], a["versions"]) for a in finding.evidence["apps"]] == [("billing", [2]), ("shop", [2, 3])]
    assert len(by_check(audit(db, ["cross-app-reference"]), "cross-app-reference")) == 2


def test_a_foreign_row_off_the_live_release_is_a_warning(db):
    ctl, billing, shop, config = cross_app(db)
    shop.config_set(OWN="1")  # v3: shop's own config again (its config:set merges over billing's values)
    billing.config_set(PLAN="max")  # billing moves on too: C is now nobody's live config
    (finding,) = by_check(audit(db, ["shared-config"]), "shared-config")
    assert finding.severity == "warning" and finding.evidence["blast_radius"]["foreign_live"] is False
    assert "would delete app shop's v2 too" in finding.message


def test_dangling_ids_are_never_shared(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    web.config_set(A="1")
    web.push()  # v2 and v3 share v2's config
    ghost = "00000000-0000-4000-8000-0000000000c0"
    with db.conn.transaction():
        db.conn.execute("SET LOCAL session_replication_role = replica")
        db.conn.execute("UPDATE api_release SET config_id = %s WHERE app_id = %s AND version IN (2, 3)",
                        (ghost, web.uuid))
    assert by_check(audit(db, ["shared-config"]), "shared-config") == []
    assert len(by_check(audit(db, ["dangling-reference"]), "dangling-reference")) == 2
