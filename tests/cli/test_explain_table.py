"""Issue #16, `explain` latency (round 16ag): the history's rows are built while the server runs the
audit (the findings' ids only mark more rows once they arrive), and the tables of the text are
written without tabulate's per-cell type inference where every cell is printable ASCII, with
tabulate's bytes; any other table is tabulate's own."""

from __future__ import annotations

import random
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tabulate import tabulate

from auditor.audit.runner import PendingFindings
from auditor.audit.story import AppStory, ReleaseRow, app_story
from auditor.core.detect import detect
from auditor.demo import write_story
from auditor.reports import explain_text
from auditor.reports.explain_text import _HEADERS, _Noted, _pinned, _table, story_history

UUID = "0758bde6-8187-416d-bc6a-69a1534773b0"
#: Cells tabulate treats in its own ways: empty, padded, numbers and booleans (its type inference),
#: wide and combining characters, control characters, ANSI codes, line breaks, a tab, its separating
#: line's marker.
ODD = ["", " ", "  padded  ", "1", "-2.5", "1e5", "1,000", "nan", "inf", "True", "False", "None", UUID,
       "v10000", "(none)", "日本語", "e\u0301", "\x1b[31mred\x1b[0m", "a\nb", "a\rb", "tab\there", "\x01",
       "\x7f", "caf\u00e9", "\u200b", "-", "x" * 120]


def _tabulated(rows, headers=()):
    if headers:
        return tabulate([list(r) for r in rows], headers=list(headers), tablefmt="simple", disable_numparse=True)
    return tabulate([list(r) for r in rows], tablefmt="plain", disable_numparse=True)


@pytest.mark.parametrize("headers", [(), tuple(_HEADERS)], ids=["plain", "simple"])
def test_the_tables_bytes_are_tabulates(headers):
    draw = random.Random(16)
    width = len(_HEADERS)
    ascii_cells = [c for c in ODD if c.isascii() and c.isprintable()]
    tables = [[], [[UUID] * width], [[""] * width], [[" "] * width], [[c] * width for c in ODD]]
    for _ in range(300):
        pool = ODD if draw.random() < 0.3 else ascii_cells
        rows = draw.randint(1, 12)
        tables.append([[draw.choice(pool) if draw.random() < 0.5
                        else "".join(draw.choices(string.printable[:95], k=draw.randint(0, 15)))
                        for _ in range(width)] for _ in range(rows)])
    for rows in tables:
        assert _table(rows, headers) == _tabulated(rows, headers), rows
    ragged = [["a", "b"], ["c"]]  # rows of unequal length: tabulate's own
    assert _table(ragged) == _tabulated(ragged)
    assert _table([(" x ", "True"), ("1", "")]) == _tabulated([(" x ", "True"), ("1", "")])


#: A cell: mostly printable ASCII (the written path), sometimes any text (tabulate's own path).
_CELLS = st.one_of(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
                   st.sampled_from(ODD), st.text(max_size=8))


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=7).flatmap(
    lambda width: st.tuples(st.lists(st.lists(_CELLS, min_size=width, max_size=width), max_size=8),
                            st.one_of(st.just(()), st.lists(_CELLS, min_size=width, max_size=width)))))
def test_any_tables_bytes_are_tabulates(table):
    """Whatever the cells (hypothesis draws them: spaces, digits, ``-``, any code point), the table
    is tabulate's byte for byte, with and without headers."""
    rows, headers = table
    assert _table(rows, headers) == _tabulated(rows, headers)


def test_a_table_of_printable_ascii_is_written_without_tabulate(monkeypatch):
    calls = []
    monkeypatch.setattr(explain_text, "_tabulate", lambda rows, **options: calls.append(rows) or "")
    _table([["v1", "", UUID, "  x"]], ("a", "b", "c", "d"))
    _table([["FAILED", "True", "1e5"]])
    assert calls == []
    _table([["v1", "日本語"]], ("a", "b"))
    _table([["a\x1b[31m"]])
    assert len(calls) == 2


