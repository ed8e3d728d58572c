"""orphan-config and orphan-build, on app stories of both eras."""

from __future__ import annotations

from datetime import datetime, timezone

from tests.helpers import audit, by_check


def test_failed_config_set_old_era_leaves_poisoned_orphan(deis_old_db):
    ctl = deis_old_db.controller()
    web = ctl.create_app("web")
    web.push(image="web:1")
    web.config_set(DEBUG="1")
    orphan_values = {"DEBUG": "1", "BROKEN": "yes"}
    web.failed_config_set(BROKEN="yes")
    found = by_check(audit(deis_old_db, ["orphan-config"]), "orphan-config")
    assert len(found) == 1
    (finding,) = found
    assert finding.severity == "warning" and finding.app_name == "web"  # boot re-saves it (§8)
    assert "boot (load_db_state_to_k8s) re-saves it" in finding.message
    assert finding.evidence["is_latest"] is True and finding.evidence["live_version"] == 3
    assert web.config_values(finding.object_id) == orphan_values


def test_older_orphan_is_info_and_new_era_failed_release_is_not_orphan(hephy_db):
    ctl = hephy_db.controller()
    web = ctl.create_app("web")
    web.push()
    old = web.orphan_config(UNCHANGED="1")
    web.config_set(A="1")
    web.failed_config_set(B="2")  # new era: the failed release keeps its config
    found = by_check(audit(hephy_db, ["orphan-config"]), "orphan-config")
    assert [(f.object_id, f.severity) for f in found] == [(old, "info")]  # nothing reads it
    assert found[0].message.endswith(": nothing reads it")


def test_orphan_build_from_failed_push(db):
    ctl = db.controller(era="A")
    web = ctl.create_app("web")
    web.push(image="web:1")
    web.failed_push(image="web:2")
    found = by_check(audit(db, ["orphan-build"]), "orphan-build")
    # build_set.latest(): the next push fails on Deis up to 0019, nothing reads it later (§8)
    severity = "critical" if db.migration <= 19 else "info"
    assert len(found) == 1 and found[0].severity == severity and found[0].evidence["is_latest"] is True


def test_healthy_histories_have_no_orphans(db):
    ctl = db.controller()
    for name in ("web", "api", "worker"):
        app = ctl.create_app(name)
        app.config_set(A="1")
        app.push()
        app.config_set(B="2")
        app.push()
        app.rollback(2)
    assert audit(db, ["orphan-config", "orphan-build"]) == []


def test_young_rows_are_in_flight_not_orphans(hephy_db):
    ctl = hephy_db.controller()
    web = ctl.create_app("web")
    web.orphan_config(at=datetime.now(timezone.utc), X="1")
    assert audit(hephy_db, ["orphan-config"]) == []
    assert len(audit(hephy_db, ["orphan-config"], grace_seconds=0)) == 1


def test_app_restriction(hephy_db):
    ctl = hephy_db.controller()
    web, api = ctl.create_app("web"), ctl.create_app("api")
    web.orphan_config(X="1")
    api.orphan_build()
    assert {f.app_name for f in audit(hephy_db, ["orphan-config", "orphan-build"], apps=["api"])} == {"api"}
    assert {f.app_name for f in audit(hephy_db, ["orphan-config", "orphan-build"])} == {"web", "api"}


def test_row_used_only_by_another_apps_release_is_no_orphan_in_any_scope(hephy_db):
    """Under --app the other apps' releases using the app's rows come from the xuse pass (one
    index scan for the rows in scope): a row only another app uses is no orphan there either."""
    ctl = hephy_db.controller()
    web, api = ctl.create_app("web"), ctl.create_app("api")
    web.push(image="web:1")
    api.push(image="api:1")
    borrowed = api.orphan_config(X="1")  # api's row ...
    lonely = api.orphan_build(image="api:lonely")  # ... and a real orphan next to it
    web.push(image="web:2")
    hephy_db.conn.execute("UPDATE api_release SET config_id = %s WHERE uuid = %s", (borrowed, web.current().uuid))
    for apps in (None, ["api"]):
        found = {f.object_id for f in audit(hephy_db, ["orphan-config", "orphan-build"], apps=apps)}
        assert borrowed not in found and lonely in found, apps
