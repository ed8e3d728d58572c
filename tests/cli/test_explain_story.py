"""Issue #16, `explain` latency: the story reads the configs and builds in one statement sent
together with the releases' (pipeline mode), and groups the app's own versions per row from the
releases it already read. What it tells stays the same: who uses each row, in this app and in
others, for the text and the JSON alike."""

from __future__ import annotations

import json
from dataclasses import replace

from auditor.audit.story import app_story
from auditor.core.detect import detect


def _apps(hephy_db):
    ctl = hephy_db.controller()
    lib = ctl.create_app("lib")
    lib.push(image="lib:1")  # v2
    web = ctl.create_app("web")
    web.push(image="web:1")  # v2
    web.config_set(A="1")  # v3: shares v2's build
    web.push(image="web:2")  # v4: shares v3's config
    web.rollback(2)  # v5: v2's config and build again
    orphan = web.orphan_build(image="web:never")
    # web v4 runs lib's build; lib v2 runs web v3's config (both cross-app)
    lib_build = lib.current().build
    web_v3_config = web.release(3).config
    hephy_db.conn.execute("UPDATE api_release SET build_id = %s WHERE app_id = %s AND version = 4", (lib_build, web.uuid))
    hephy_db.conn.execute("UPDATE api_release SET config_id = %s WHERE app_id = %s AND version = 2",
                          (web_v3_config, lib.uuid))
    return web, lib_build, web_v3_config, orphan


def test_the_story_names_every_user_of_each_row(hephy_db):
    web, lib_build, web_v3_config, orphan = _apps(hephy_db)
    conn = hephy_db.conn
    story = app_story(conn, detect(conn), "web")
    assert [r.version for r in story.releases] == [1, 2, 3, 4, 5]
    by_version = {r.version: r for r in story.releases}
    assert story.configs[web_v3_config].versions == (3, 4)
    assert (story.configs[web_v3_config].foreign_uses, story.configs[web_v3_config].foreign_apps) == (1, ("lib",))
    assert story.configs[by_version[2].config].versions == (1, 2, 5)  # v1: the app's first config
    assert story.builds[by_version[2].build].versions == (2, 3, 5)
    assert lib_build not in story.builds and by_version[4].build == lib_build
    assert story.builds[orphan].versions == () and story.builds[orphan].orphan
    assert list(story.builds) == sorted(story.builds, key=lambda u: (story.builds[u].created, u))
    assert list(story.configs) == sorted(story.configs, key=lambda u: (story.configs[u].created, u))


def test_without_pipeline_mode_the_story_is_the_same(hephy_db):
    _apps(hephy_db)
    conn = hephy_db.conn
    pipelined = app_story(conn, detect(conn), "web", pipeline=True)
    # As with a libpq before 14, where pipeline mode does not exist.
    assert replace(app_story(conn, detect(conn), "web", pipeline=False), now=pipelined.now) == pipelined  # now(): another transaction


def test_the_text_and_json_tell_the_same_users(hephy_db, run):
    web, lib_build, web_v3_config, orphan = _apps(hephy_db)
    text = run("explain", "web", "--dsn", hephy_db.dsn, "--all").stdout
    v3 = next(line for line in text.splitlines() if line.startswith("v3 "))
    assert "config shared with v4" in v3 and "config also used by app lib (cross-app)" in v3
    v4 = next(line for line in text.splitlines() if line.startswith("v4 "))
    assert "build not in this app" in v4
    doc = json.loads(run("explain", "web", "--dsn", hephy_db.dsn, "--format", "json").stdout)
    configs = {c["uuid"]: c for c in doc["configs"]}
    assert configs[web_v3_config]["foreign_apps"] == ["lib"] and configs[web_v3_config]["foreign_uses"] == 1
    builds = {b["uuid"]: b for b in doc["builds"]}
    assert builds[orphan]["orphan"] is True and lib_build not in builds
