"""future-dated and the clock rule: "in flight" is created within [now - grace, now + skew];
anything later was written by a controller clock ahead of the database's, and is never hidden."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.helpers import audit, by_check

CHECK = "future-dated"


def a_year_ahead() -> datetime:
    return datetime.now(timezone.utc) + timedelta(days=365)


def failed_config_set_from_a_clock_a_year_ahead(db):
    """A controller host with a wrong clock writes a failed config:set a year ahead: an orphan
    config on old Deis, a failed release with its config on Deis 2.7+ and Hephy."""
    ctl = db.controller()
    web = ctl.create_app("web")
    web.push(image="web:1")
    live = web.config_set(DEBUG="1")
    web.failed_config_set(at=a_year_ahead(), DEBUG="0")
    return ctl, web, live


def test_a_future_dated_poisoned_latest_is_reported_not_hidden_as_in_flight(db):
    ctl, web, live = failed_config_set_from_a_clock_a_year_ahead(db)
    findings = audit(db, apps=["web"])
    future = {f.object_table: f for f in by_check(findings, CHECK)}
    config = future["api_config"]
    assert config.severity == "critical" and config.evidence["newest"] is True
    assert config.evidence["ahead_seconds"] > 364 * 86400
    assert "it stays config_set.latest() through every config:set" in config.message
    if ctl.era == "C":  # the failed release is dated a year ahead too, and is the newest release
        release = future["api_release"]
        assert release.severity == "critical" and release.evidence["version"] == 4
        assert "the controller numbers every next release v5" in release.message
    else:
        assert set(future) == {"api_config"}
    (latest,) = by_check(findings, "latest-config-not-live")  # no longer "younger than the grace period"
    assert latest.evidence["latest_future_dated"] is True and latest.evidence["live_version"] == 3
    assert "dated in the future" in latest.message


def test_rows_within_the_skew_are_in_flight_and_later_ones_are_not(hephy_db):
    ctl = hephy_db.controller()
    web = ctl.create_app("web")
    web.push()
    web.orphan_config(at=datetime.now(timezone.utc) + timedelta(seconds=30), X="1")  # within the default 60 s
    assert audit(hephy_db, [CHECK, "orphan-config", "latest-config-not-live"]) == []
    skewless = audit(hephy_db, [CHECK, "orphan-config", "latest-config-not-live"], skew_seconds=0)
    assert sorted(f.check for f in skewless) == [CHECK, "latest-config-not-live", "orphan-config"]


def test_a_future_dated_row_that_is_not_the_newest_is_a_warning(hephy_db):
    ctl = hephy_db.controller()
    web = ctl.create_app("web")
    web.push()
    ahead = a_year_ahead()
    first = web.orphan_build(at=ahead)
    newest = web.orphan_build(at=ahead + timedelta(minutes=1))
    found = {f.object_id: f for f in by_check(audit(hephy_db, [CHECK]), CHECK)}
    assert found[first].severity == "warning" and "it becomes the newest once" in found[first].message
    # Hephy never reads build_set.latest(): a future-dated newest build is a warning there
    assert found[newest].severity == "warning" and found[newest].evidence["newest"] is True


def test_a_future_dated_newest_build_breaks_pushes_on_old_deis(deis_old_db):
    ctl = deis_old_db.controller()
    web = ctl.create_app("web")
    web.push()
    build = web.orphan_build(at=a_year_ahead())
    (finding,) = by_check(audit(deis_old_db, [CHECK]), CHECK)
    assert (finding.object_id, finding.severity) == (build, "critical")
    assert "the next push diffs its procfile against it" in finding.message


def test_healthy_histories_have_nothing_in_the_future(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    web.push()
    web.config_set(A="1")
    assert by_check(audit(db, [CHECK]), CHECK) == []
