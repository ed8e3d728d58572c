"""Repairs that never lie about their outcome, and an undo that survives real life (issue #12
cases 3 to 7; issue #13 case 11).  Cases 1 and 2 (a lost answer to COMMIT) are in
tests/reliability/test_commit_outcome.py, case 8 (privileges and roles) in test_roles.py."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from auditor.testbed.builder import App
from repairs.actions import ActionTable
from repairs.sealed import checksum
from tests.damage import DamagingController
from tests.helpers import messages, psql_file
from tests.repairs.helpers import as_older_undo, boot, contents, make_plan, read_plan, run, story, without_updated

#: The environment variable with the key that signs plan and undo files (repairs.sealed.KEY_ENV).
KEY_ENV = "CONTROLLER_AUDIT_PLAN_KEY"


def _storied(make_db, migration: int = 28):
    db = make_db(migration)
    story(db.controller())
    return db


def _apply(db, plan: Path, *extra: str):
    result = run("apply", str(plan), "--dsn", db.dsn, "--yes", *extra)
    assert result.exit_code in (0, 2), result.output
    return result


# -- case 3: an undo file is never overwritten ---------------------------------------------------

def test_a_second_apply_of_the_same_plan_name_keeps_the_first_undo_file(make_db, tmp_path, monkeypatch):
    db = _storied(make_db)
    monkeypatch.chdir(tmp_path)
    before = contents(db)
    assert run("plan", "--dsn", db.dsn, "--app", "web", "-o", "fix.plan").exit_code == 0
    first = _apply(db, Path("fix.plan"))
    assert "undo file: fix.plan.undo.json" in first.output
    web_done = contents(db)
    assert run("plan", "--dsn", db.dsn, "--app", "api", "-o", "fix.plan").exit_code == 0
    second = _apply(db, Path("fix.plan"))
    assert "undo file: fix.plan.undo-2.json (fix.plan.undo.json exists, kept)" in second.output
    assert "controller-audit undo fix.plan.undo-2.json" in second.output
    # both ways back exist, and each takes back its own apply
    assert run("undo", "fix.plan.undo-2.json", "--dsn", db.dsn, "--yes").exit_code == 0
    assert contents(db) == web_done
    assert run("undo", "fix.plan.undo.json", "--dsn", db.dsn, "--yes").exit_code == 0
    assert contents(db) == before


def test_an_existing_undo_file_named_by_option_is_refused_before_any_change(make_db, tmp_path):
    db = _storied(make_db)
    make_plan(db, tmp_path / "p.json")
    kept = tmp_path / "u.json"
    kept.write_text("the way back of an earlier apply\n")
    before = contents(db)
    result = run("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes", "--undo-file", str(kept))
    assert result.exit_code == 4, result.output
    assert messages(result.stderr).startswith(f"controller-audit: undo file exists: undo file {kept} exists")
    assert kept.read_text() == "the way back of an earlier apply\n" and contents(db) == before


# -- case 4: undo survives a controller boot --------------------------------------------------------

@pytest.mark.parametrize("migration", [19, 28])
def test_undo_after_a_controller_boot_restores_everything_it_changed(make_db, tmp_path, migration):
    db = _storied(make_db, migration)
    before = contents(db)
    make_plan(db, tmp_path / "p.json")
    _apply(db, tmp_path / "p.json", "--undo-file", str(tmp_path / "u.json"))
    resaved = set(boot(db))
    assert resaved
    undone = run("undo", str(tmp_path / "u.json"), "--dsn", db.dsn, "--yes")
    assert undone.exit_code == 0, undone.output
    # every row is back; only the boot's own `updated` stays on the rows it re-saved and undo kept
    assert without_updated(contents(db), resaved) == without_updated(before, resaved)


# -- case 5: a release made on a copy after the apply ---------------------------------------------

def test_undo_refuses_to_delete_a_copy_a_new_release_uses_and_offers_the_other_apps(make_db, tmp_path):
    db = _storied(make_db)
    before = contents(db)
    make_plan(db, tmp_path / "p.json")
    _apply(db, tmp_path / "p.json", "--undo-file", str(tmp_path / "u.json"))
    repaired = contents(db)
    # after the repair, a push to web: its new release reuses the live release's config, a copy
    uuid, owner_id = db.conn.execute("SELECT uuid::text, owner_id FROM api_app WHERE id = 'web'").fetchone()
    ctl = DamagingController(db.conn, start=datetime.now(timezone.utc), step=timedelta(seconds=1))
    pushed = App(ctl, uuid, "web", owner_id, "alice").push(image="web:after-repair")
    assert db.scalar("SELECT count(*) FROM api_release WHERE config_id = %s", (pushed.config,)) == 2
    after_push = contents(db)
    result = run("undo", str(tmp_path / "u.json"), "--dsn", db.dsn, "--yes")
    assert result.exit_code == 4, result.output
    line = messages(result.stderr).strip()
    assert line.startswith("controller-audit: cannot undo: ")
    assert f"release v{pushed.version} ({pushed.uuid}) of app web uses this copied config now" in line
    assert line.endswith(f"the other apps can still be undone: controller-audit undo {tmp_path / 'u.json'} --app api")
    assert contents(db) == after_push
    scoped = run("undo", str(tmp_path / "u.json"), "--dsn", db.dsn, "--yes", "--app", "api")
    assert scoped.exit_code == 0, scoped.output
    assert contents(db) != repaired
    # api is back to its pre-image; web keeps its repair (and its new release)
    api_before = {t: [r for r in rows if _app_of(db, r) == "api"] for t, rows in before.items()}
    api_now = {t: [r for r in rows if _app_of(db, r) == "api"] for t, rows in contents(db).items()}
    assert api_now == api_before
    again = run("undo", str(tmp_path / "u.json"), "--dsn", db.dsn, "--yes")
    assert again.exit_code == 4 and "; already undone: api; nothing was changed" in again.stderr
    assert "the other apps can still be undone" not in again.stderr


def _app_of(db, row_text: str) -> str | None:
    row = json.loads(row_text)
    app = row.get("app_id") or row.get("uuid")
    return db.scalar("SELECT id FROM api_app WHERE uuid = %s", (app,))


# -- case 6: already applied, already undone ---------------------------------------------------------

def test_second_apply_and_undo_say_already_done_in_one_line(make_db, tmp_path):
    db = _storied(make_db)
    before = contents(db)
    make_plan(db, tmp_path / "p.json")
    first = run("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes", "--detailed-exitcode",
                "--undo-file", str(tmp_path / "u.json"))
    assert first.exit_code == 2, first.output  # changes committed
    repaired = contents(db)
    again = run("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes", "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert again.stdout.strip().startswith(f"already applied: {tmp_path / 'p.json'}: every action is in effect")
    assert len(again.stdout.strip().splitlines()) == 1 and messages(again.stderr) == ""
    assert contents(db) == repaired and not (tmp_path / "p.json.undo.json").exists()
    undone = run("undo", str(tmp_path / "u.json"), "--dsn", db.dsn, "--yes", "--detailed-exitcode")
    assert undone.exit_code == 2, undone.output
    twice = run("undo", str(tmp_path / "u.json"), "--dsn", db.dsn, "--yes", "--detailed-exitcode")
    assert twice.exit_code == 0, twice.output
    assert twice.stdout.strip().startswith(f"already undone: {tmp_path / 'u.json'}: every change is taken back")
    assert "make a new plan" not in twice.output and len(twice.stdout.strip().splitlines()) == 1
    assert messages(twice.stderr) == ""
    assert contents(db) == before


def test_scripts_run_twice_say_already_applied_and_already_undone(make_db, tmp_path):
    db = _storied(make_db)
    before = contents(db)
    make_plan(db, tmp_path / "p.json")
    assert run("plan", "sql", str(tmp_path / "p.json"), "-o", str(tmp_path / "p.sql")).exit_code == 0
    assert psql_file(db.dsn, tmp_path / "p.sql").returncode == 0
    repaired = contents(db)
    rerun = psql_file(db.dsn, tmp_path / "p.sql")
    assert rerun.returncode == 0, rerun.stderr
    assert "controller-audit: already applied: every action is in effect; nothing to change" in rerun.stderr
    assert "stale" not in rerun.stderr and contents(db) == repaired
    # the psql path writes no undo file: the undo comes from an apply of the same plan on a twin
    twin = _storied(make_db)
    make_plan(twin, tmp_path / "t.json")
    _apply(twin, tmp_path / "t.json", "--undo-file", str(tmp_path / "u.json"))
    assert run("undo", "sql", str(tmp_path / "u.json"), "-o", str(tmp_path / "u.sql")).exit_code == 0
    done = psql_file(twin.dsn, tmp_path / "u.sql")
    assert done.returncode == 0, done.stderr
    twin_before = contents(twin)
    again = psql_file(twin.dsn, tmp_path / "u.sql")
    assert again.returncode == 0 and "controller-audit: already undone: every action is in effect" in again.stderr
    assert contents(twin) == twin_before
    assert contents(db) == repaired and contents(db) != before


def test_undo_sql_takes_the_repair_back_like_undo(make_db, tmp_path):
    db = _storied(make_db, 19)
    before = contents(db)
    make_plan(db, tmp_path / "p.json")
    _apply(db, tmp_path / "p.json", "--undo-file", str(tmp_path / "u.json"))
    result = run("undo", "sql", str(tmp_path / "u.json"), "-o", str(tmp_path / "u.sql"))
    assert result.exit_code == 0, result.output
    script = (tmp_path / "u.sql").read_text()
    assert "-- controller-audit repair script for undo file sha256:" in script and script.rstrip().endswith("COMMIT;")
    done = psql_file(db.dsn, tmp_path / "u.sql")
    assert done.returncode == 0, done.stderr
    assert contents(db) == before


def test_undo_sql_of_an_undo_file_without_columns_reads_them_from_the_database(make_db, tmp_path):
    db = _storied(make_db)
    before = contents(db)
    make_plan(db, tmp_path / "p.json")
    _apply(db, tmp_path / "p.json", "--undo-file", str(tmp_path / "u.json"))
    doc = as_older_undo(db, json.loads((tmp_path / "u.json").read_text()), 2)
    (tmp_path / "v2.json").write_text(json.dumps(doc))
    result = run("undo", "sql", str(tmp_path / "v2.json"), "--dsn", db.dsn, "-o", str(tmp_path / "u.sql"))
    assert result.exit_code == 0, result.output
    assert psql_file(db.dsn, tmp_path / "u.sql").returncode == 0
    assert contents(db) == before


# -- case 7: a plan is re-derived, not trusted -----------------------------------------------------

def _fingerprint(db, table: str, uuid: str) -> str:
    with db.conn.transaction():
        db.conn.execute("SET LOCAL timezone = 'UTC'")
        db.conn.execute("SET LOCAL datestyle = 'ISO, MDY'")
        return db.scalar(f"SELECT md5(t::text) FROM {table} t WHERE uuid = %s", (uuid,))


def _forge(path: Path, change) -> None:
    """Edit a plan file as an attacker would: change it, fix its row counts, empty its
    invariants, and re-seal it (the checksum is not a signature)."""
    doc = json.loads(path.read_text())
    change(doc)
    doc["expected_changes"] = ActionTable.from_json(doc["actions"]).expected_changes()
    doc["invariants"] = {}
    doc["checksum"] = checksum(doc)
    path.write_text(json.dumps(doc))


def _add_action(doc: dict, op: list, app_uuid: str, row: list) -> None:
    actions = doc["actions"]
    if op not in actions["ops"]:
        actions["ops"].append(op)
    if not any(a[0] == app_uuid for a in actions["apps"]):
        actions["apps"].append([app_uuid, None])
    actions["whys"].append("routine")
    row[1] = actions["ops"].index(op)
    row[2] = next(i for i, a in enumerate(actions["apps"]) if a[0] == app_uuid)
    row[10] = len(actions["whys"]) - 1
    actions["rows"].append(row)


def _refused_everywhere(db, plan: Path, tmp_path: Path, kind: str, text: str) -> None:
    """apply, apply --rehearse and the psql script all refuse, and nothing changes."""
    before = contents(db)
    for args in (["apply", str(plan), "--dsn", db.dsn, "--yes"], ["apply", str(plan), "--dsn", db.dsn, "--rehearse"]):
        result = run(*args)
        assert result.exit_code == 4, result.output
        assert messages(result.stderr).startswith(f"controller-audit: {kind}: ") and text in result.stderr, result.stderr
    sql = run("plan", "sql", str(plan), "-o", str(tmp_path / "forged.sql"))
    if sql.exit_code == 0:
        done = psql_file(db.dsn, tmp_path / "forged.sql")
        assert done.returncode != 0 and text in done.stderr, done.stderr
    else:
        assert sql.exit_code == 4 and text in sql.stderr
    assert contents(db) == before
    assert not list(tmp_path.glob("*.undo*.json"))


def test_an_undo_only_action_in_a_resealed_plan_is_refused(make_db, tmp_path):
    db = _storied(make_db)
    make_plan(db, tmp_path / "p.json")
    web = db.scalar("SELECT uuid::text FROM api_app WHERE id = 'web'")
    owner = db.scalar("SELECT owner_id FROM api_app WHERE id = 'web'")
    evil = "00000000-0000-4000-8000-00000000e711"
    image = {"uuid": evil, "app_id": web, "owner_id": owner, "created": "2099-01-01T00:00:00+00:00",
             "updated": "2099-01-01T00:00:00+00:00", "values": '{"DATABASE_URL": "postgres://evil@attacker/db"}',
             "memory": "{}", "cpu": "{}", "tags": "{}", "registry": "{}", "healthcheck": "{}",
             "lifecycle_post_start": "{}", "lifecycle_pre_stop": "{}", "termination_grace_period": "{}"}

    def add(doc):
        _add_action(doc, ["prune-orphans", "reinsert", "api_config"], web,
                    [len(doc["actions"]["rows"]) + 1, 0, 0, evil, None, None, None, None, None, None, 0])
        doc["actions"]["images"][str(len(doc["actions"]["rows"]))] = image

    _forge(tmp_path / "p.json", add)
    _refused_everywhere(db, tmp_path / "p.json", tmp_path, "foreign action", "only an undo file may hold")


def test_a_forged_redate_into_the_future_is_refused(make_db, tmp_path):
    db = _storied(make_db)
    make_plan(db, tmp_path / "p.json")
    # the failed release's config (api v4 failed a push and kept its config), dated 2099: latest() forever
    failed, config, app = db.conn.execute(
        "SELECT r.uuid::text, r.config_id::text, r.app_id::text FROM api_release r JOIN api_app a ON a.uuid = r.app_id "
        "WHERE a.id = 'api' AND r.failed ORDER BY r.version DESC LIMIT 1").fetchone()

    def add(doc):
        _add_action(doc, ["restore-latest", "redate", "api_config"], app,
                    [len(doc["actions"]["rows"]) + 1, 0, 0, config, _fingerprint(db, "api_config", config), failed,
                     4, _fingerprint(db, "api_release", failed), None, "2099-01-01T00:00:00.000000+00:00", 0])

    _forge(tmp_path / "p.json", add)
    _refused_everywhere(db, tmp_path / "p.json", tmp_path, "stale plan", "dated in the future")


def test_a_copy_for_the_release_that_keeps_the_original_is_refused(make_db, tmp_path):
    db = _storied(make_db)
    plan = make_plan(db, tmp_path / "p.json")
    copy = next(a for a in plan["actions"] if a["kind"] == "copy" and a["table"] == "api_config")
    keeper = db.scalar("SELECT uuid::text FROM api_release WHERE config_id = %s ORDER BY version LIMIT 1",
                       (copy["row"],))

    def retarget(doc):
        row = next(r for r in doc["actions"]["rows"] if r[0] == copy["id"])
        row[5], row[7] = keeper, _fingerprint(db, "api_release", keeper)

    _forge(tmp_path / "p.json", retarget)
    _refused_everywhere(db, tmp_path / "p.json", tmp_path, "stale plan", "it keeps the original")


def test_emptied_invariants_are_still_verified(make_db, tmp_path):
    db = _storied(make_db)
    make_plan(db, tmp_path / "p.json")
    _forge(tmp_path / "p.json", lambda doc: None)  # only the invariants emptied
    # something besides the plan dates the copies into the future: latest() is no longer the live release's
    db.conn.execute("""
        CREATE FUNCTION postdate() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN NEW.created := '2099-01-01'; RETURN NEW; END $$;
        CREATE TRIGGER postdate BEFORE INSERT ON api_config FOR EACH ROW EXECUTE PROCEDURE postdate();
    """)
    before = contents(db)
    result = run("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes")
    assert result.exit_code == 5, result.output
    assert "invariant broken" in result.stderr and "config_set.latest() returns" in result.stderr
    assert contents(db) == before


def test_signed_plans_and_undo_files_with_a_key(make_db, tmp_path, monkeypatch):
    db = _storied(make_db)
    make_plan(db, tmp_path / "unsigned.json")
    monkeypatch.setenv(KEY_ENV, "a-key-only-the-operators-have")
    before = contents(db)
    refused = run("apply", str(tmp_path / "unsigned.json"), "--dsn", db.dsn, "--yes")
    assert refused.exit_code == 4 and "unsigned plan" in refused.stderr and contents(db) == before
    make_plan(db, tmp_path / "p.json")
    assert json.loads((tmp_path / "p.json").read_text())["signature"].startswith("hmac-sha256:")
    forged = tmp_path / "forged.json"
    forged.write_text((tmp_path / "p.json").read_text())
    _forge(forged, lambda doc: None)  # re-sealed: the checksum fits, the signature does not
    result = run("apply", str(forged), "--dsn", db.dsn, "--yes")
    assert result.exit_code == 4 and "bad plan signature" in result.stderr and contents(db) == before
    _apply(db, tmp_path / "p.json", "--undo-file", str(tmp_path / "u.json"))
    assert run("undo", str(tmp_path / "u.json"), "--dsn", db.dsn, "--yes").exit_code == 0
    assert contents(db) == before
    monkeypatch.setenv(KEY_ENV, "another-key")
    wrong = run("plan", "show", str(tmp_path / "p.json"))
    assert wrong.exit_code == 4 and "bad plan signature" in wrong.stderr


@pytest.mark.parametrize("blank", ["", "  "])
def test_an_empty_key_is_refused_not_taken_for_no_key(make_db, tmp_path, monkeypatch, blank):
    """``CONTROLLER_AUDIT_PLAN_KEY`` set but empty (a secret that failed to load) used to turn signing
    off: an unsigned plan applied.  Now plan, plan show, apply and undo refuse with one line (exit 3),
    nothing written or changed."""
    db = _storied(make_db)
    make_plan(db, tmp_path / "unsigned.json")
    monkeypatch.setenv(KEY_ENV, blank)
    before, files = contents(db), sorted(p.name for p in tmp_path.iterdir())
    line = ("controller-audit: bad usage: CONTROLLER_AUDIT_PLAN_KEY is set but empty: give it the key, or unset it "
            "to read and write unsigned plan and undo files")
    for args in (["plan", "--dsn", db.dsn, "-o", str(tmp_path / "new.json")],
                 ["plan", "show", str(tmp_path / "unsigned.json")],
                 ["apply", str(tmp_path / "unsigned.json"), "--dsn", db.dsn, "--yes"]):
        result = run(*args)
        assert result.exit_code == 3, (args, result.output)
        assert result.stderr.splitlines()[-1] == line
    assert contents(db) == before and sorted(p.name for p in tmp_path.iterdir()) == files


# -- issue #13 case 11: prune-orphans and apps without releases; a stale kept original -------------

def test_the_config_of_an_app_without_releases_is_not_pruned(make_db, tmp_path):
    db = make_db(28)
    ctl = db.controller()
    story(ctl)
    ghost = ctl.failed_create_app("ghost")
    config = ghost.latest_config()
    plan = make_plan(db, tmp_path / "p.json", "--repair", "prune-orphans")
    assert config not in {a["row"] for a in plan["actions"]}
    (refusal,) = [r for r in plan["refused"] if r["row"] == config]
    assert "App.create builds the next v1 on it" in refusal["why"] and "app-without-release" in refusal["why"]
    shown = run("plan", "show", str(tmp_path / "p.json"))
    assert "NOT REPAIRED (prune-orphans, config " + config in shown.output
    _apply(db, tmp_path / "p.json")
    assert db.scalar("SELECT count(*) FROM api_config WHERE uuid = %s", (config,)) == 1


def test_a_plan_whose_kept_original_lost_its_release_is_refused(make_db, tmp_path):
    db = _storied(make_db)
    plan = make_plan(db, tmp_path / "p.json")
    copy = next(a for a in plan["actions"] if a["kind"] == "copy" and a["table"] == "api_config"
                and db.scalar("SELECT count(*) FROM api_release WHERE config_id = %s", (a["row"],)) == 3)
    keeper = db.scalar("SELECT uuid::text FROM api_release WHERE config_id = %s ORDER BY version LIMIT 1",
                       (copy["row"],))
    db.conn.execute("DELETE FROM api_release WHERE uuid = %s", (keeper,))
    _refused_everywhere(db, tmp_path / "p.json", tmp_path, "stale plan", "it keeps the original")
    assert read_plan(tmp_path / "p.json")["actions"]  # the plan itself is untouched


def test_a_foreign_action_is_named_with_its_article(make_db, tmp_path):
    """Issue #17: "is an unshare uncopy", not "is a unshare uncopy"."""
    db = _storied(make_db)
    make_plan(db, tmp_path / "p.json")
    web = db.scalar("SELECT uuid::text FROM api_app WHERE id = 'web'")

    def add(doc):
        _add_action(doc, ["unshare", "uncopy", "api_config"], web,
                    [len(doc["actions"]["rows"]) + 1, 0, 0, "00000000-0000-4000-8000-00000000e712", None, None, None,
                     None, None, None, 0])

    _forge(tmp_path / "p.json", add)
    result = run("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes")
    assert result.exit_code == 4
    assert "is an unshare uncopy of api_config, which only an undo file may hold" in result.stderr, result.stderr


