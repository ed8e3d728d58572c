"""plan -> sql -> psql and plan -> apply -> undo, and every way a plan is refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo, sql

from repairs.sealed import checksum
from tests.helpers import login_role_dsn, psql_file
from tests.repairs.helpers import contents, ledger, make_plan, run, story


@pytest.fixture
def storied(make_db):
    """Two databases holding the same story: same content and dates, different uuids."""
    def make(migration: int = 28):
        db = make_db(migration)
        story(db.controller())
        return db
    return make


@pytest.mark.parametrize("migration", [19, 23, 28])
def test_sql_script_and_apply_reach_the_same_state(storied, tmp_path, migration):
    by_apply, by_psql = storied(migration), storied(migration)
    assert ledger(by_apply) == ledger(by_psql)
    make_plan(by_apply, tmp_path / "a.json")
    assert run("apply", str(tmp_path / "a.json"), "--dsn", by_apply.dsn, "--yes").exit_code == 0
    make_plan(by_psql, tmp_path / "b.json")
    result = run("plan", "sql", str(tmp_path / "b.json"), "-o", str(tmp_path / "b.sql"))
    assert result.exit_code == 0, result.output
    done = psql_file(by_psql.dsn, tmp_path / "b.sql")
    assert done.returncode == 0, done.stderr
    assert ledger(by_apply) == ledger(by_psql)
    for db in (by_apply, by_psql):
        again = run("plan", "--dsn", db.dsn, "-o", str(tmp_path / "again.json"), "--detailed-exitcode")
        assert again.exit_code == 0, again.output


def test_script_is_set_based_and_reviewable(storied, make_db, tmp_path):
    small = make_db(28)
    web = small.controller().create_app("web")
    web.push(image="web:1")
    big = storied(28)
    ctl = big.controller()
    for i in range(8):
        app = ctl.create_app(f"more-{i}")
        for step in range(6):
            app.push(image=f"x:{step}") if step % 2 else app.config_set(STEP=str(step))
        app.rollback(2)
    scripts = []
    for name, db in (("small", small), ("big", big)):
        plan = make_plan(db, tmp_path / f"{name}.json")
        run("plan", "sql", str(tmp_path / f"{name}.json"), "-o", str(tmp_path / f"{name}.sql"))
        scripts.append((len(plan["actions"]), (tmp_path / f"{name}.sql").read_text()))
    (few, small_sql), (many, big_sql) = scripts
    assert many > 10 * few

    def statements(text: str) -> int:
        return sum(1 for line in text.splitlines() if line.rstrip().endswith(";") and not line.startswith("--"))

    assert statements(small_sql) == statements(big_sql)
    assert big_sql.count("-- #") == many  # one comment per action
    assert "SET LOCAL lock_timeout" in big_sql and big_sql.rstrip().endswith("COMMIT;")


def test_rehearse_changes_nothing(storied, tmp_path):
    db = storied()
    before = contents(db)
    make_plan(db, tmp_path / "p.json")
    result = run("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes", "--rehearse")
    assert result.exit_code == 0, result.output
    assert "rolled back: nothing was changed" in result.output
    assert contents(db) == before
    assert not (tmp_path / "p.json.undo.json").exists()


def test_undo_restores_the_exact_pre_images(storied, tmp_path):
    db = storied(23)
    before = contents(db)
    make_plan(db, tmp_path / "p.json")
    result = run("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes", "--undo-file", str(tmp_path / "u.json"))
    assert result.exit_code == 0, result.output
    assert contents(db) != before
    undone = run("undo", str(tmp_path / "u.json"), "--dsn", db.dsn, "--yes")
    assert undone.exit_code == 0, undone.output
    assert contents(db) == before
    # every change is taken back already: a second undo says so and changes nothing
    twice = run("undo", str(tmp_path / "u.json"), "--dsn", db.dsn, "--yes")
    assert twice.exit_code == 0 and "already undone" in twice.output and "make a new plan" not in twice.output
    assert contents(db) == before


def test_stale_plan_is_refused_by_apply_and_by_the_script(storied, tmp_path):
    db = storied()
    plan = make_plan(db, tmp_path / "p.json")
    copy = next(a for a in plan["actions"] if a["kind"] == "copy" and a["table"] == "api_config")
    db.conn.execute("""UPDATE api_config SET "values" = '{"CHANGED": "1"}' WHERE uuid = %s""", (copy["row"],))
    before = contents(db)
    result = run("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes")
    assert result.exit_code == 4
    assert "stale plan" in result.output and f"#{copy['id']} unshare" in result.output
    assert contents(db) == before and not (tmp_path / "p.json.undo.json").exists()
    run("plan", "sql", str(tmp_path / "p.json"), "-o", str(tmp_path / "p.sql"))
    done = psql_file(db.dsn, tmp_path / "p.sql")
    assert done.returncode != 0 and "stale plan" in done.stderr and f"action #{copy['id']}" in done.stderr
    assert contents(db) == before


def _rewrite(path: Path, change, reseal: bool) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    if reseal:
        doc["checksum"] = checksum(doc)
    path.write_text(json.dumps(doc))


def test_edited_plan_is_refused(storied, tmp_path):
    db = storied()
    make_plan(db, tmp_path / "p.json")
    _rewrite(tmp_path / "p.json", lambda d: d["actions"]["rows"][0].__setitem__(3, "00000000-0000-4000-8000-000000000000"),
             reseal=False)
    before = contents(db)
    for args in (["apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes"], ["plan", "sql", str(tmp_path / "p.json")],
                 ["plan", "show", str(tmp_path / "p.json")]):
        result = run(*args)
        assert result.exit_code == 4 and "edited plan" in result.output and "checksum" in result.output
    assert contents(db) == before


def test_newer_format_version_is_refused(storied, tmp_path):
    db = storied()
    make_plan(db, tmp_path / "p.json")
    _rewrite(tmp_path / "p.json", lambda d: d.update(format_version=99), reseal=True)
    result = run("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes")
    assert result.exit_code == 4 and "format version 99" in result.output and "upgrade" in result.output


@pytest.mark.parametrize("damage", ["truncated", "not-json", "other-json"])
def test_truncated_or_foreign_plan_file_is_bad_input(storied, tmp_path, damage):
    db = storied()
    path = tmp_path / "p.json"
    make_plan(db, path)
    text = path.read_text()
    path.write_text({"truncated": text[: len(text) // 2], "not-json": "plan: yes\n", "other-json": "[1, 2]"}[damage])
    before = contents(db)
    result = run("apply", str(path), "--dsn", db.dsn, "--yes")
    assert result.exit_code == 3 and "not a plan file" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert contents(db) == before


def test_plan_from_another_database_is_refused(storied, tmp_path):
    here, there = storied(), storied()
    make_plan(here, tmp_path / "p.json")
    before = contents(there)
    result = run("apply", str(tmp_path / "p.json"), "--dsn", there.dsn, "--yes")
    assert result.exit_code == 4 and "other database" in result.output and here.name in result.output
    run("plan", "sql", str(tmp_path / "p.json"), "-o", str(tmp_path / "p.sql"))
    done = psql_file(there.dsn, tmp_path / "p.sql")
    assert done.returncode != 0 and "other database" in done.stderr
    assert contents(there) == before


def test_declined_confirmation_changes_nothing(storied, tmp_path):
    db = storied()
    make_plan(db, tmp_path / "p.json")
    before = contents(db)
    result = run("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, input="n\n")
    assert result.exit_code == 4 and "declined" in result.output
    assert "app web" in result.output  # the summary was shown before the question
    assert contents(db) == before
    accepted = run("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, input="y\n")
    assert accepted.exit_code == 0, accepted.output


def test_lock_conflict_aborts_with_exit_5(storied, tmp_path):
    db = storied()
    plan = make_plan(db, tmp_path / "p.json")
    row = plan["actions"][0]
    holder = psycopg.connect(db.dsn)
    try:
        holder.execute(sql.SQL("SELECT 1 FROM {} WHERE uuid = %s FOR UPDATE").format(sql.Identifier(row["table"])),
                       (row["row"],))
        before = contents(db)
        result = run("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes", "--lock-timeout", "200ms")
    finally:
        holder.close()
    assert result.exit_code == 5 and "lock conflict" in result.output
    assert contents(db) == before


def test_broken_invariant_rolls_back_with_exit_5(storied, tmp_path):
    db = storied()
    make_plan(db, tmp_path / "p.json")
    # something besides the plan changes a release in the same transaction
    db.conn.execute("""
        CREATE FUNCTION meddle() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN NEW.summary := 'meddled'; RETURN NEW; END $$;
        CREATE TRIGGER meddle BEFORE UPDATE ON api_release FOR EACH ROW EXECUTE PROCEDURE meddle();
    """)
    before = contents(db)
    result = run("apply", str(tmp_path / "p.json"), "--dsn", db.dsn, "--yes")
    assert result.exit_code == 5 and "invariant broken" in result.output and "own columns changed" in result.output
    assert contents(db) == before and not (tmp_path / "p.json.undo.json").exists()


def _drop_role(db, role: str) -> None:
    db.conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
    db.conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_select_only_role_is_refused_before_any_change(storied, tmp_path):
    db = storied()
    role = f"ro_{db.name[-8:]}"
    dsn = login_role_dsn(db, role, "ro-pw-5678", "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}")
    try:
        make_plan(db, tmp_path / "p.json")
        before = contents(db)
        result = run("apply", str(tmp_path / "p.json"), "--dsn", dsn, "--yes")
        assert result.exit_code == 4 and "missing privileges" in result.output
        assert f"GRANT INSERT, UPDATE, DELETE ON api_config TO {role}" in result.output
        assert contents(db) == before
    finally:
        _drop_role(db, role)


def test_hot_standby_is_refused(pg_server, storied, standby, tmp_path):
    from tests.reliability.standby import wait_for_replay

    db = storied()
    make_plan(db, tmp_path / "p.json")
    wait_for_replay(pg_server.admin_dsn, standby)
    params = conninfo.conninfo_to_dict(standby)
    params["dbname"] = db.name
    result = run("apply", str(tmp_path / "p.json"), "--dsn", conninfo.make_conninfo(**params), "--yes")
    assert result.exit_code == 4 and "hot standby" in result.output


def test_password_never_reaches_plan_script_or_undo_file(storied, tmp_path):
    db = storied()
    role, password = f"rw_{db.name[-8:]}", "pw-Secret-9f8e7d"
    dsn = login_role_dsn(db, role, password, "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}")
    try:
        url = "postgresql://{}:{}@/{}?host={}".format(role, password, db.name, conninfo.conninfo_to_dict(dsn)["host"])
        outputs = []
        for args in (["plan", "--dsn", url, "-o", str(tmp_path / "p.json")],
                     ["plan", "sql", str(tmp_path / "p.json"), "-o", str(tmp_path / "p.sql")],
                     ["apply", str(tmp_path / "p.json"), "--dsn", url, "--yes"]):
            result = run(*args)
            assert result.exit_code == 0, result.output
            outputs.append(result.output)
        files = [p.read_text() for p in (tmp_path / "p.json", tmp_path / "p.sql", tmp_path / "p.json.undo.json")]
        assert role in files[0]  # the target is described...
        for text in files + outputs:
            assert password not in text  # ...never with its password
        assert not re.search(r"password\s*=", files[0])
    finally:
        _drop_role(db, role)
