"""shared-build: a build used by several releases (NULL builds are no build)."""

from __future__ import annotations

from tests.checks.stories import linear_history
from tests.helpers import audit, by_check

CHECK = "shared-build"


def findings(db, **kwargs):
    return {f.object_id: f for f in by_check(audit(db, [CHECK], **kwargs), CHECK)}


def test_config_set_sharing_the_current_build_is_info(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    v2 = web.push()
    web.config_set(A="1")
    (finding,) = findings(db).values()
    assert finding.object_id == v2.build and finding.object_table == "api_build"
    assert finding.severity == "info"
    assert finding.evidence["blast_radius"]["versions"] == [2, 3]
    assert finding.evidence["blast_radius"]["includes_live"] is True


def test_releases_without_build_share_no_build(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    web.config_set(A="1")
    web.config_set(B="2")  # v1..v3 all without a build
    assert findings(db) == {}


def test_rollback_reuse_with_and_without_the_live_release(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    v2 = web.push(image="web:1")
    v3 = web.push(image="web:2")
    web.config_set(A="1")  # v4 shares v3's build, the newest
    web.rollback(2)  # v5 reuses v2's build
    found = findings(db)
    # sharing inside one app is a hazard, whatever its blast radius: info, and said so
    assert found[v2.build].severity == "info" and "a hazard inside one app, not damage" in found[v2.build].message
    assert found[v2.build].evidence["reason"] == "rollback-reuse-live"
    latest = found[v3.build]  # build_set.latest(), shared, not live (latest-build-not-live reports that)
    assert (latest.severity, latest.evidence["reason"]) == ("info", "shared-latest-not-live")
    web.push(image="web:3")  # v6: live moves to a new build
    web.config_set(B="2")  # v7 shares it
    found = findings(db)
    assert (found[v2.build].severity, found[v2.build].evidence["reason"]) == ("info", "rollback-reuse")
    assert found[v3.build].evidence["reason"] == "adjacent"


def test_ledger_histories_share_nothing(db):
    ctl = db.controller(ledger=True)
    web = ctl.create_app("web")
    linear_history(web, 6)
    web.rollback(2)
    assert findings(db) == {}


def test_app_restriction(db):
    ctl = db.controller()
    for name in ("web", "api"):
        app = ctl.create_app(name)
        app.push()
        app.config_set(A="1")
    assert {f.app_name for f in findings(db, apps=["web"]).values()} == {"web"}
    assert len(findings(db)) == 2