def test_a_copy_moved_to_another_apps_release_is_refused(make_db, tmp_path):
    """The stale check reads a planned row's app and its release's app and pointer as locked
    (``ca_seen``): a copy re-aimed at another app's release, fingerprints right, is refused."""
    db = _storied(make_db)
    plan = make_plan(db, tmp_path / "p.json")
    copy = next(a for a in plan["actions"] if a["kind"] == "copy" and a["table"] == "api_config")
    foreign = db.scalar("SELECT uuid::text FROM api_release WHERE app_id <> %s ORDER BY version LIMIT 1",
                        (copy["app"]["uuid"],))

    def retarget(doc):
        row = next(r for r in doc["actions"]["rows"] if r[0] == copy["id"])
        row[5], row[7] = foreign, _fingerprint(db, "api_release", foreign)

    _forge(tmp_path / "p.json", retarget)
    _refused_everywhere(db, tmp_path / "p.json", tmp_path, "stale plan",
                        "its release is not a release of this app that uses this config")


def test_a_copy_claimed_for_another_app_is_refused(make_db, tmp_path):
    """...and a copy whose action names another app than the row's is refused by the row's app."""
    db = _storied(make_db)
    plan = make_plan(db, tmp_path / "p.json")
    copy = next(a for a in plan["actions"] if a["kind"] == "copy" and a["table"] == "api_config")
    other = db.scalar("SELECT uuid::text FROM api_app WHERE uuid <> %s ORDER BY id LIMIT 1", (copy["app"]["uuid"],))

    def reassign(doc):
        if not any(a[0] == other for a in doc["actions"]["apps"]):
            doc["actions"]["apps"].append([other, None])
        row = next(r for r in doc["actions"]["rows"] if r[0] == copy["id"])
        row[2] = next(i for i, a in enumerate(doc["actions"]["apps"]) if a[0] == other)

    _forge(tmp_path / "p.json", reassign)
    _refused_everywhere(db, tmp_path / "p.json", tmp_path, "stale plan", "the config belongs to another app")


def test_a_plan_missing_one_copy_of_a_row_breaks_the_unshared_invariant(make_db, tmp_path):
    """The ``unshared`` invariant fires by itself: a re-sealed plan without one of a config's
    copies leaves that config used by two releases of its app; nothing else is wrong."""
    db = make_db(28)
    web = db.controller().create_app("web")
    for _ in range(3):
        web.push()  # each push reuses the config: one config, three or more releases
    plan = make_plan(db, tmp_path / "p.json", "--repair", "unshare")
    copies = [a for a in plan["actions"] if a["kind"] == "copy" and a["table"] == "api_config"]
    row = copies[0]["row"]
    assert len([a for a in copies if a["row"] == row]) >= 2

    def drop_one(doc):
        doc["actions"]["rows"] = [r for r in doc["actions"]["rows"] if r[0] != copies[0]["id"]]

    _forge(tmp_path / "p.json", drop_one)
    before = contents(db)
    result = run("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes")
    assert result.exit_code == 5, result.output
    assert "invariant broken" in result.stderr and f"config {row} is used by 2 releases" in result.stderr
    assert contents(db) == before
