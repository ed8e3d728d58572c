"""``check --format html``: one page for a whole audit, worst apps first, each drawn small."""

from __future__ import annotations

import json
from pathlib import Path

from auditor.reports.picture import report_page
from tests.picture.checks import assert_clean_visit, assert_not_blank, assert_valid_html
from tests.picture.stories import rolled_back


def _damaged_database(db) -> None:
    ctl = db.controller()
    rolled_back(db, "api")  # a rollback shares the live release's build (a hazard); orphan build
    # critical: a hand-written fix dated api's v5 like its v6, so the next deploy may fail (release-order)
    db.conn.execute("UPDATE api_release r SET created = (SELECT max(x.created) FROM api_release x WHERE x.app_id = r.app_id)"
                    " FROM api_app a WHERE a.uuid = r.app_id AND a.id = 'api' AND r.version = 5")
    shop = ctl.create_app("shop")
    shop.push()
    shop.config_set(A="1")
    shop.failed_config_set(B="2")  # latest config used only by a failed release
    for name in ("calm", "quiet"):
        ctl.create_app(name).push()  # only info findings (normal sharing)


def test_report_page_worst_apps_first_with_pictures(hephy_db, run, browser, tmp_path):
    _damaged_database(hephy_db)
    table = run("check", "--dsn", hephy_db.dsn)
    result = run("check", "--dsn", hephy_db.dsn, "--format", "html", "-o", "report.html")
    assert result.stdout == ""
    assert result.exit_code == table.exit_code == 2  # the exit code does not depend on the format
    out = tmp_path / "report.html"
    text = out.read_text()
    assert_valid_html(text)
    report = json.loads(run("check", "--dsn", hephy_db.dsn, "--format", "json", "--min-severity", "info").stdout)
    with browser.open(out) as (page, visit):
        dom = page.evaluate("""() => ({
            cards: [...document.querySelectorAll('.card .n')].map(n => n.textContent),
            ranking: [...document.querySelectorAll('#ranking tbody td:nth-child(2)')].map(t => t.textContent),
            links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
            dead: [...document.querySelectorAll('a[href]')].filter(
                a => !document.getElementById(a.getAttribute('href').slice(1))).length,
            sections: [...document.querySelectorAll('section')].map(s => ({
                id: s.id, title: s.querySelector('h2').textContent,
                releases: s.querySelectorAll('svg.timeline g.node.release').length,
                svg: s.querySelectorAll('svg.timeline').length})),
            checks: document.querySelectorAll('#by-check tbody tr').length})""")
        png = page.screenshot(full_page=True)
        assert_clean_visit(visit)
    assert_not_blank(png)
    counts = report["summary"]["by_severity"]
    assert dom["cards"][:3] == [str(counts["critical"]), str(counts["warning"]), str(counts["info"])]
    assert dom["cards"][3] == str(report["summary"]["apps_with_findings"])
    assert dom["checks"] == len(report["summary"]["checks_run"])
    # worst first: the apps with critical findings lead, healthy-but-shared apps come last
    per_app = {}
    for f in report["findings"]:
        per_app.setdefault(f["app"]["name"], [0, 0, 0])[["critical", "warning", "info"].index(f["severity"])] += 1
    expected = sorted(per_app, key=lambda a: ([-n for n in per_app[a]], a))
    assert dom["ranking"] == expected
    assert [s["title"].split("app ", 1)[1] for s in dom["sections"]] == expected
    # links only within the page, and each leads somewhere: app sections, findings, back to the list
    assert all(link.startswith("#") for link in dom["links"]) and dom["dead"] == 0
    assert {f"#{s['id']}" for s in dom["sections"]} <= set(dom["links"]) and "#apps" in dom["links"]
    assert all(s["svg"] == 1 for s in dom["sections"])
    assert dom["sections"][0]["releases"] == 6  # api, drawn in full


def test_report_page_is_bounded(hephy_db, run, monkeypatch, tmp_path):
    _damaged_database(hephy_db)
    monkeypatch.setattr(report_page, "DRAWN_APPS", 2)
    monkeypatch.setattr(report_page, "LISTED_APPS", 3)
    assert run("check", "--dsn", hephy_db.dsn, "--format", "html", "-o", "r.html").exit_code == 2
    text = Path(tmp_path / "r.html").read_text()
    assert_valid_html(text)
    assert text.count('<svg class="timeline"') == 2
    assert "The 2 worst apps are drawn below (at most 2)" in text
    assert "1 more app(s) with findings are not listed (the table stops at 3)" in text


def test_report_page_of_a_healthy_database(hephy_db, run, tmp_path):
    ctl = hephy_db.controller(ledger=True)
    ctl.create_app("web").push()
    result = run("check", "--dsn", hephy_db.dsn, "--format", "html", "-o", "ok.html")
    assert result.exit_code == 0
    text = Path(tmp_path / "ok.html").read_text()
    assert_valid_html(text)
    assert "No app has a finding." in text and "<svg" not in text


def test_config_file_may_ask_for_html(hephy_db, run, tmp_path):
    rolled_back(hephy_db)
    Path(tmp_path / "controller-audit.toml").write_text('format = "html"\n')
    result = run("check", "--dsn", hephy_db.dsn)
    assert result.stdout.startswith("<!DOCTYPE html>")
