"""``controller-audit explain APP``: the 3 a.m. view of one app."""

from __future__ import annotations

import re

from tests.helpers import messages


def row_of(output: str, first_cell: str) -> str:
    """The history-table line whose first cell is ``first_cell``."""
    lines = [line for line in output.splitlines() if line.split()[:1] == [first_cell]]
    assert len(lines) == 1, (first_cell, output)
    return lines[0]


def test_poisoned_app_after_failed_config_set_on_old_deis(deis_old_db, run):
    web = deis_old_db.controller().create_app("web")
    web.push(image="web:1")
    live = web.config_set(DEBUG="1")
    web.failed_config_set(BROKEN="yes")
    orphan = deis_old_db.scalar("SELECT uuid::text FROM api_config ORDER BY created DESC LIMIT 1")
    result = run("explain", "web", "--dsn", deis_old_db.dsn)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith(f"app web ({web.uuid}), deis 0019\n")
    assert f"live release: v3 (config {live.config}, build {live.build})" in out
    assert "LIVE" in row_of(out, "v3")
    assert "config shared with v2" in row_of(out, "v1")
    orphan_line = row_of(out, "-")
    assert orphan in orphan_line and "ORPHAN config; config = latest()" in orphan_line
    # the orphan is placed by created: after v3, the last row of the table
    assert out.index(row_of(out, "v3")) < out.index(orphan_line)
    assert f"config_set.latest()  returns {orphan}" in out
    # config:set merges over the live config from Deis v2.1 on: boot's re-save reads the orphan (§8)
    assert re.search(rf"should be {live.config} \(live v3's\)  -> WRONG: boot re-saves this row", out)
    assert re.search(r"WARNING\s+orphan-config\s+fix: prune-orphans", out)
    assert re.search(r"WARNING\s+latest-config-not-live\s+fix: restore-latest", out)
    assert "-> ok: the next release is v4" in out
    plan = next(line for line in out.splitlines() if "controller-audit plan --app" in line).strip()
    assert plan.startswith("controller-audit plan --app web --repair prune-orphans ")
    assert plan.endswith("--repair restore-latest -o web.plan")
    assert "controller-audit plan show web.plan" in out and "controller-audit apply web.plan" in out


def test_rolled_back_app(hephy_db, run):
    api = hephy_db.controller().create_app("api")
    api.push(image="api:1")  # v2
    api.config_set(A="1")  # v3
    api.push(image="api:2")  # v4
    api.rollback(3)  # v5 reuses v3's config and build
    api.failed_push(image="api:3")  # v6 failed
    out = run("explain", "api", "--dsn", hephy_db.dsn).stdout
    v5 = row_of(out, "v5")
    assert "alice rolled back to v3" in v5
    assert "LIVE" in v5 and "config shared with v3, v4, v6" in v5 and "build shared with v2, v3" in v5
    assert "FAILED" in row_of(out, "v6") and "LIVE" not in row_of(out, "v6")
    assert "live release: v5" in out
    # the failed v6's build is the newest build: latest() disagrees with the live release
    assert re.search(r"build_set.latest\(\)\s+returns \S+ \(created [^)]*, used by v6\)", out)
    # ... which Hephy never reads (§8): said, not called wrong
    assert "-> differs, harmless here: Deis 2.7+ and Hephy never read build_set.latest()" in out
    # every finding here is info (sharing inside the app, a latest() Hephy never reads): counted, not listed
    assert "findings: none listed\n" in out
    assert ("not listed (below --min-severity warning): 4 info (shared-config 2, latest-build-not-live 1, "
            "shared-build 1); --min-severity info or --all lists them") in out
    assert "controller-audit plan --app api" not in out
    everything = run("explain", "api", "--all", "--dsn", hephy_db.dsn).stdout
    assert "findings (4):" in everything and "not listed" not in everything
    assert "controller-audit plan --app api" in everything
    assert run("explain", "api", "--min-severity", "info", "--dsn", hephy_db.dsn).stdout == everything


def test_healthy_app_says_ok(hephy_db, run):
    web = hephy_db.controller().create_app("web")
    web.config_set(A="1")
    web.push()
    out = run("explain", "web", "--dsn", hephy_db.dsn).stdout
    assert out.count("-> ok") == 3 and "-> ok: the next release is v4" in out
    assert "ORPHAN" not in out


def test_unknown_app_exits_3(hephy_db, run):
    result = run("explain", "ghost", "--dsn", hephy_db.dsn)
    assert result.exit_code == 3
    assert messages(result.stderr) == "controller-audit: unknown app: no app named 'ghost' in this database\n"
    assert result.stdout == ""


def test_an_app_no_deploy_gets_through_is_explained_in_words(db, run):
    from tests.checks.test_release_order import clock_went_backwards

    clock_went_backwards(db)
    out = run("explain", "web", "--dsn", db.dsn).stdout
    assert "live release: v3 " in out  # the newest by created, not the highest version
    assert "LIVE; release_set.latest()" in row_of(out, "v3")
    assert ("-> BROKEN: the next release would be v4; v4 exists, so every config:set, push, pull and rollback "
            "fails on UNIQUE(app_id, version)") in out
    assert re.search(r"CRITICAL\s+release-order\s+fix: release-order", out)
    plan = next(line for line in out.splitlines() if "controller-audit plan --app" in line).strip()
    assert "--repair release-order" in plan and plan.endswith("--repair restore-latest -o web.plan")


def test_ties_make_the_live_release_ambiguous(hephy_db, run):
    web = hephy_db.controller().create_app("web")
    web.push()
    web.config_set(A="1")
    web.tie_releases(2, 3)
    out = run("explain", "web", "--dsn", hephy_db.dsn).stdout
    assert "live release: AMBIGUOUS: v2, v3 share the newest created" in out
    assert "LIVE?" in row_of(out, "v2") and "LIVE?" in row_of(out, "v3")
    assert "release_set.latest() returns any of v2, v3" in out


def test_rows_dated_in_the_future_are_shown_and_reported(db, run):
    from tests.checks.test_future_dated import failed_config_set_from_a_clock_a_year_ahead

    ctl, web, live = failed_config_set_from_a_clock_a_year_ahead(db)
    out = run("explain", "web", "--dsn", db.dsn).stdout
    assert "findings: none" not in out
    assert re.search(r"CRITICAL\s+future-dated\s+fix: manual", out)
    assert re.search(r"latest-config-not-live\s+fix: restore-latest", out)
    latest = out.split("config_set.latest()")[1]
    assert "-> WRONG: boot re-saves this row" in latest and "FUTURE-DATED: created after now() + 60s" in latest
    if ctl.era == "C":
        assert "FUTURE-DATED" in row_of(out, "v4")
