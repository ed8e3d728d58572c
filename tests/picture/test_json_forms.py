"""``explain --format json`` and ``blast-radius --format json``: what the text shows, as data,
validated against the JSON Schemas shipped with the package."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from auditor.reports.blast_doc import blast_schema
from auditor.reports.explain_doc import explain_schema
from auditor.reports.report_json import report_schema
from tests.picture.stories import rolled_back


def _validator(schema: dict) -> Draft202012Validator:
    """``schema`` with the report schema it refers to (findings are the report's findings)."""
    registry = Registry().with_resource(report_schema()["$id"], Resource.from_contents(report_schema()))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=registry)


def _valid(doc: dict, schema: dict) -> dict:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in _validator(schema).iter_errors(doc)]
    assert errors == []
    return doc


@pytest.mark.parametrize("migration", [19, 23, 28])
def test_explain_json_is_what_the_text_shows(make_db, run, migration):
    db = make_db(migration)
    story = rolled_back(db)
    result = run("explain", "api", "--dsn", db.dsn, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = _valid(json.loads(result.stdout), explain_schema())
    text = run("explain", "api", "--dsn", db.dsn).stdout
    assert doc["app"]["name"] == "api" and f"({doc['app']['uuid']})" in text
    assert [r["version"] for r in doc["releases"]] == list(range(1, story.releases + 1))
    assert doc["live"]["version"] == (5 if migration >= 20 else story.releases)
    assert [r["version"] for r in doc["releases"] if r["live"]] == [doc["live"]["version"]]
    assert f"live release: v{doc['live']['version']} " in text
    orphans = [b["uuid"] for b in doc["builds"] if b["orphan"]]
    assert story.orphan in orphans
    latest = doc["latest"]["build"]
    assert latest["returns"] == story.orphan and latest["returns_orphan"]
    assert latest["verdict"] == "wrong" and not latest["ok"] and latest["should_return"] == doc["live"]["build"]
    # Deis up to 0019 diffs pushes against build_set.latest(); later controllers never read it (§8)
    expected = "-> WRONG: the next push diffs" if migration <= 19 else "-> differs, harmless here"
    assert expected in text.split("build_set.latest()")[1] and latest["message"] in text
    v5 = doc["releases"][4]
    assert v5["config_shared_with"] == [3, 4] + ([6] if migration >= 20 else [])
    # the findings are the check report's findings for this app, and the next steps the text's
    report = json.loads(run("check", "--app", "api", "--dsn", db.dsn, "--format", "json", "--min-severity",
                            "info").stdout)
    assert sorted(f["key"] for f in doc["findings"]) == sorted(f["key"] for f in report["findings"])
    assert doc["next"][0].startswith("controller-audit plan --app api ")
    # JSON lists every finding; the text from --min-severity (warning) up, and all of them with --all
    everything = run("explain", "api", "--dsn", db.dsn, "--all").stdout
    assert all(line in everything for line in doc["next"])


def test_explain_json_of_an_app_without_releases(hephy_db, run):
    hephy_db.controller().failed_create_app("half")
    doc = _valid(json.loads(run("explain", "half", "--dsn", hephy_db.dsn, "--format", "json").stdout),
                 explain_schema())
    assert doc["live"] is None and doc["releases"] == []
    assert doc["latest"]["config"]["verdict"] == "no-live" and doc["latest"]["build"]["verdict"] == "none"
    assert "app-without-release" in {f["check"] for f in doc["findings"]}


def test_blast_radius_json_of_a_shared_config(hephy_db, run):
    web = hephy_db.controller().create_app("web")
    web.push()
    web.push()
    live = web.push()
    result = run("blast-radius", "config", live.config, "--dsn", hephy_db.dsn, "--format", "json", "--limit", "3")
    assert result.exit_code == 0, result.output
    doc = _valid(json.loads(result.stdout), blast_schema())
    assert doc["counts"] == {"api_config": 1, "api_release": 4} and doc["total"] == 5
    assert doc["release_total"] == 4 and len(doc["releases"]) == 3 and doc["releases_truncated"]
    assert [(r["app"], r["version"]) for r in doc["live_hit"]] == [("web", 4)]
    assert doc["foreign_releases"] == 0 and doc["app"] == "web" and doc["subject"] == live.config
    assert doc["foreign_apps"] == []


def test_blast_radius_json_of_an_app_with_cross_app_references(hephy_db, run):
    ctl = hephy_db.controller()
    lib = ctl.create_app("lib")
    lib.push()
    web = ctl.create_app("web")
    web.push()
    # web's newest release uses lib's build: deleting lib takes web's live release too
    hephy_db.conn.execute("UPDATE api_release SET build_id = %s WHERE app_id = %s AND version = 2",
                          (lib.current().build, web.uuid))
    doc = _valid(json.loads(run("blast-radius", "app", "lib", "--dsn", hephy_db.dsn, "--format", "json").stdout),
                 blast_schema())
    assert doc["kind"] == "app" and doc["foreign_releases"] == 1
    assert {(r["app"], r["version"]) for r in doc["live_hit"]} == {("lib", 2), ("web", 2)}
    assert doc["counts"]["api_release"] == doc["release_total"] == 3
    assert doc["foreign_apps"] == ["web"]
    # the same row seen from the config/build side names the app it crosses into
    row = run("blast-radius", "build", lib.current().build, "--dsn", hephy_db.dsn, "--format", "json").stdout
    assert _valid(json.loads(row), blast_schema())["foreign_apps"] == ["web"]


def test_explain_json_says_what_numbers_the_next_release(hephy_db, run):
    """A release re-dated newest that is not the highest version: the next deploy collides
    (release-order), and the document says which release numbers it and which versions repeat."""
    ctl = hephy_db.controller()
    shop = ctl.create_app("shop")
    for _ in range(3):
        shop.push()
    healthy = _valid(json.loads(run("explain", "shop", "--dsn", hephy_db.dsn, "--format", "json").stdout),
                     explain_schema())["release_order"]
    assert healthy["broken"] is False and healthy["newest"]["version"] == healthy["highest"]["version"] == 4
    assert healthy["next_version"] == 5 and healthy["newest_tied"] == [4] and healthy["repeated_versions"] == []
    shop.redate_release(2, ctl.tick())
    ctl.drop_release_unique()
    shop.duplicate_version(3, ctl.tick())
    doc = _valid(json.loads(run("explain", "shop", "--dsn", hephy_db.dsn, "--format", "json").stdout),
                 explain_schema())
    order = doc["release_order"]
    assert order["broken"] is True and order["newest"]["version"] == 3 and order["highest"]["version"] == 4
    assert order["next_version"] == 4 and order["repeated_versions"] == [3]
    assert "release-order" in {f["check"] for f in doc["findings"]}
    assert not any(r["future_dated"] for r in doc["releases"])


def test_explain_json_marks_future_dated_releases_and_foreign_apps(hephy_db, run):
    ctl = hephy_db.controller()
    lib = ctl.create_app("lib")
    lib.push()
    web = ctl.create_app("web")
    web.push()
    web.point_at(2, lib, "build")
    lib.redate_release(2, datetime.now(timezone.utc) + timedelta(days=1))
    doc = _valid(json.loads(run("explain", "lib", "--dsn", hephy_db.dsn, "--format", "json").stdout),
                 explain_schema())
    assert [(r["version"], r["future_dated"]) for r in doc["releases"]] == [(1, False), (2, True)]
    shared = [b for b in doc["builds"] if b["foreign_uses"]]
    assert [(b["uuid"], b["foreign_apps"]) for b in shared] == [(lib.current().build, ["web"])]
    assert all(row["foreign_apps"] == [] for row in doc["configs"])
