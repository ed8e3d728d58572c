"""Control characters in the data never reach the terminal (issue 13, case 5).

App names, release summaries and image names are whatever was written to the database; an
ESC or OSC sequence there could hide or rewrite lines while someone reviews a plan.  Every
human-facing output shows them escaped (``\\x1b``), and ``plan sql`` comments do too.
"""

from __future__ import annotations

import pytest

from tests.helpers import messages

EVIL_APP = "shop\x1b[8m"  # "conceal" from here on
EVIL_IMAGE = "registry/shop:1\x1b]0;pwned\x07\x1b[2K\rv9 looks fine\nnext line\u202e"
RAW = ("\x1b", "\x07", "\r", "\u202e")


@pytest.fixture
def evil(hephy_db):
    app = hephy_db.controller().create_app(EVIL_APP)
    app.push(image=EVIL_IMAGE)
    app.config_set(A="1")
    app.rollback(2)
    app.orphan_build(image=EVIL_IMAGE)
    return hephy_db


def _clean(result, *must_show: str) -> None:
    text = result.stdout + result.stderr
    for char in RAW:
        assert char not in text, (repr(char), text[:2000])
    for shown in must_show:
        assert shown in text, (shown, text[:2000])


def test_check_table_shows_control_characters_escaped(evil, run):
    result = run("check", "--dsn", evil.dsn)
    assert result.exit_code == 1  # the rollback's config is config_set.latest(): boot re-saves it (a warning)
    _clean(result, "app shop\\x1b[8m")


def test_explain_shows_control_characters_escaped(evil, run):
    result = run("explain", EVIL_APP, "--dsn", evil.dsn)
    assert result.exit_code == 0, result.output
    _clean(result, "app shop\\x1b[8m", "shop:1\\x1b]0;pw")  # the summary column is 40 characters wide


def test_plan_show_and_sql_comments_escape_control_characters(evil, run):
    assert run("plan", "--dsn", evil.dsn, "-o", "p.plan").exit_code == 0
    shown = run("plan", "show", "p.plan")
    assert shown.exit_code == 0
    _clean(shown, "app shop\\x1b[8m")
    script = run("plan", "sql", "p.plan")
    comments = [line for line in script.stdout.splitlines() if line.startswith("--")]
    assert any("shop\\x1b[8m" in line for line in comments)
    for line in comments:
        assert not any(char in line for char in RAW), repr(line)


def test_blast_radius_and_errors_escape_control_characters(evil, run):
    _clean(run("blast-radius", "app", EVIL_APP, "--dsn", evil.dsn), "shop\\x1b[8m")
    missing = run("explain", "ghost\x1b[2J\x07", "--dsn", evil.dsn)
    assert missing.exit_code == 3
    _clean(missing)
    assert len(messages(missing.stderr).strip().splitlines()) == 1

