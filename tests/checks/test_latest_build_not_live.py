"""latest-build-not-live: the newest build by ``created`` is not the live release's."""

from __future__ import annotations

from datetime import datetime, timezone

from tests.checks.stories import linear_history
from tests.helpers import audit, by_check

CHECK = "latest-build-not-live"


def findings(db, **kwargs):
    return by_check(audit(db, [CHECK], **kwargs), CHECK)


def test_failed_push_leaves_its_build_newest(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    live = web.push(image="web:1")
    web.failed_push(image="web:2")  # era A: orphan build; era C: failed v3 keeps it
    (finding,) = findings(db)
    # Deis up to 0019 diffs the next push against build_set.latest(): that push fails (§8);
    # later controllers never read it.
    pushes_read_it = db.migration <= 19
    assert finding.severity == ("critical" if pushes_read_it else "info") and finding.object_table == "api_build"
    assert finding.evidence["consequence"] == ("push" if pushes_read_it else "none")
    assert ("the next push diffs its procfile" in finding.message) == pushes_read_it
    assert finding.evidence["live_build"] == live.build and finding.object_id != live.build
    assert finding.evidence["cause"] == ("orphan" if ctl.era == "A" else "failed-release")
    assert [r["version"] for r in finding.related] == ([] if ctl.era == "A" else [3])


def test_rollback_to_an_older_build(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    web.push(image="web:1")  # v2
    v3 = web.push(image="web:2")  # v3
    web.rollback(2)  # v4
    (finding,) = findings(db)
    severity = "critical" if db.migration <= 19 else "info"  # the next push would fail on old Deis
    assert (finding.severity, finding.evidence["cause"], finding.object_id) == (severity, "rollback", v3.build)


def test_rollback_to_v1_without_build_on_old_deis(deis_old_db):
    ctl = deis_old_db.controller()
    web = ctl.create_app("web")
    v2 = web.push(image="web:1")
    web.rollback(1)  # v3 has no build, like v1 (deis/controller#539)
    (finding,) = findings(deis_old_db)
    assert finding.object_id == v2.build and finding.evidence["live_build"] is None
    assert finding.evidence["live_version"] == 3 and finding.evidence["cause"] == "rollback"
    assert "has no build" in finding.message


def test_config_only_and_linear_histories_are_quiet(db):
    ctl = db.controller()
    configs = ctl.create_app("configs")  # no build at all: nothing to compare
    configs.config_set(A="1")
    configs.config_set(B="2")
    linear_history(ctl.create_app("web"), 5)
    ctl.create_app("fresh")
    assert findings(db) == []


def test_a_newest_build_in_flight_is_skipped(hephy_db):
    ctl = hephy_db.controller()
    web = ctl.create_app("web")
    web.push()
    web.orphan_build(at=datetime.now(timezone.utc))
    assert findings(hephy_db) == []
    assert [f.evidence["cause"] for f in findings(hephy_db, grace_seconds=0)] == ["orphan"]


def test_app_restriction(db):
    ctl = db.controller()
    web, api = ctl.create_app("web"), ctl.create_app("api")
    for app in (web, api):
        app.push()
        app.orphan_build()
    assert [f.app_name for f in findings(db, apps=["web"])] == ["web"]
    assert len(findings(db)) == 2
