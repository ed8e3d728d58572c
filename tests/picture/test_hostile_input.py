"""App names, owners, summaries and config keys are hostile input: the pictures escape them,
spell out the characters a document may not hold, and stay valid and inert."""

from __future__ import annotations

import json
from pathlib import Path

from tests.picture.checks import SVG_NS, assert_clean_visit, assert_valid_html, parse_svg

NAME = "<script>alert(1)</script>'\"&\x01\x1b\x7f"
SHOWN = "<script>alert(1)</script>'\"&\\x01\\x1b\\x7f"  # how the pages spell it
OWNER = "<b onmouseover=alert(2)>\"bob\"</b>\x02"
KEY = "<img src=x onerror=alert(3)>\x0b"


def _hostile_app(db):
    app = db.controller().create_app(NAME, owner=OWNER)
    app.push(image="x:1")
    app.config_set(**{KEY: "</svg><script>alert(4)</script>"})
    app.rollback(2)
    app.orphan_build(image="<svg onload=alert(5)>")
    return app


def test_hostile_names_stay_text_in_html(hephy_db, run, browser, tmp_path):
    _hostile_app(hephy_db)
    pages = {"explain.html": ("explain", NAME), "report.html": ("check",)}
    for out, args in pages.items():
        result = run(*args, "--dsn", hephy_db.dsn, "--format", "html", "-o", out)
        assert result.exit_code in (0, 1, 2), result.output
        text = Path(tmp_path / out).read_text()
        assert_valid_html(text)  # strict parsing: no raw control character, no injected element
        assert "\x01" not in text and "\x1b" not in text and "\x7f" not in text
        with browser.open(tmp_path / out) as (page, visit):
            found = page.evaluate("""() => ({
                active: document.querySelectorAll('script, img, iframe, object, embed, [onload], [onerror], '
                                                  + '[onmouseover]').length,
                svgs: [...document.querySelectorAll('svg')].filter(s => !s.classList.contains('timeline')).length,
                text: document.body.textContent,
                app: document.querySelector('svg.timeline').getAttribute('data-app')})""")
            assert_clean_visit(visit)
        assert found["active"] == 0 and found["svgs"] == 0
        assert SHOWN in found["text"] and found["app"] == SHOWN
        assert "<img src=x onerror=alert(3)>" in found["text"] or out == "report.html"


def test_hostile_names_keep_the_svg_well_formed(hephy_db, run, tmp_path):
    _hostile_app(hephy_db)
    assert run("explain", NAME, "--dsn", hephy_db.dsn, "--format", "svg", "-o", "x.svg").exit_code == 0
    root = parse_svg(Path(tmp_path / "x.svg").read_text())  # XML: would fail on a raw \x01
    assert root.get("data-app") == SHOWN
    assert not [e for e in root.iter() if e.tag.split("}")[-1] in ("script", "foreignObject", "image")]
    titles = " ".join(t.text or "" for t in root.iter(f"{SVG_NS}title"))
    assert '<b onmouseover=alert(2)>"bob"</b>\\x02 added <img src=x onerror=alert(3)>' in titles  # as text


def test_json_keeps_hostile_names_exactly(hephy_db, run):
    _hostile_app(hephy_db)
    doc = json.loads(run("explain", NAME, "--dsn", hephy_db.dsn, "--format", "json").stdout)
    assert doc["app"]["name"] == NAME
    assert any(KEY in (r["summary"] or "") for r in doc["releases"])
