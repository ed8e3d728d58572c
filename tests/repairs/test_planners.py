"""The three repairs on realistic histories, on every schema generation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.helpers import audit
from tests.repairs.helpers import counts, ledger, make_plan, run, sharing, story


def _apply(db, path) -> None:
    result = run("apply", str(path), "--dsn", db.dsn, "--yes")
    assert result.exit_code == 0, result.output


def test_unshare_gives_every_release_its_own_rows(db, tmp_path):
    story(db.controller())
    before = ledger(db, dates=False)
    assert sharing(db) > 0
    plan = make_plan(db, tmp_path / "p.json", "--repair", "unshare")
    copies = plan["actions"]
    assert copies and {a["kind"] for a in copies} == {"copy"}
    for action in copies:
        release_created = db.scalar("SELECT created FROM api_release WHERE uuid = %s", (action["release"]["uuid"],))
        copy_created = datetime.fromisoformat(action["new"]["created"])
        # dated just before its release (restore-latest is not part of this plan)
        assert copy_created == release_created - timedelta(microseconds=1)
        first = db.scalar(f"SELECT min(version) FROM api_release WHERE {action['table'][4:]}_id = %s", (action["row"],))
        assert action["release"]["version"] > first  # the earliest release keeps the original
    _apply(db, tmp_path / "p.json")
    assert sharing(db) == 0
    after = ledger(db, dates=False)
    assert after["releases"] == before["releases"]  # same releases, same content
    grown = sum(1 for a in copies if a["table"] == "api_config")
    assert after["counts"]["api_config"] == before["counts"]["api_config"] + grown
    # copies keep app and owner of their original
    assert db.scalar(
        "SELECT count(*) FROM api_release r JOIN api_config c ON c.uuid = r.config_id "
        "WHERE c.app_id <> r.app_id OR c.owner_id <> (SELECT owner_id FROM api_app WHERE uuid = r.app_id)") == 0
    assert audit(db, ["shared-config", "shared-build"]) == []


def test_prune_orphans_keeps_young_rows_and_backs_up_rows(db, tmp_path):
    ctl = db.controller(era="A")
    web = ctl.create_app("web")
    web.push(image="web:1")
    old = web.orphan_config(OLD="1")
    old_build = web.orphan_build(image="never")
    young = web.orphan_config(at=datetime.now(timezone.utc), YOUNG="1")
    plan = make_plan(db, tmp_path / "p.json", "--repair", "prune-orphans")
    assert sorted(a["row"] for a in plan["actions"]) == sorted([old, old_build])
    images = {a["row"]: a["image"] for a in plan["actions"]}
    assert images[old]["uuid"] == old and '"OLD": "1"' in images[old]["values"]
    _apply(db, tmp_path / "p.json")
    assert db.scalar("SELECT count(*) FROM api_config WHERE uuid = ANY(%s::uuid[])", ([old, young],)) == 1
    assert db.scalar("SELECT count(*) FROM api_build WHERE uuid = %s", (old_build,)) == 0
    assert audit(db, ["orphan-config", "orphan-build"]) == []


def test_restore_latest_redates_the_live_row_without_new_rows(db, tmp_path):
    ctl = db.controller()
    web = ctl.create_app("web")
    web.push(image="web:1")
    web.config_set(DEBUG="1")
    web.failed_config_set(BROKEN="yes")  # poisons config_set.latest() in both eras
    live = web.current()
    before = counts(db)
    plan = make_plan(db, tmp_path / "p.json", "--repair", "restore-latest")
    (action,) = plan["actions"]
    assert (action["kind"], action["row"], action["release"]["version"]) == ("redate", live.config, live.version)
    _apply(db, tmp_path / "p.json")
    latest = db.scalar("SELECT uuid::text FROM api_config WHERE app_id = %s ORDER BY created DESC LIMIT 1", (web.uuid,))
    assert latest == live.config
    assert counts(db) == before
    assert audit(db, ["latest-config-not-live"]) == []
    assert run("plan", "--dsn", db.dsn, "-o", str(tmp_path / "again.json"), "--repair", "restore-latest",
               "--detailed-exitcode").exit_code == 0


def test_all_repairs_compose_and_leave_a_clean_ledger(db, tmp_path):
    story(db.controller())
    story_apps = ledger(db, dates=False)["releases"]
    plan = make_plan(db, tmp_path / "p.json")
    assert [a["repair"] for a in plan["actions"]] == sorted(
        (a["repair"] for a in plan["actions"]), key=["prune-orphans", "unshare", "restore-latest"].index)
    _apply(db, tmp_path / "p.json")
    assert ledger(db, dates=False)["releases"] == story_apps
    found = audit(db, ["orphan-config", "orphan-build", "shared-config", "shared-build", "latest-config-not-live",
                       "latest-build-not-live", "latest-ambiguous"])
    assert found == []
    again = run("plan", "--dsn", db.dsn, "-o", str(tmp_path / "again.json"), "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert "nothing to repair" in again.output


def test_app_scope_plans_only_that_app(hephy_db, tmp_path):
    story(hephy_db.controller())
    plan = make_plan(hephy_db, tmp_path / "p.json", "--app", "api")
    assert plan["actions"] and {a["app"]["name"] for a in plan["actions"]} == {"api"}
    assert plan["scope"]["apps"] == ["api"]


def test_cross_app_releases_are_left_alone_and_dangling_rows_not_touched(hephy_db, tmp_path):
    ctl = hephy_db.controller()
    web, api = ctl.create_app("web"), ctl.create_app("api")
    web.push(image="web:1")
    api.push(image="api:1")
    shared = web.release(2).config  # web's v1 and v2 share it
    # api's v2 points at web's config (cross-app): sharing is counted by row, across apps
    api.point_at(2, web)
    # web's v2 and a new v3 point at a build that does not exist (dangling)
    hephy_db.conn.execute("SET session_replication_role = replica")
    ghost = "00000000-0000-4000-8000-000000000001"
    hephy_db.conn.execute("UPDATE api_release SET build_id = %s WHERE app_id = %s AND version = 2", (ghost, web.uuid))
    web.rollback(2)
    hephy_db.conn.execute("SET session_replication_role = origin")
    plan = make_plan(hephy_db, tmp_path / "p.json", "--repair", "unshare")
    copies = {(a["app"]["name"], a["release"]["version"], a["row"]) for a in plan["actions"]}
    # web's own releases of the shared config are unshared; api's release is left alone
    assert copies == {("web", 2, shared), ("web", 3, shared)}
    refused = {(r["app"]["name"], r["row"]): r["why"] for r in plan["refused"]}
    assert "cross-app reference): left alone" in refused[("api", shared)]
    # a dangling reference shares nothing: no shared-build finding, so nothing for unshare to plan or
    # refuse (it is the dangling-reference finding, which has no automatic repair)
    assert ghost not in {a["row"] for a in plan["actions"]} | {r["row"] for r in plan["refused"]}
    show = run("plan", "show", str(tmp_path / "p.json"))
    assert show.exit_code == 0 and "NOT REPAIRED" in show.output


def _unshared_in_config_only(hephy_db, tmp_path, damage: str) -> tuple[dict, object]:
    """An app whose pushes share its config (unshare copies it) and whose builds are left as they
    are, with ``damage`` (``tie``: the live release is ambiguous; ``flight``: a build created now,
    a push in flight): the default plan, and the result of applying it."""
    web = hephy_db.controller().create_app("web")
    web.push(image="web:1")
    web.push(image="web:2")  # v3 reuses v2's config (and v1's): unshare copies it
    if damage == "tie":
        web.tie_releases(2, 3)
    else:
        web.orphan_build(image="web:3", at=datetime.now(timezone.utc))
    plan = make_plan(hephy_db, tmp_path / "p.json")
    assert {a["repair"] for a in plan["actions"]} == {"unshare"}
    assert {a["table"] for a in plan["actions"]} == {"api_config"}
    return plan, run("apply", str(tmp_path / "p.json"), "--dsn", hephy_db.dsn, "--yes")


def test_a_tied_live_release_spares_every_table_of_a_touched_app(hephy_db, tmp_path):
    """restore-latest refuses an app whose live release is ambiguous for both tables, not only the
    one the plan changes: apply verifies latest() in both for every app the plan touches, and the
    default plan of an app whose pushes shared its config was refused by its own apply (exit 5)."""
    plan, result = _unshared_in_config_only(hephy_db, tmp_path, "tie")
    assert sorted(r["table"] for r in plan["refused"] if r["repair"] == "restore-latest") == ["api_build", "api_config"]
    assert result.exit_code == 0, result.output
    assert sharing(hephy_db) == 0


def test_a_build_in_flight_spares_the_build_table_of_a_touched_app(hephy_db, tmp_path):
    """A build created within the in-flight window is build_set.latest() (not damage yet): the plan
    that copies the app's config says restore-latest leaves its builds alone, and applies."""
    plan, result = _unshared_in_config_only(hephy_db, tmp_path, "flight")
    refused = [(r["table"], r["why"]) for r in plan["refused"] if r["repair"] == "restore-latest"]
    assert [table for table, _ in refused] == ["api_build"] and "a deploy may be in flight" in refused[0][1]
    assert result.exit_code == 0, result.output
    assert sharing(hephy_db) == 0