def _old_history(story: AppStory, involved: set[str]) -> list[tuple[int | None, bool, list[str]]]:
    """main's rule before 16ag, every id known when the rows are built (the reference)."""
    noted = _Noted(story, _pinned(story))
    loose = sorted([(u.created, "config", u) for u in story.configs.values() if not u.versions]
                   + [(u.created, "build", u) for u in story.builds.values() if not u.versions],
                   key=lambda item: (item[0], item[1]))
    rows: list[tuple[int | None, bool, list[str]]] = []

    def unused(kind, use):
        latest = story.latest[kind].today
        return (None, not use.orphan or use.uuid in involved or story.future_dated(use.created)
                or (latest is not None and latest.uuid == use.uuid), explain_text._orphan_row(story, kind, use))

    placed = 0
    for rel in story.releases:
        while placed < len(loose) and loose[placed][0] < rel.created:
            rows.append(unused(loose[placed][1], loose[placed][2]))
            placed += 1
        remarkable = (rel.failed or rel.uuid in involved or rel.config in involved
                      or (rel.build is not None and rel.build in involved) or noted(rel))
        rows.append((rel.version, remarkable, explain_text._release_cells(story, rel)))
    rows += [unused(kind, use) for _, kind, use in loose[placed:]]
    return rows


def test_the_findings_ids_mark_the_rows_naming_them(hephy_db):
    """The history built before the findings, with their ids applied afterwards, is the history
    built knowing them: each id alone, none, every id, and ids no row names."""
    write_story(hephy_db.conn)
    conn = hephy_db.conn
    generation = detect(conn)
    draw = random.Random(16)
    names = [row[0] for row in conn.execute("SELECT id FROM api_app ORDER BY id")]
    assert len(names) > 3
    for name in names:
        story = app_story(conn, generation, name)
        ids = sorted({r.uuid for r in story.releases} | {r.config for r in story.releases}
                     | {r.build for r in story.releases if r.build} | set(story.configs) | set(story.builds))
        told = story_history(story)
        for involved in [set(), set(ids), {"not-an-id", UUID}, *({i} for i in ids),
                         set(draw.sample(ids, len(ids) // 3))]:
            expected = _old_history(story, involved)
            assert told.involving(involved) == [remarkable for _, remarkable, _ in expected], name
            assert [(item.version if isinstance(item, ReleaseRow) else None, flag, explain_text._cells(story, item))
                    for item, flag in zip(told.items, told.involving(involved), strict=True)] == expected, name
        assert told.remarkable == [remarkable for _, remarkable, _ in _old_history(story, set())]


def test_the_history_is_built_before_the_findings_are_read(hephy_db, run, monkeypatch):
    """``explain``'s text builds the history's rows after the story's and before the audit's
    findings are read (the server is running the audit meanwhile); JSON builds none."""
    from auditor.cli.commands import explain

    names = write_story(hephy_db.conn)
    events: list[str] = []

    def watched(name, original):
        def call(*args, **kwargs):
            events.append(name)
            return original(*args, **kwargs)
        return call

    monkeypatch.setattr(explain, "story_history", watched("history", explain.story_history))
    monkeypatch.setattr(PendingFindings, "read", watched("findings", PendingFindings.read))
    monkeypatch.setattr(explain_text, "story_history", watched("again", explain_text.story_history))
    for args, expected in (([], ["history", "findings"]), (["--all"], ["history", "findings"]),
                           (["--format", "json"], ["findings"])):
        events.clear()
        result = run("explain", names["poisoned"], "--dsn", hephy_db.dsn, *args)
        assert result.exit_code == 0, result.output
        assert events == expected, args


def test_the_storys_objects_are_its_named_tuples(hephy_db):
    """The releases and rows are made by the tuple's own constructor (16ag): still the named tuples
    with every field, the versions and apps as tuples, empty ones ``()``."""
    from auditor.audit.story import ReleaseRow, RowUse

    write_story(hephy_db.conn)
    conn = hephy_db.conn
    generation = detect(conn)
    for (name,) in conn.execute("SELECT id FROM api_app ORDER BY id").fetchall():
        story = app_story(conn, generation, name)
        for rel in story.releases:
            assert type(rel) is ReleaseRow and len(rel) == len(ReleaseRow._fields)
            assert rel == ReleaseRow(*rel) and isinstance(rel.version, int) and isinstance(rel.failed, bool)
        for use in [*story.configs.values(), *story.builds.values()]:
            assert type(use) is RowUse and len(use) == len(RowUse._fields)
            assert type(use.versions) is tuple and type(use.foreign_apps) is tuple
            assert all(type(v) is int for v in use.versions) and all(type(a) is str for a in use.foreign_apps)
            assert list(use.versions) == [r.version for r in story.releases
                                          if use.uuid in (r.config, r.build)]
