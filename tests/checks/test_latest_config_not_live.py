"""latest-config-not-live: the newest config by ``created`` is not the live release's."""

from __future__ import annotations

from datetime import datetime, timezone

from tests.checks.stories import linear_history
from tests.helpers import audit, by_check

CHECK = "latest-config-not-live"


def findings(db, **kwargs):
    return by_check(audit(db, [CHECK], **kwargs), CHECK)


def test_failed_config_set_leaves_a_poisoned_latest(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    web.push(image="web:1")
    live = web.config_set(DEBUG="1")
    failed = web.failed_config_set(DEBUG="0")  # era A: orphan config; era C: failed v4 keeps it
    (finding,) = findings(db)
    # config:set merges over the live release's config from Deis v2.1 on (§8): what reads
    # the poisoned row is boot's re-save, so it is a warning, not critical.
    assert finding.severity == "warning" and finding.app_name == "web"
    assert finding.evidence["consequence"] == "boot" and "boot (load_db_state_to_k8s) re-saves it" in finding.message
    assert "config:set" not in finding.message
    assert finding.object_table == "api_config" and finding.object_id != live.config
    assert web.config_values(finding.object_id) == {"DEBUG": "0"}
    evidence = finding.evidence
    assert evidence["live_version"] == 3 and evidence["live_config"] == live.config
    assert evidence["latest_created"] > evidence["live_config_created"]
    if ctl.era == "A":
        assert evidence["cause"] == "orphan" and finding.related == []
        assert "used by no release" in finding.message
    else:
        assert evidence["cause"] == "failed-release"
        assert [(r["version"], r["failed"]) for r in finding.related] == [(4, True)]
        assert finding.related[0]["uuid"] == failed.uuid and "failed release(s) v4" in finding.message


def test_changed_nothing_409_leaves_an_orphan_on_the_new_era(hephy_db):
    ctl = hephy_db.controller()
    web = ctl.create_app("web")
    web.push()
    web.orphan_config()  # 409 "changed nothing": the new config stays, no release
    (finding,) = findings(hephy_db)
    assert (finding.severity, finding.evidence["cause"]) == ("warning", "orphan")


def test_rollback_leaves_the_rolled_back_from_config_newest(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    web.config_set(A="1")  # v2
    v3 = web.config_set(B="2")  # v3
    web.rollback(2)  # v4 reuses v2's config: v3's stays the newest
    (finding,) = findings(db)
    assert finding.severity == "warning" and finding.evidence["cause"] == "rollback"
    assert finding.object_id == v3.config and finding.evidence["live_version"] == 4
    assert [r["version"] for r in finding.related] == [3] and "v3 (rollback)" in finding.message


def test_rollback_to_the_newest_config_and_healthy_histories_are_quiet(db):
    ctl = db.controller()
    linear_history(ctl.create_app("web"), 6)
    ctl.create_app("fresh")  # v1 only
    config_only = ctl.create_app("configs")
    config_only.config_set(A="1")
    config_only.config_set(B="2")
    back = ctl.create_app("back")
    back.config_set(A="1")
    back.push()
    back.rollback(2)
    back.rollback(3)  # back on v3's config, the newest
    assert findings(db) == []


def test_a_newest_config_in_flight_is_skipped(hephy_db):
    ctl = hephy_db.controller()
    web = ctl.create_app("web")
    web.orphan_config(at=datetime.now(timezone.utc), X="1")
    assert findings(hephy_db) == []
    assert len(findings(hephy_db, grace_seconds=0)) == 1


def test_apps_without_a_live_release_are_skipped(hephy_db):
    ctl = hephy_db.controller()
    web = ctl.create_app("web")
    web.orphan_config(X="1")
    hephy_db.conn.execute("UPDATE api_release SET failed = true WHERE app_id = %s", (web.uuid,))
    assert findings(hephy_db) == []


def test_a_live_config_tied_for_newest_is_left_to_latest_ambiguous(hephy_db):
    ctl = hephy_db.controller()
    web = ctl.create_app("web")
    web.config_set(A="1")
    web.orphan_config(at=ctl.clock, B="2")  # dated like the live config (a tie by SQL now())
    assert hephy_db.scalar("SELECT count(*) FROM api_config WHERE app_id = %s AND created = %s",
                           (web.uuid, ctl.clock)) == 2
    assert findings(hephy_db) == []
    assert len(by_check(audit(hephy_db, ["latest-ambiguous"]), "latest-ambiguous")) == 1


def test_app_restriction(hephy_db):
    ctl = hephy_db.controller()
    web, api = ctl.create_app("web"), ctl.create_app("api")
    web.failed_config_set(X="1")
    api.failed_config_set(Y="1")
    assert [f.app_name for f in findings(hephy_db, apps=["api"])] == ["api"]
    assert sorted(f.app_name for f in findings(hephy_db)) == ["api", "web"]


def test_what_a_poisoned_latest_breaks_follows_the_generation():
    """§4/§8: Deis v2.0 (migrations before 0010) merges config:set over config_set.latest();
    from v2.1 on config:set merges over the live release's config and only boot and App.create
    read it.  Deis up to 0019 diffs pushes against build_set.latest(); later ones never read it."""
    from auditor.core.detect import Generation
    from checks._latest import consequence

    def generation(migration: int) -> Generation:
        return Generation("deis" if migration <= 23 else "hephy", migration, f"{migration:04d}_x", migration >= 20,
                          migration >= 26, {})

    assert consequence("config", generation(8))[:1] == ("critical",)
    assert "the next config:set merges over it" in consequence("config", generation(8))[1]
    for migration in (10, 19, 23, 28):
        severity, text, effect = consequence("config", generation(migration))
        assert (severity, effect) == ("warning", "boot") and "config:set" not in text
    assert consequence("build", generation(19))[0] == "critical"
    assert consequence("build", generation(20))[0] == consequence("build", generation(28))[0] == "info"
