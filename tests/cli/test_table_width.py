"""The table fits the terminal: messages wrap to its width (``COLUMNS``, else 100 columns when the
output is not a terminal), a uuid is never split, and every finding is still there."""

from __future__ import annotations

import re

import pytest

from tests.cli.conftest import report
from tests.test_bench import damaged_story

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: A run of hex digits and dashes as long as a uuid's first group and a dash: a uuid or a piece of one.
_UUID_LIKE = re.compile(r"[0-9a-f-]*[0-9a-f]{8}-[0-9a-f-]*")


@pytest.fixture
def damaged(make_db):
    db = make_db(28)
    damaged_story(db.conn)
    return db


def _table(run, db, width: int | None, *args: str) -> str:
    env = {"COLUMNS": str(width) if width else None}
    result = run("check", "--dsn", db.dsn, *args, env=env)
    assert result.exit_code == 2, result.output
    return result.stdout


@pytest.mark.parametrize("width", [60, 100, 200])
def test_every_line_fits_and_no_uuid_is_split(damaged, run, width):
    text = _table(run, damaged, width, "--min-severity", "info")
    too_long = [line for line in text.splitlines() if len(line) > width]
    assert not too_long, too_long
    for token in _UUID_LIKE.findall(text):
        assert UUID.fullmatch(token.strip("-")), f"a split uuid: {token!r}"
    # Every finding is there, with its object's uuid whole.
    doc = report(run("check", "--dsn", damaged.dsn, "--format", "json", "--min-severity", "info"))
    objects = {f["object"]["uuid"] for f in doc["findings"] if "uuid" in f["object"]}
    assert objects and objects <= set(UUID.findall(text))
    # The messages are all there, only wrapped: the words of each, in order.
    words = " ".join(text.split())
    for finding in doc["findings"][:40]:
        if "ahead of the database's clock" not in finding["message"]:
            assert " ".join(finding["message"].split()[:8]) in words or _in_columns(finding["message"], text)


def _in_columns(message: str, text: str) -> bool:
    """Whether the message's words appear in order in the table (a message wrapped inside a column
    has the other columns' text between its lines)."""
    position = 0
    for word in message.split()[:12]:
        position = text.find(word, position)
        if position < 0:
            return False
        position += len(word)
    return True


def test_the_layout_follows_the_width(damaged, run):
    wide = _table(run, damaged, 200)
    assert re.search(r"api_config [0-9a-f-]{36}", wide)  # the object on one line
    narrow = _table(run, damaged, 60)
    assert "check  " not in narrow.splitlines()[1]  # no table header: one block per finding
    assert re.search(r"^    \S", narrow, re.M)  # messages indented below their finding


def test_not_a_terminal_means_100_columns(damaged, run):
    text = _table(run, damaged, None, "--min-severity", "info")
    assert max(len(line) for line in text.splitlines()) <= 100
    assert max(len(line) for line in _table(run, damaged, 200, "--min-severity", "info").splitlines()) > 100


def test_the_footer_wraps_too(damaged, run):
    text = _table(run, damaged, 60)
    footer = text[text.index("not listed (below"):]
    assert all(len(line) <= 60 for line in footer.splitlines())
    assert "--min-severity info" in " ".join(footer.split())
