"""``controller-audit blast-radius``: what an ORM delete would take with it."""

from __future__ import annotations

import pytest


def counts(output: str) -> dict[str, int]:
    """The ``table rows`` lines at the top of the output."""
    found = {}
    for line in output.split("\n\n")[1].splitlines()[2:]:
        table, rows = line.split()
        found[table] = int(rows)
    return found


def test_shared_config_takes_every_release_and_the_live_one(hephy_db, run):
    web = hephy_db.controller().create_app("web")
    web.push()
    web.push()
    live = web.push()  # v1..v4 all share the initial config
    result = run("blast-radius", "config", live.config, "--dsn", hephy_db.dsn)
    assert result.exit_code == 0, result.output
    assert counts(result.stdout) == {"api_config": 1, "api_release": 4, "total": 5}
    assert "!!! THE LIVE RELEASE v4 OF APP web WOULD BE DELETED" in result.stdout
    assert "releases that would be deleted (4):" in result.stdout
    assert live.uuid in result.stdout


def test_old_build_spares_the_live_release_and_list_is_capped(hephy_db, run):
    web = hephy_db.controller().create_app("web")
    first = web.push()
    for i in range(5):
        web.config_set(N=str(i))  # v3..v7 share first's build
    web.push()  # v8: new build, live
    result = run("blast-radius", "build", first.build, "--dsn", hephy_db.dsn, "--limit", "2")
    assert counts(result.stdout) == {"api_build": 1, "api_release": 6, "total": 7}
    assert "THE LIVE RELEASE" not in result.stdout
    assert "releases that would be deleted (6, showing the first 2):" in result.stdout


def test_rollback_build_hits_the_live_release(deis_old_db, run):
    web = deis_old_db.controller().create_app("web")
    shared = web.push()
    web.push()
    web.rollback(2)
    out = run("blast-radius", "build", shared.build, "--dsn", deis_old_db.dsn).stdout
    assert counts(out) == {"api_build": 1, "api_release": 2, "total": 3}
    assert "!!! THE LIVE RELEASE v4 OF APP web WOULD BE DELETED" in out


@pytest.mark.parametrize(("migration", "tables"), [
    (28, {"api_domain", "api_appsettings", "api_tls", "api_service"}),
    (19, {"api_domain", "api_appsettings", "api_tls"}),
])
def test_app_counts_per_table(make_db, run, migration, tables):
    db = make_db(migration)
    ctl = db.controller()
    web = ctl.create_app("web")
    web.push()
    web.config_set(A="1")
    web.orphan_build()
    other = ctl.create_app("other")
    other.push()
    out = run("blast-radius", "app", "web", "--dsn", db.dsn).stdout
    assert counts(out) == {"api_app": 1, "api_config": 2, "api_build": 2, "api_release": 3,
                           **{t: 0 for t in tables}, "total": 8}
    assert "!!! THE LIVE RELEASE v3 OF APP web WOULD BE DELETED with the app." in out


def test_app_delete_takes_other_apps_releases_on_its_rows(hephy_db, run):
    ctl = hephy_db.controller()
    web = ctl.create_app("web")
    web.push()
    api = ctl.create_app("api")
    api_live = api.push()
    # cross-app damage: api's live release points at web's config
    hephy_db.conn.execute("UPDATE api_release SET config_id = %s WHERE uuid = %s",
                          (web.current().config, api_live.uuid))
    out = run("blast-radius", "app", "web", "--dsn", hephy_db.dsn).stdout
    assert counts(out)["api_release"] == 3
    assert "!!! the cascade crosses into app api: 1 release(s) of OTHER apps would be deleted too" in out
    assert "!!! THE LIVE RELEASE v2 OF APP api WOULD BE DELETED" in out


@pytest.mark.parametrize(("args", "message"), [
    (("config", "not-a-uuid"), "controller-audit: bad input: 'not-a-uuid' is not a config uuid"),
    (("build", "00000000-0000-0000-0000-000000000000"),
     "controller-audit: unknown build: no build with uuid 00000000-0000-0000-0000-000000000000"),
    (("app", "ghost"), "controller-audit: unknown app: no app named 'ghost'"),
    (("release", "x"), "Invalid value for '{config|build|app}'"),
])
def test_bad_subject_exits_3(hephy_db, run, args, message):
    result = run("blast-radius", *args, "--dsn", hephy_db.dsn)
    assert result.exit_code == 3
    assert message in result.stderr


def test_a_rows_cascade_crossing_into_another_app_is_counted_whatever_the_limit(db, run):
    ctl = db.controller()
    billing = ctl.create_app("billing")
    billing.config_set(PLAN="pro")  # v2: billing's live config C
    billing.push()  # v3 shares C
    shop = ctl.create_app("shop")
    shop.push()
    config = shop.point_at(2, billing)  # shop's live v2 uses billing's C (cross-app)
    out = run("blast-radius", "config", config, "--dsn", db.dsn, "--limit", "1").stdout
    assert counts(out) == {"api_config": 1, "api_release": 3, "total": 4}
    assert "!!! the cascade crosses into app shop: 1 release(s) of OTHER apps would be deleted too" in out
    assert "!!! THE LIVE RELEASE v2 OF APP shop WOULD BE DELETED" in out
    assert "releases that would be deleted (3, showing the first 1):" in out


def test_the_live_release_is_the_newest_by_created(db, run):
    from datetime import timedelta

    ctl = db.controller()
    web = ctl.create_app("web")
    v2 = web.push(image="web:1")
    web.config_set(DEBUG="1")  # v3 shares v2's build: the controller's live release
    v4 = web.push(image="web:2", at=ctl.clock - timedelta(minutes=10))  # a clock behind: v4 dated before v3
    out = run("blast-radius", "build", v2.build, "--dsn", db.dsn).stdout
    assert "!!! THE LIVE RELEASE v3 OF APP web WOULD BE DELETED" in out
    out = run("blast-radius", "build", v4.build, "--dsn", db.dsn).stdout
    assert "THE LIVE RELEASE" not in out
