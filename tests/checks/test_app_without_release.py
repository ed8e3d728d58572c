"""app-without-release: ``apps:create`` failed between the app and release v1."""

from __future__ import annotations

from datetime import datetime, timezone

from tests.checks.stories import linear_history
from tests.helpers import audit, by_check

CHECK = "app-without-release"


def findings(db, **kwargs):
    return by_check(audit(db, [CHECK], **kwargs), CHECK)


def test_failed_app_creation(db):
    ctl = db.controller()
    ghost = ctl.failed_create_app("ghost")
    linear_history(ctl.create_app("web"), 3)
    (finding,) = findings(db)
    assert finding.severity == "warning" and finding.app_name == "ghost"
    assert (finding.object_table, finding.object_id) == ("api_app", ghost.uuid)
    assert finding.evidence["configs"] == 1 and [r["table"] for r in finding.related] == ["api_config"]


def test_only_failed_releases_still_count_as_releases(hephy_db):
    ctl = hephy_db.controller()
    web = ctl.create_app("web")
    hephy_db.conn.execute("UPDATE api_release SET failed = true WHERE app_id = %s", (web.uuid,))
    assert findings(hephy_db) == []


def test_an_app_creation_in_flight_is_skipped(db):
    ctl = db.controller()
    ctl.failed_create_app("new", at=datetime.now(timezone.utc))
    assert findings(db) == []
    assert [f.app_name for f in findings(db, grace_seconds=0)] == ["new"]


def test_app_restriction(db):
    ctl = db.controller()
    ctl.failed_create_app("ghost")
    ctl.failed_create_app("spook")
    assert [f.app_name for f in findings(db, apps=["spook"])] == ["spook"]
    assert len(findings(db)) == 2
