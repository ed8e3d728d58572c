"""``explain APP --format html|svg``: the app's history drawn as a timeline, checked in a real browser."""

from __future__ import annotations

import json
from pathlib import Path

from tests.picture.checks import SVG_NS, assert_clean_visit, assert_not_blank, assert_valid_html, parse_svg
from tests.picture.stories import rolled_back


def _dom(page) -> dict:
    """What the page's SVG holds, read through the browser's DOM."""
    return page.evaluate("""() => {
        const svg = document.querySelector('svg.timeline');
        const nodes = [...svg.querySelectorAll('g.node')].map(g => ({
            kind: g.dataset.kind, uuid: g.dataset.uuid, version: g.dataset.version,
            cls: g.getAttribute('class'), badge: !!g.querySelector('.badge'),
            box: (() => { const r = g.querySelector('rect').getBoundingClientRect(); return [r.x, r.width]; })()}));
        const edges = [...svg.querySelectorAll('path.edge')].map(p => ({
            release: p.dataset.release, row: p.dataset.row, kind: p.dataset.kind, cls: p.getAttribute('class')}));
        const tags = [...svg.querySelectorAll('text.tag')].map(t => [t.getAttribute('class'), t.textContent]);
        return {nodes, edges, tags, gaps: svg.querySelectorAll('g.gap').length};
    }""")


def _assert_story_drawn(dom: dict, story, db) -> None:
    releases = [n for n in dom["nodes"] if n["kind"] == "release"]
    assert len(releases) == story.releases  # one node per release
    assert len(dom["edges"]) == story.references  # one edge per reference
    assert dom["gaps"] == 0  # a small app is drawn in full
    by_version = {int(n["version"]): n for n in releases}
    assert "live" in by_version[story.live_version]["cls"].split()
    assert all("failed" in by_version[v]["cls"].split() for v in story.failed_versions)
    assert sum("live" in n["cls"].split() for n in releases) == 1
    # releases left to right in version order
    xs = [by_version[v]["box"][0] for v in sorted(by_version)]
    assert xs == sorted(xs)
    # the rollback's edges run back in time, to v3's config (a shared row: several edges)
    rollback = by_version[story.rollback_version]["uuid"]
    back = [e for e in dom["edges"] if e["release"] == rollback and "back" in e["cls"].split()]
    assert back, dom["edges"]
    assert len([e for e in dom["edges"] if e["row"] == story.shared_config]) >= 3
    # the orphan stands alone: a node with no edge, carrying its finding
    orphan = next(n for n in dom["nodes"] if n["uuid"] == story.orphan)
    assert "orphan" in orphan["cls"].split() and orphan["badge"]
    assert not [e for e in dom["edges"] if e["row"] == story.orphan]
    # build_set.latest() returns the orphan; it should return the live release's build
    assert "latest-today" in orphan["cls"].split()
    live_build = db.scalar("SELECT build_id::text FROM api_release WHERE uuid = %s", (by_version[5]["uuid"],))
    expected = next(n for n in dom["nodes"] if n["uuid"] == live_build)
    assert "latest-expected" in expected["cls"].split()
    assert ["tag expected", "should be"] in dom["tags"]


def test_explain_html_draws_the_history(hephy_db, run, browser, tmp_path):
    story = rolled_back(hephy_db)
    out = tmp_path / "api.html"
    result = run("explain", "api", "--dsn", hephy_db.dsn, "--format", "html", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    text = out.read_text()
    assert_valid_html(text)
    with browser.open(out) as (page, visit):
        dom = _dom(page)
        png = page.screenshot(full_page=True)
        assert_clean_visit(visit)
    _assert_story_drawn(dom, story, hephy_db)
    assert_not_blank(png)
    # every finding of the app is listed, and each finding on a row has a badge on that row's node
    findings = json.loads(run("explain", "api", "--dsn", hephy_db.dsn, "--format", "json").stdout)["findings"]
    assert text.count('<tr id="a-f') == len(findings)
    badged = {n["uuid"] for n in dom["nodes"] if n["badge"]}
    for finding in findings:
        if finding["object"]["table"] in ("api_config", "api_build", "api_release"):
            assert finding["object"]["uuid"] in badged


def test_explain_svg_is_a_standalone_picture(hephy_db, run, browser, tmp_path):
    story = rolled_back(hephy_db)
    out = tmp_path / "api.svg"
    assert run("explain", "api", "--dsn", hephy_db.dsn, "--format", "svg", "-o", str(out)).exit_code == 0
    root = parse_svg(out.read_text())
    assert root.find(f"{SVG_NS}style") is not None  # its own styles: it is read alone
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG_NS}text"))
    assert "build_set.latest(): WRONG" in texts and "orphan-build" in texts
    with browser.open(out) as (page, visit):
        dom = _dom(page)
        png = page.locator("svg").first.screenshot()
        assert_clean_visit(visit)
    _assert_story_drawn(dom, story, hephy_db)
    assert_not_blank(png)


