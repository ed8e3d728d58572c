"""``explain APP``'s history table: the releases that matter, runs of uneventful ones on one line,
``--all`` for every row; the JSON form keeps every release."""

from __future__ import annotations

import json
import re

from tests.cli.test_explain import row_of

GAP = re.compile(r"^\.\.\. (.*) with nothing to report \(--all lists them\)$", re.M)
VERSION_ROW = re.compile(r"^v(\d+) ", re.M)


def long_history(db):
    """An app of 32 releases: v1, pushes and config:sets in turn (each shares one row with the
    release before it: hazards, nothing to report), an unused config between v8 and v9, a failed
    push at v12, a rollback to v5 as the live release v31, then a failed config:set whose config
    is latest(): a warning naming the live config, which v5 and v6 share (and only share)."""
    app = db.controller().create_app("long")  # v1
    for n in range(2, 31):
        if n == 12:
            app.failed_push(image="long:broken")  # v12 failed
        elif n % 2:
            app.config_set(N=str(n))
        else:
            app.push(image=f"long:{n}")
        if n == 8:
            app.orphan_config(UNUSED="1")
    app.rollback(5)  # v31, live
    app.failed_config_set(BROKEN="yes")  # v32, failed
    return app


def shown_versions(out: str) -> list[int]:
    return [int(v) for v in VERSION_ROW.findall(out)]


def test_collapsed_history_keeps_what_matters(hephy_db, run):
    long_history(hephy_db)
    out = run("explain", "long", "--dsn", hephy_db.dsn).stdout
    # first, involved in the warning (they use the live config), failed, live +- 2, newest/highest
    assert shown_versions(out) == [1, 5, 6, 12, 29, 30, 31, 32]
    assert GAP.findall(out) == ["3 releases v2..v4", "5 releases v7..v11 and 1 unused config or build",
                                "16 releases v13..v28"]
    table = out[out.index("version "):out.index("release order")]
    assert [line.split()[0] for line in table.splitlines() if line.strip()][2:] == [
        "v1", "...", "v5", "v6", "...", "v12", "...", "v29", "v30", "v31", "v32"]
    # v5 and v6 only share rows inside the app: shown because the finding names their config
    assert "LIVE" not in row_of(out, "v5") and "FAILED" not in row_of(out, "v5")
    assert "LIVE" in row_of(out, "v31") and "FAILED" in row_of(out, "v12")
    assert "ORPHAN" not in out  # the unused config nothing reads is counted in its run
    assert "findings (1):" in out and "latest-config-not-live" in out


def test_all_lists_every_row(hephy_db, run):
    long_history(hephy_db)
    out = run("explain", "long", "--all", "--dsn", hephy_db.dsn).stdout
    assert shown_versions(out) == list(range(1, 33))
    assert not GAP.findall(out)
    assert "ORPHAN config" in row_of(out, "-")
    doc = json.loads(run("explain", "long", "--format", "json", "--dsn", hephy_db.dsn).stdout)
    assert [r["version"] for r in doc["releases"]] == list(range(1, 33))
    # every finding, whatever the text lists: the warning and the info ones it counts
    assert len(doc["findings"]) == 31
    default = run("explain", "long", "--dsn", hephy_db.dsn).stdout
    assert "not listed (below --min-severity warning): 30 info (" in default


def test_nothing_involved_in_a_listed_finding_is_collapsed(hephy_db, run):
    """Every release whose uuid, config or build a listed finding names (object, related rows,
    evidence) is a row of the collapsed table, at every listing floor."""
    long_history(hephy_db)
    doc = json.loads(run("explain", "long", "--format", "json", "--dsn", hephy_db.dsn).stdout)
    for floor in ("critical", "warning", "info"):
        listed = [f for f in doc["findings"]
                  if ["critical", "warning", "info"].index(f["severity"]) <= ["critical", "warning", "info"].index(floor)]
        named = {f["object"]["uuid"] for f in listed} | set(re.findall(r"[0-9a-f-]{36}", json.dumps(listed)))
        involved = {r["version"] for r in doc["releases"] if {r["uuid"], r["config"], r["build"]} & named}
        out = run("explain", "long", "--min-severity", floor, "--dsn", hephy_db.dsn).stdout
        assert involved <= set(shown_versions(out)), (floor, involved - set(shown_versions(out)))
        if floor == "warning":
            assert involved == {5, 6, 31, 32}
