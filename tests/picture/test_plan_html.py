"""``plan show PLAN --format html``: per app, the picture before (the database now) and after."""

from __future__ import annotations

from pathlib import Path

from repairs.planfile import load_plan
from tests.picture.checks import assert_clean_visit, assert_not_blank, assert_valid_html
from tests.picture.stories import repairable, rolled_back

_READ = """(which) => {
    const svg = document.querySelector('div.scroll.' + which + ' svg.timeline');
    const nodes = [...svg.querySelectorAll('g.node')].map(g => ({
        uuid: g.dataset.uuid, kind: g.dataset.kind, cls: g.getAttribute('class').split(' '),
        x: g.querySelector('rect').getBBox().x}));
    const edges = [...svg.querySelectorAll('path.edge')].map(p => ({
        release: p.dataset.release, row: p.dataset.row, kind: p.dataset.kind,
        cls: p.getAttribute('class').split(' ')}));
    return {nodes, edges};
}"""


def test_plan_pictures_before_and_after(hephy_db, run, browser, tmp_path):
    story = repairable(hephy_db)
    assert run("plan", "--dsn", hephy_db.dsn, "-o", "api.plan").exit_code == 0
    plan = load_plan(tmp_path / "api.plan")
    actions = list(plan.actions)
    kinds = {a.kind for a in actions}
    assert {"prune", "copy", "redate"} <= kinds, kinds  # the story needs all three repairs
    text_before = run("plan", "show", "api.plan").stdout
    result = run("plan", "show", "api.plan", "--format", "html", "--dsn", hephy_db.dsn, "-o", "api.html")
    assert result.exit_code == 0, result.output
    assert run("plan", "show", "api.plan").stdout == text_before  # the text form reads only the file
    out = tmp_path / "api.html"
    assert_valid_html(out.read_text())
    with browser.open(out) as (page, visit):
        before, after = page.evaluate(_READ, "before"), page.evaluate(_READ, "after")
        png = page.screenshot(full_page=True)
        assert_clean_visit(visit)
    assert_not_blank(png)
    copies = [a for a in actions if a.kind == "copy"]
    pruned = {a.row for a in actions if a.kind == "prune"}
    redated = {a.row for a in actions if a.kind == "redate"}
    # before: what will go is marked, the edges to re-point are marked
    assert {n["uuid"] for n in before["nodes"] if "prune" in n["cls"]} == pruned == {story.orphan}
    assert sorted((e["release"], e["kind"]) for e in before["edges"] if "repoint" in e["cls"]) == sorted(
        (a.release, a.table.removeprefix("api_")) for a in copies)
    # after: copies are new nodes, each release re-pointed at its copy, pruned rows gone, same release count
    after_nodes = {n["uuid"]: n for n in after["nodes"]}
    assert {u for u, n in after_nodes.items() if "copy" in n["cls"]} == {a.new_uuid for a in copies}
    for copy in copies:
        edge = next(e for e in after["edges"] if e["release"] == copy.release and e["kind"] == copy.table[4:])
        assert edge["row"] == copy.new_uuid and "repointed" in edge["cls"]
    assert not pruned & set(after_nodes)
    assert len(after["edges"]) == len(before["edges"]) == story.references
    assert sum(n["kind"] == "release" for n in after["nodes"]) == story.releases
    # re-dated rows move: to the newest place on the timeline, where latest() finds them
    before_x = {n["uuid"]: n["x"] for n in before["nodes"]}
    for row in redated:
        assert "redated" in after_nodes[row]["cls"] and after_nodes[row]["x"] > before_x[row]
        assert "latest-ok" in after_nodes[row]["cls"]
    text = out.read_text()
    assert text.count('class="verdict wrong"') >= 1  # before: latest() is wrong somewhere
    after_part = text.split("after the plan")[1]
    assert 'class="verdict wrong"' not in after_part.split("</section>")[0]


def test_plan_pictures_refuse_another_database(make_db, run, tmp_path):
    first, second = make_db(28), make_db(28)
    rolled_back(first)
    rolled_back(second)
    assert run("plan", "--dsn", first.dsn, "-o", "p.plan").exit_code == 0
    result = run("plan", "show", "p.plan", "--format", "html", "--dsn", second.dsn, "-o", "p.html")
    assert result.exit_code == 4
    assert "controller-audit: other database: this plan was made on database" in result.stderr
    assert not Path(tmp_path / "p.html").exists()
