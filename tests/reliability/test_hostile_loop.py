"""Hostile names and values through the whole repair loop: plan, ``plan sql`` run by psql, apply,
undo.  Quotes, semicolons, backslashes, unicode, newlines and 100 kB strings in app names, user
names, config values, images and procfiles come out exactly as they went in."""

from __future__ import annotations

import json

import pytest

from tests.helpers import psql_file
from tests.reliability.faults import cli, full_dump
from tests.reliability.test_bad_input import NASTY_NAMES, NASTY_VALUES
from tests.repairs.helpers import ledger

OWNER = "o'malley; -- \\ \u00fcser"


def names(migration: int) -> list[str]:
    """The hostile app names, cut to what ``api_app.id`` holds (24 characters before 0023)."""
    return [name[: 24 if migration < 23 else 63] for name in NASTY_NAMES]


def hostile_story(ctl, migration: int) -> None:
    """Every repair (prune, unshare, restore-latest) on apps with hostile names and contents."""
    for i, name in enumerate(names(migration)):
        app = ctl.create_app(name, owner=OWNER)
        app.push(image=f"reg/{name[:20]}:1 ';--", procfile={"web": "sh -c 'echo \"$X\"; \\\\'"}, sha="a" * 40)
        app.config_set(**NASTY_VALUES)
        app.failed_config_set(BROKEN="'; DROP TABLE api_app; --")  # era A: orphan; era C: failed release
        app.push(image=f"reg/{i}:2 \u2603")
        app.rollback(3)
        app.orphan_config(EXTRA="\\'\u0000-free but odd \t\n")
        app.orphan_build(image="orphan:\"latest\";")


@pytest.mark.parametrize("migration", [19, 28])
def test_hostile_content_round_trips_through_psql_apply_and_undo(make_db, tmp_path, migration):
    by_apply, by_psql = make_db(migration), make_db(migration)
    for db in (by_apply, by_psql):
        hostile_story(db.controller(), migration)
    assert ledger(by_apply) == ledger(by_psql)
    before, content_before = full_dump(by_apply.conn), ledger(by_apply, dates=False)["releases"]
    checked = cli("check", "--dsn", by_apply.dsn, "--format", "json")
    assert checked.returncode in (1, 2), checked.stderr
    assert {f["app"]["name"] for f in json.loads(checked.stdout)["findings"] if f["app"]} == set(names(migration))

    plan_a, plan_b = tmp_path / "a.json", tmp_path / "b.json"
    assert cli("plan", "--dsn", by_apply.dsn, "-o", str(plan_a)).returncode == 0
    shown = cli("plan", "show", str(plan_a))
    assert shown.returncode == 0 and all(name in shown.stdout for name in names(migration))
    applied = cli("apply", str(plan_a), "--dsn", by_apply.dsn, "--yes", "--undo-file", str(tmp_path / "u.json"))
    assert applied.returncode == 0, applied.stderr

    assert cli("plan", "--dsn", by_psql.dsn, "-o", str(plan_b)).returncode == 0
    scripted = cli("plan", "sql", str(plan_b), "-o", str(tmp_path / "b.sql"))
    assert scripted.returncode == 0, scripted.stderr
    ran = psql_file(by_psql.dsn, tmp_path / "b.sql")
    assert ran.returncode == 0, ran.stderr[-2000:]

    after = ledger(by_apply)
    assert after == ledger(by_psql)  # both paths reach the same state
    assert ledger(by_apply, dates=False)["releases"] == content_before  # no release's content changed
    for db in (by_apply, by_psql):
        # the values went through intact: the live release of every app has every hostile value
        rows = db.conn.execute(
            "SELECT a.id, c.values FROM api_app a JOIN LATERAL (SELECT config_id FROM api_release r "
            "WHERE r.app_id = a.uuid ORDER BY version DESC LIMIT 1) l ON true JOIN api_config c ON c.uuid = l.config_id"
        ).fetchall()
        assert sorted(name for name, _ in rows) == sorted(names(migration))
        for _, values in rows:
            assert {k: v for k, v in json.loads(values).items() if k in NASTY_VALUES} == NASTY_VALUES
        again = cli("plan", "--dsn", db.dsn, "-o", str(tmp_path / "again.json"), "--detailed-exitcode")
        assert again.returncode == 0, again.stdout + again.stderr

    undone = cli("undo", str(tmp_path / "u.json"), "--dsn", by_apply.dsn, "--yes")
    assert undone.returncode == 0, undone.stderr
    assert full_dump(by_apply.conn) == before
