"""release-order, and the live release as the controller picks it (newest by created, not the
highest version): histories the controller writes when a clock goes backwards, SQL now() ties
two releases, or versions repeat without the unique constraint (§5, §8)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from tests.helpers import audit, by_check

CHECK = "release-order"


def clock_went_backwards(db):
    """v1..v3, then a controller host whose clock is 10 minutes behind pushes v4: v4 is the
    highest version but not the newest by created, so the controller keeps numbering from v3."""
    ctl = db.controller()
    web = ctl.create_app("web")
    web.push(image="web:1")  # v2
    v3 = web.config_set(DEBUG="1")  # v3
    v4 = web.push(image="web:2", at=ctl.clock - timedelta(minutes=10))  # v4, dated before v3
    return ctl, web, v3, v4


def test_a_clock_that_went_backwards_breaks_the_next_deploy_and_is_reported(db):
    ctl, web, v3, v4 = clock_went_backwards(db)
    # the controller's own next deploy: version = release_set.latest().version + 1 = 4, which exists
    with pytest.raises(psycopg.errors.UniqueViolation):
        web.config_set(AFTER="1")
    (finding,) = by_check(audit(db, [CHECK], apps=["web"]), CHECK)
    assert finding.severity == "critical" and finding.object_table == "api_app" and finding.object_id == web.uuid
    assert finding.evidence["problems"] == ["out-of-order"]
    assert finding.evidence["newest_versions"] == [3] and finding.evidence["highest_version"] == 4
    assert finding.evidence["next_version"] == 4 and finding.evidence["next_version_exists"] is True
    assert "release_set.latest() (the newest release by created) is v3" in finding.message
    assert "numbers the next release v4, which exists" in finding.message
    assert "fails on UNIQUE(app_id, version)" in finding.message


def test_the_live_release_is_the_newest_by_created_in_every_check(db):
    """The tool used to take v4 (highest version) as live: it reported build_set.latest() as not
    the live release's (v4's build is dated before v2's) and nothing about the order."""
    ctl, web, v3, v4 = clock_went_backwards(db)
    findings = audit(db, apps=["web"])
    assert {f.check for f in findings if f.severity != "info"} == {CHECK}
    assert by_check(findings, "latest-build-not-live") == by_check(findings, "latest-config-not-live") == []
    shared = {f.object_id: f for f in by_check(findings, "shared-config")}
    assert shared[v3.config].evidence["live_version"] == 3  # the controller's live release


def test_releases_tied_on_created_are_ambiguous_never_broken_silently(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    web.push()
    web.config_set(A="1")
    web.push()  # v4
    web.tie_releases(3, 4)  # a hand-written fix ran both in one transaction: SQL now()
    (finding,) = by_check(audit(db, [CHECK]), CHECK)
    assert finding.severity == "critical" and finding.evidence["problems"] == ["tie"]
    assert finding.evidence["newest_versions"] == [3, 4]
    assert "releases v3, v4 share the newest created" in finding.message
    # checks comparing with the live release skip the ambiguous app instead of picking one
    web.orphan_config(X="1")
    assert by_check(audit(db, ["latest-config-not-live"]), "latest-config-not-live") == []


def test_releases_that_did_not_fail_tied_behind_a_failed_newest(hephy_db):
    ctl = hephy_db.controller()
    web = ctl.create_app("web")
    web.push()
    web.config_set(A="1")  # v3
    web.tie_releases(2, 3)
    web.failed_push()  # v4, failed, newest and highest: the next version is fine
    (finding,) = by_check(audit(hephy_db, [CHECK]), CHECK)
    assert finding.evidence["problems"] == ["live-tie"] and finding.evidence["live_versions"] == [2, 3]
    assert "the controller's live release (deploy, scale, config:set, boot) may be any of them" in finding.message


@pytest.mark.parametrize("migration", [19, 23, 28])
def test_repeated_versions_are_reported(make_db, migration):
    db = make_db(migration)
    ctl = db.controller()
    ctl.drop_release_unique()
    web = ctl.create_app("web")
    web.push()
    web.config_set(A="1")  # v3
    web.duplicate_version(3)  # two deploys raced without UNIQUE(app_id, version)
    (finding,) = by_check(audit(db, [CHECK]), CHECK)
    assert finding.evidence["problems"] == ["duplicate-versions"] and finding.evidence["duplicate_versions"] == [3]
    assert finding.severity == "warning"  # the next deploy (v4) works; a rollback to v3 fails
    assert "versions repeat (v3)" in finding.message
    web.duplicate_version(2)  # now the newest release by created is a v2: the next version (v3) exists
    (finding,) = by_check(audit(db, [CHECK]), CHECK)
    assert finding.severity == "critical"
    assert finding.evidence["problems"] == ["out-of-order", "duplicate-versions"]


def test_controller_histories_are_in_order(db):
    ctl = db.controller()
    for name in ("web", "api"):
        app = ctl.create_app(name)
        app.push()
        app.config_set(A="1")
        app.rollback(2)
        app.failed_push()
    assert by_check(audit(db, [CHECK]), CHECK) == []


def a_newest_highest_release_from_a_clock_a_year_ahead(db):
    """v3, the newest release and the highest version, written by a controller host whose clock
    ran a year ahead: every release the controller writes until then is dated before it."""
    ctl = db.controller()
    web = ctl.create_app("web")
    web.push()  # v2
    v3 = web.config_set(at=datetime.now(timezone.utc) + timedelta(days=365), A="1")
    return ctl, web, v3


def test_a_future_dated_newest_highest_release_breaks_the_second_deploy_and_is_reported(db):
    ctl, web, v3 = a_newest_highest_release_from_a_clock_a_year_ahead(db)
    (finding,) = by_check(audit(db, [CHECK], apps=["web"]), CHECK)
    assert finding.severity == "critical" and finding.object_id == web.uuid
    assert finding.evidence["problems"] == ["future-newest"]
    assert finding.evidence["newest_versions"] == [3] and finding.evidence["highest_version"] == 3
    assert "v3, the highest version and release_set.latest(), is dated" in finding.message
    assert "every next release is numbered v4" in finding.message
    assert finding.manual is None  # the opt-in repair moves it back
    # what the controller does: the first deploy is v4, dated now, so v3 stays latest() and live ...
    now = datetime.now(timezone.utc)
    v4 = web.config_set(at=now, B="2")
    assert v4.version == 4 and web.current().version == 3
    # ... and the second is numbered v4 again
    with pytest.raises(psycopg.errors.UniqueViolation):
        web.config_set(at=now + timedelta(seconds=1), C="3")


def test_a_future_dated_newest_release_within_the_skew_is_in_flight_not_reported(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    web.push()
    web.config_set(at=datetime.now(timezone.utc) + timedelta(seconds=30), A="1")
    assert by_check(audit(db, [CHECK]), CHECK) == []