def test_text_output_is_unchanged_by_the_new_formats(hephy_db, run, tmp_path):
    rolled_back(hephy_db)
    default = run("explain", "api", "--dsn", hephy_db.dsn).stdout
    assert run("explain", "api", "--dsn", hephy_db.dsn, "--format", "text").stdout == default
    assert run("explain", "api", "--dsn", hephy_db.dsn, "-o", "api.txt").stdout == ""
    assert Path(tmp_path / "api.txt").read_text() == default
    assert default.startswith("app api (")


def test_large_app_folds_healthy_runs_and_draws_the_damage(hephy_db, run, tmp_path):
    ctl = hephy_db.controller()
    with ctl.batch():
        big = ctl.create_app("big")
        for i in range(400):
            big.push() if i % 2 else big.config_set(N=str(i))
            if i == 100:
                orphan = big.orphan_build()
            if i == 250:
                rollback = big.rollback(180)
        failed = big.failed_push()
    releases = hephy_db.scalar("SELECT count(*) FROM api_release")
    assert run("explain", "big", "--dsn", hephy_db.dsn, "--format", "svg", "-o", "big.svg").exit_code == 0
    root = parse_svg(Path(tmp_path / "big.svg").read_text())
    nodes = [g for g in root.iter(f"{SVG_NS}g") if "node" in g.get("class", "").split()]
    drawn = [g for g in nodes if g.get("data-kind") == "release"]
    gaps = [g for g in root.iter(f"{SVG_NS}g") if "gap" in g.get("class", "").split()]
    assert gaps and len(drawn) < 40  # readable: a few dozen columns, not 400
    assert len(drawn) + sum(int(g.get("data-releases")) for g in gaps) == releases  # every release accounted for
    uuids = {g.get("data-uuid") for g in nodes}
    assert {orphan, rollback.uuid, failed.uuid} <= uuids  # the damaged parts are drawn in full
    assert any(p.get("data-release") == rollback.uuid and "back" in p.get("class").split()
               for p in root.iter(f"{SVG_NS}path"))
    bundles = [g for g in root.iter(f"{SVG_NS}g") if "bundle" in g.get("class", "").split()]
    assert bundles and all(int(b.get("data-count")) >= 1 for b in bundles)
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG_NS}text"))
    assert f"of {releases} releases are folded into" in texts  # says what was collapsed


def test_a_failed_deploy_between_pushes_is_not_a_rollback(hephy_db, run, tmp_path):
    web = hephy_db.controller().create_app("web")
    web.push()
    web.failed_config_set(BROKEN="1")  # v3 failed, with a config of its own
    after = web.push()  # v4 keeps v2's config: the previous non-failed release's
    back_to = web.rollback(2)  # v5: v2's build, although v4 runs another: a rollback
    assert run("explain", "web", "--dsn", hephy_db.dsn, "--format", "svg", "-o", "web.svg").exit_code == 0
    root = parse_svg(Path(tmp_path / "web.svg").read_text())
    edges = {(p.get("data-release"), p.get("data-kind")): p.get("class").split()
             for p in root.iter(f"{SVG_NS}path") if p.get("data-release")}
    assert "back" not in edges[(after.uuid, "config")] and "shared" in edges[(after.uuid, "config")]
    assert "back" in edges[(back_to.uuid, "build")]


def test_rows_outside_the_app_and_apps_without_releases(hephy_db, run, tmp_path):
    ctl = hephy_db.controller()
    lib = ctl.create_app("lib")
    lib.push()
    web = ctl.create_app("web")
    web.push()
    foreign = lib.current().build
    hephy_db.conn.execute("UPDATE api_release SET build_id = %s WHERE app_id = %s AND version = 2", (foreign, web.uuid))
    ctl.failed_create_app("half")
    assert run("explain", "web", "--dsn", hephy_db.dsn, "--format", "svg", "-o", "web.svg").exit_code == 0
    root = parse_svg(Path(tmp_path / "web.svg").read_text())
    outside = [g for g in root.iter(f"{SVG_NS}g") if g.get("data-uuid") == foreign]
    assert len(outside) == 1 and "outside" in outside[0].get("class").split()
    assert [p for p in root.iter(f"{SVG_NS}path") if p.get("data-row") == foreign]
    # lib's picture shows the same build used by another app's release: not an orphan
    assert run("explain", "lib", "--dsn", hephy_db.dsn, "--format", "svg", "-o", "lib.svg").exit_code == 0
    lib_root = parse_svg(Path(tmp_path / "lib.svg").read_text())
    row = next(g for g in lib_root.iter(f"{SVG_NS}g") if g.get("data-uuid") == foreign)
    assert "orphan" not in row.get("class").split()
    # an app whose first release never came: its config alone, no release, no edge
    assert run("explain", "half", "--dsn", hephy_db.dsn, "--format", "html", "-o", "half.html").exit_code == 0
    text = Path(tmp_path / "half.html").read_text()
    assert_valid_html(text)
    assert 'data-releases="0"' in text and "NONE" in text and "app-without-release" in text
