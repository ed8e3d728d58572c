"""cross-app-reference: releases using another app's config or build."""

from __future__ import annotations

from tests.helpers import audit

CHECK = "cross-app-reference"


def _two_apps(db):
    ctl = db.controller()
    web, api = ctl.create_app("web"), ctl.create_app("api")
    for app in (web, api):
        app.push()
        app.config_set(A="1")
    return ctl, web, api


def test_release_repointed_at_another_apps_config(db):
    _, web, api = _two_apps(db)
    live = web.current()
    foreign = api.current().config
    db.conn.execute("UPDATE api_release SET config_id = %s WHERE uuid = %s", (foreign, live.uuid))
    (finding,) = audit(db, [CHECK])
    assert (finding.severity, finding.app_name, finding.object_table, finding.object_id) == (
        "critical", "web", "api_release", live.uuid)
    assert finding.related == [{"table": "api_config", "uuid": foreign, "app": {"uuid": api.uuid, "name": "api"}}]
    assert finding.evidence["is_live"] is True and finding.evidence["version"] == live.version
    assert "live release" in finding.message and f"config {foreign} of app api" in finding.message


def test_release_repointed_at_another_apps_build(db):
    _, web, api = _two_apps(db)
    old = web.release(2)
    db.conn.execute("UPDATE api_release SET build_id = %s WHERE uuid = %s", (api.current().build, old.uuid))
    (finding,) = audit(db, [CHECK])
    assert finding.object_id == old.uuid and finding.evidence["is_live"] is False
    assert [r["table"] for r in finding.related] == ["api_build"]
    assert finding.related[0]["app"]["name"] == "api" and finding.evidence["build_app"] == api.uuid


def test_config_and_build_both_foreign_is_one_finding(db):
    _, web, api = _two_apps(db)
    theirs = api.current()
    db.conn.execute("UPDATE api_release SET config_id = %s, build_id = %s WHERE uuid = %s",
                    (theirs.config, theirs.build, web.current().uuid))
    (finding,) = audit(db, [CHECK])
    assert [(r["table"], r["uuid"]) for r in finding.related] == [
        ("api_config", theirs.config), ("api_build", theirs.build)]
    assert " and build " in finding.message


def test_shared_config_moved_to_another_app_flags_every_release_using_it(db):
    _, web, api = _two_apps(db)
    shared = web.release(1).config  # v1 (create) and v2 (push) share it
    db.conn.execute("UPDATE api_config SET app_id = %s WHERE uuid = %s", (api.uuid, shared))
    found = audit(db, [CHECK])
    assert sorted((f.app_name, f.evidence["version"]) for f in found) == [("web", 1), ("web", 2)]
    assert all(f.related[0]["uuid"] == shared for f in found)


def test_failed_release_with_foreign_build_is_reported(hephy_db):
    ctl = hephy_db.controller()
    web, api = ctl.create_app("web"), ctl.create_app("api")
    api.push()
    failed = web.failed_push()
    assert failed is not None
    hephy_db.conn.execute("UPDATE api_release SET build_id = %s WHERE uuid = %s", (api.current().build, failed.uuid))
    (finding,) = audit(hephy_db, [CHECK])
    assert finding.evidence["failed"] is True and finding.evidence["is_live"] is False
    assert finding.severity == "critical"


def test_healthy_histories_with_rollbacks_and_failures(db):
    ctl = db.controller()
    for name in ("web", "api"):
        app = ctl.create_app(name)
        app.push()
        app.config_set(A="1")
        app.failed_config_set(B="2")
        app.push()
        app.rollback(2)
        app.failed_push()
    assert audit(db, [CHECK]) == []


def test_app_restriction_reports_only_the_release_side(db):
    _, web, api = _two_apps(db)
    db.conn.execute("UPDATE api_release SET config_id = %s WHERE uuid = %s", (api.current().config, web.current().uuid))
    db.conn.execute("UPDATE api_release SET build_id = %s WHERE uuid = %s", (web.current().build, api.release(2).uuid))
    assert {f.app_name for f in audit(db, [CHECK])} == {"web", "api"}
    (only_web,) = audit(db, [CHECK], apps=["web"])
    assert only_web.app_name == "web"
    # The other app is out of scope but still named in the finding.
    assert only_web.related[0]["app"] == {"uuid": api.uuid, "name": "api"}
    (only_api,) = audit(db, [CHECK], apps=["api"])
    assert only_api.app_name == "api" and only_api.related[0]["app"]["name"] == "web"
