"""Repairs and rows dated in the future: restore-latest works whatever the poisoned row's date,
and no repair dates a row after now()."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.checks.test_future_dated import a_year_ahead, failed_config_set_from_a_clock_a_year_ahead
from tests.helpers import audit, by_check
from tests.reliability.faults import full_dump
from tests.repairs.helpers import make_plan, run


def test_restore_latest_moves_a_future_dated_poisoned_row_back_before_the_live_row(db, tmp_path):
    ctl, web, live = failed_config_set_from_a_clock_a_year_ahead(db)
    poisoned = web.latest_config()
    before = full_dump(db.conn)
    plan = make_plan(db, tmp_path / "p.json")  # the default repairs
    assert not [r for r in plan["refused"] if r["table"] == "api_config"], plan["refused"]
    made = datetime.fromisoformat(plan["created"])
    for action in plan["actions"]:  # no repair dates a row after now()
        if action["new"] and action["new"]["created"]:
            assert datetime.fromisoformat(action["new"]["created"]) <= made, action
    moved = [a for a in plan["actions"] if a["repair"] == "restore-latest" and a["row"] == poisoned]
    if ctl.era == "A":
        # old Deis: the poisoned row is an orphan, pruned before restore-latest plans
        assert [a["kind"] for a in plan["actions"] if a["row"] == poisoned] == ["prune"]
    else:
        (action,) = moved
        live_config = db.scalar("SELECT created FROM api_config WHERE uuid = %s", (live.config,))
        assert datetime.fromisoformat(action["new"]["created"]) == live_config - timedelta(microseconds=1)
        assert "after now() + 60s (future-dated)" in action["why"]
    result = run("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes", "--undo-file", str(tmp_path / "u.json"))
    assert result.exit_code == 0, result.output
    assert web.latest_config() == web.current().config == live.config
    assert by_check(audit(db), "latest-config-not-live") == []
    assert db.scalar("SELECT count(*) FROM api_config WHERE created > now()") == 0
    assert run("plan", "--dsn", db.dsn, "-o", str(tmp_path / "again.json"), "--detailed-exitcode").exit_code == 0
    assert run("undo", str(tmp_path / "u.json"), "--dsn", db.dsn, "--yes").exit_code == 0
    assert full_dump(db.conn) == before


def test_restore_latest_alone_on_a_future_dated_orphan(deis_old_db, tmp_path):
    ctl, web, live = failed_config_set_from_a_clock_a_year_ahead(deis_old_db)
    plan = make_plan(deis_old_db, tmp_path / "p.json", "--repair", "restore-latest")
    (action,) = plan["actions"]
    assert action["row"] == web.latest_config() and action["release"]["version"] == 3
    live_config = deis_old_db.scalar("SELECT created FROM api_config WHERE uuid = %s", (live.config,))
    assert datetime.fromisoformat(action["new"]["created"]) == live_config - timedelta(microseconds=1)
    assert run("apply", str(tmp_path / "p.json"), "--dsn", deis_old_db.dsn, "--yes").exit_code == 0
    assert web.latest_config() == live.config


def test_a_copy_for_a_future_dated_release_is_not_dated_after_now(hephy_db, tmp_path):
    ctl = hephy_db.controller()
    web = ctl.create_app("web")
    web.push()
    ahead = web.push(at=a_year_ahead())  # v3 shares v2's config, written by a clock a year ahead
    plan = make_plan(hephy_db, tmp_path / "p.json", "--repair", "unshare")
    (copy,) = [a for a in plan["actions"] if a["release"]["uuid"] == ahead.uuid]
    assert datetime.fromisoformat(copy["new"]["created"]) < datetime.fromisoformat(plan["created"])
    assert run("apply", str(tmp_path / "p.json"), "--dsn", hephy_db.dsn, "--yes").exit_code == 0
    assert hephy_db.scalar("SELECT count(*) FROM api_config WHERE created > now()") == 0


def test_nothing_is_planned_after_now_even_with_a_row_at_now(hephy_db, tmp_path):
    ctl = hephy_db.controller()
    web = ctl.create_app("web")
    web.push()
    web.orphan_config(at=datetime.now(timezone.utc), X="1")  # in flight
    plan = make_plan(hephy_db, tmp_path / "p.json")
    assert [r["why"] for r in plan["refused"] if r["repair"] == "restore-latest"] == [
        "the app has a config created within the in-flight window (300s before now to 60s after): a deploy may be "
        "in flight"]
