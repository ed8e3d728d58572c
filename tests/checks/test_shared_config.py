"""shared-config: a config used by several releases, with its blast radius and severity rule."""

from __future__ import annotations

from tests.checks.stories import linear_history
from tests.helpers import audit, by_check

CHECK = "shared-config"


def findings(db, **kwargs):
    return {f.object_id: f for f in by_check(audit(db, [CHECK], **kwargs), CHECK)}


def test_a_push_sharing_the_current_config_is_info(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    v2 = web.push()
    found = findings(db)
    assert list(found) == [v2.config]
    finding = found[v2.config]
    assert finding.severity == "info" and finding.evidence["reason"] == "adjacent"
    assert finding.evidence["blast_radius"] == {"releases": 2, "includes_live": True, "versions": [1, 2],
                                                "versions_truncated": False}
    assert [(r["version"], r["failed"]) for r in finding.related] == [(1, False), (2, False)]
    assert finding.related[1]["uuid"] == v2.uuid and "the live release v2" in finding.message


def test_a_failed_deploy_between_two_users_is_not_a_rollback(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    v2 = web.config_set(A="1")
    web.failed_config_set(B="2")  # era C: failed v3 with its own config
    web.push()  # shares v2's config
    finding = findings(db)[v2.config]
    assert finding.severity == "info" and finding.evidence["contiguous"] is True


def test_rollback_reuse_away_from_the_live_release_is_a_hazard(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    v2 = web.config_set(A="1")
    web.config_set(B="2")
    web.rollback(2)  # v4 reuses v2's config
    web.config_set(C="3")  # v5: live on a new config
    finding = findings(db)[v2.config]
    assert finding.severity == "info" and finding.evidence["reason"] == "rollback-reuse"
    assert finding.evidence["blast_radius"]["versions"] == [2, 4]
    assert finding.evidence["blast_radius"]["includes_live"] is False


def test_rollback_reuse_puts_the_live_release_in_an_old_rows_blast_radius(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    v2 = web.config_set(A="1")
    web.config_set(B="2")
    v4 = web.rollback(2)
    finding = findings(db)[v2.config]
    assert finding.severity == "info" and finding.evidence["reason"] == "rollback-reuse-live"
    assert finding.message.endswith("a hazard inside one app, not damage: nothing breaks unless the config is "
                                    "deleted through the ORM")
    assert finding.evidence["blast_radius"] == {"releases": 2, "includes_live": True, "versions": [2, 4],
                                                "versions_truncated": False}
    assert finding.evidence["live_release"] == v4.uuid
    assert "deleting v2's config would delete the live release v4" in finding.message


def test_shared_poisoned_latest_is_a_hazard_here(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    v2 = web.config_set(A="1")
    web.push()  # v3 shares v2's config, the newest
    web.rollback(1)  # v4: live on v1's config; the shared v2/v3 config stays latest()
    finding = findings(db)[v2.config]
    assert finding.severity == "info" and finding.evidence["reason"] == "shared-latest-not-live"
    assert finding.evidence["is_latest"] is True and finding.evidence["blast_radius"]["includes_live"] is False


def test_positions_not_version_numbers_decide_adjacency(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    web.config_set(A="1")  # v2
    v3 = web.config_set(B="2")
    web.push()  # v4 shares v3's config
    web.push()  # v5 too
    db.conn.execute("DELETE FROM api_release WHERE app_id = %s AND version = 4", (web.uuid,))
    finding = findings(db)[v3.config]
    assert finding.evidence["blast_radius"]["versions"] == [3, 5]
    assert finding.severity == "info" and finding.evidence["contiguous"] is True


def test_ledger_histories_share_nothing(db):
    ctl = db.controller(ledger=True)
    web = ctl.create_app("web")
    linear_history(web, 5)
    web.rollback(3)
    assert findings(db) == {}


def test_app_restriction(db):
    ctl = db.controller()
    for name in ("web", "api"):
        ctl.create_app(name).push()
    assert {f.app_name for f in findings(db, apps=["api"]).values()} == {"api"}
    assert len(findings(db)) == 2
