"""The opt-in release-order repair: the smallest re-dating that makes the highest version the
newest release by created, shown with before/after, checked by the invariants, and the
controller's next deploy works again afterwards."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.checks.test_release_order import a_newest_highest_release_from_a_clock_a_year_ahead, clock_went_backwards
from tests.helpers import audit, by_check
from tests.reliability.faults import full_dump
from tests.repairs.helpers import make_plan, run


def _apply(db, path, *extra: str):
    result = run("apply", str(path), "--dsn", db.dsn, "--yes", *extra)
    assert result.exit_code == 0, result.output
    return result


def test_the_highest_version_moves_one_microsecond_past_the_others_and_deploys_work_again(db, tmp_path):
    ctl, web, v3, v4 = clock_went_backwards(db)
    before = full_dump(db.conn)
    plan = make_plan(db, tmp_path / "p.json", "--repair", "release-order", "--repair", "restore-latest")
    ordered = [a for a in plan["actions"] if a["repair"] == "release-order"]
    assert [(a["kind"], a["table"], a["row"], a["release"]["version"]) for a in ordered] == [
        ("redate", "api_release", v4.uuid, 4)]
    assert datetime.fromisoformat(ordered[0]["new"]["created"]) == v3.created + timedelta(microseconds=1)
    assert plan["invariants"]["release_order_apps"] == [web.uuid]
    shown = run("plan", "show", str(tmp_path / "p.json")).output
    assert f"re-date release {v4.uuid} to {ordered[0]['new']['created']}" in shown
    assert f"v4's created {v4.created.astimezone(timezone.utc).isoformat(timespec='microseconds')} becomes" in shown
    assert "THIS CHANGES THE LIVE RELEASE: the controller's live release (newest by created, not failed) becomes v4 " \
           "instead of v3" in shown
    # v4 becomes live: its build must become build_set.latest() too, in the same plan
    assert any(a["repair"] == "restore-latest" and a["row"] == v4.build for a in plan["actions"])
    _apply(db, tmp_path / "p.json", "--undo-file", str(tmp_path / "u.json"))
    assert by_check(audit(db), "release-order") == [] and by_check(audit(db), "latest-build-not-live") == []
    assert web.current().version == 4
    assert web.config_set(AFTER="1").version == 5  # the controller's next deploy works again
    # and the way back is exact (the deploy above is taken away first)
    db.conn.execute("DELETE FROM api_release WHERE app_id = %s AND version = 5", (web.uuid,))
    db.conn.execute("DELETE FROM api_config WHERE app_id = %s AND \"values\" LIKE '%%AFTER%%'", (web.uuid,))
    assert run("undo", str(tmp_path / "u.json"), "--dsn", db.dsn, "--yes").exit_code == 0
    assert full_dump(db.conn) == before


def test_release_order_is_never_in_the_default_plan(db, tmp_path):
    ctl, web, v3, v4 = clock_went_backwards(db)
    plan = make_plan(db, tmp_path / "p.json")
    assert plan["scope"]["repairs"] == ["prune-orphans", "unshare", "restore-latest"]
    assert not [a for a in plan["actions"] if a["table"] == "api_release" or a["repair"] == "release-order"]
    # restore-latest works toward the controller's live release (v3), never toward the highest version
    assert v4.build not in {a["row"] for a in plan["actions"] if a["repair"] == "restore-latest"}
    explained = run("explain", "web", "--dsn", db.dsn).output
    assert "--repair release-order" in explained and "BROKEN: the next release would be v4; v4 exists" in explained


def test_a_tie_is_broken_by_the_highest_version(db, tmp_path):
    ctl = db.controller()
    web = ctl.create_app("web")
    web.push()
    web.config_set(A="1")
    v4 = web.push()
    tied = web.tie_releases(3, 4)
    plan = make_plan(db, tmp_path / "p.json", "--repair", "release-order")
    (action,) = plan["actions"]
    assert action["row"] == v4.uuid and datetime.fromisoformat(action["new"]["created"]) == tied + timedelta(
        microseconds=1)
    assert "releases v3, v4 share the newest created" in action["why"]
    _apply(db, tmp_path / "p.json")
    assert by_check(audit(db, ["release-order"]), "release-order") == []


def test_a_future_dated_release_is_moved_back_never_overtaken(db, tmp_path):
    ctl = db.controller()
    web = ctl.create_app("web")
    web.push()  # v2
    v3 = web.config_set(A="1")
    web.redate_release(2, datetime.now(timezone.utc) + timedelta(days=365))  # v2 written by a clock a year ahead
    plan = make_plan(db, tmp_path / "p.json", "--repair", "release-order")
    (action,) = plan["actions"]
    assert action["release"]["version"] == 2
    assert datetime.fromisoformat(action["new"]["created"]) < v3.created  # just before the highest version
    assert "it was dated in the future; moved back, never overtaken" in action["why"]
    _apply(db, tmp_path / "p.json")
    assert db.scalar("SELECT count(*) FROM api_release WHERE created > now()") == 0
    assert by_check(audit(db, ["release-order", "future-dated"]), "release-order") == []
    assert web.config_set(B="2").version == 4


def test_a_future_dated_newest_highest_release_is_moved_back_and_deploys_work_again(db, tmp_path):
    ctl, web, v3 = a_newest_highest_release_from_a_clock_a_year_ahead(db)
    v2 = web.release(2)
    explained = run("explain", "web", "--dsn", db.dsn).output
    assert "FUTURE-DATED: every later release is dated before it" in explained
    assert "BROKEN: the next release would be v4, dated before v3, which stays release_set.latest()" in explained
    before = full_dump(db.conn)
    plan = make_plan(db, tmp_path / "p.json", "--repair", "release-order", "--repair", "restore-latest")
    (action,) = [a for a in plan["actions"] if a["repair"] == "release-order"]
    assert (action["kind"], action["row"], action["release"]["version"]) == ("redate", v3.uuid, 3)
    # v3's config, written by the same clock, is config_set.latest() through every config:set: it
    # moves back too, to just after the app's newest other config
    (config,) = [a for a in plan["actions"] if a["repair"] == "restore-latest"]
    assert config["row"] == v3.config
    assert datetime.fromisoformat(config["new"]["created"]) == db.scalar(
        "SELECT max(created) FROM api_config WHERE app_id = %s AND uuid <> %s", (web.uuid, v3.config)
    ) + timedelta(microseconds=1)
    assert "(future-dated): every config the controller writes until then is dated before it" in config["why"]
    # the smallest change: just after the app's newest other release, never after now()
    assert datetime.fromisoformat(action["new"]["created"]) == v2.created + timedelta(microseconds=1)
    assert "it was dated in the future; moved back, never overtaken" in action["why"]
    assert "the live release stays v3" in action["why"]
    _apply(db, tmp_path / "p.json", "--undo-file", str(tmp_path / "u.json"))
    assert db.scalar("SELECT count(*) FROM api_release WHERE created > now()") == 0
    assert by_check(audit(db, ["release-order", "future-dated"]), "release-order") == []
    assert by_check(audit(db, ["future-dated"]), "future-dated") == []
    assert web.current().version == 3
    now = datetime.now(timezone.utc)
    assert web.config_set(at=now, B="2").version == 4  # the controller's deploys work again ...
    assert web.config_set(at=now + timedelta(seconds=1), C="3").version == 5  # ... the second one too
    assert web.current().version == 5 and web.latest_config() == web.current().config
    db.conn.execute("DELETE FROM api_release WHERE app_id = %s AND version > 3", (web.uuid,))
    db.conn.execute("DELETE FROM api_config WHERE app_id = %s AND (\"values\" LIKE '%%\"B\"%%' "
                    "OR \"values\" LIKE '%%\"C\"%%')", (web.uuid,))
    assert run("undo", str(tmp_path / "u.json"), "--dsn", db.dsn, "--yes").exit_code == 0
    assert full_dump(db.conn) == before


@pytest.mark.parametrize("migration", [19, 28])
def test_repeated_versions_are_refused_not_guessed(make_db, tmp_path, migration):
    db = make_db(migration)
    ctl = db.controller()
    ctl.drop_release_unique()
    web = ctl.create_app("web")
    web.push()
    web.config_set(A="1")
    web.duplicate_version(2)
    plan = make_plan(db, tmp_path / "p.json", "--repair", "release-order")
    assert plan["actions"] == []
    (refused,) = plan["refused"]
    assert refused["repair"] == "release-order" and "versions repeat (v2)" in refused["why"]
    assert "not repaired by guesswork" in refused["why"]


@pytest.mark.parametrize(("trigger", "problem"), [
    ("UPDATE api_release SET created = created - interval '1 second' WHERE app_id = NEW.app_id AND version = 1",
     "its created is not as planned"),
    ("UPDATE api_release SET summary = 'changed' WHERE app_id = NEW.app_id AND version = 1",
     "its own columns changed"),
])
def test_the_invariants_allow_only_the_planned_created(hephy_db, tmp_path, trigger, problem):
    ctl, web, v3, v4 = clock_went_backwards(hephy_db)
    make_plan(hephy_db, tmp_path / "p.json", "--repair", "release-order")
    before = full_dump(hephy_db.conn)
    # something else rewrites another release in the same transaction (a trigger stands in for it)
    hephy_db.conn.execute(f"""
        CREATE FUNCTION meddle() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.version = 4 THEN {trigger}; END IF; RETURN NEW; END $$""")
    hephy_db.conn.execute("CREATE TRIGGER meddle AFTER UPDATE OF created ON api_release FOR EACH ROW "
                          "EXECUTE PROCEDURE meddle()")
    result = run("apply", str(tmp_path / "p.json"), "--dsn", hephy_db.dsn, "--yes")
    assert result.exit_code == 5, result.output
    assert "invariant broken" in result.stderr and problem in result.stderr
    assert full_dump(hephy_db.conn) == before
