"""Every check's SQL and every shared pass is one statement PostgreSQL 9.4 can run.

The SQL is rendered the way the runner renders it (scope fragments filled, named parameters
replaced by literals), parsed with sqlglot (dialect postgres), and its tokens searched for
the constructs 9.4 lacks.  String literals are skipped, so a message that mentions
"ON CONFLICT" is not a false alarm.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
import sqlglot
from psycopg import sql
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.tokens import TokenType

from auditor.audit.runner import Scope, build_statement
from auditor.core.detect import detect
from auditor.core.passes import passes_for
from auditor.core.query import Query
from checks import CATALOGUE

#: Keyword sequences of later releases (9.5: ON CONFLICT, GROUPING SETS, CUBE, ROLLUP, SKIP
#: LOCKED, TABLESAMPLE; 9.6: ADD COLUMN IF NOT EXISTS; 12: [NOT] MATERIALIZED CTEs).
FORBIDDEN_SEQUENCES: tuple[tuple[str, ...], ...] = (
    ("ON", "CONFLICT"), ("GROUPING", "SETS"), ("CUBE", "("), ("ROLLUP", "("), ("SKIP", "LOCKED"),
    ("TABLESAMPLE",), ("ADD", "COLUMN", "IF"), ("AS", "MATERIALIZED"), ("AS", "NOT", "MATERIALIZED"),
)
#: Functions that arrived after 9.4.
FORBIDDEN_FUNCTIONS = frozenset({
    "jsonb_set", "jsonb_insert", "to_jsonb", "jsonb_build_object", "jsonb_build_array", "jsonb_agg",
    "jsonb_object_agg", "jsonb_strip_nulls", "json_strip_nulls", "jsonb_pretty", "gen_random_uuid",
    "pg_input_is_valid", "array_position", "array_positions", "num_nulls", "num_nonnulls",
    "regexp_match", "websearch_to_tsquery", "string_to_table", "jsonb_path_query", "jsonb_path_exists",
    "pg_input_error_info", "to_regclass",  # 16+; to_regclass(text) is 9.6+ (9.4 has only cstring)
    "pg_current_wal_lsn", "pg_last_wal_replay_lsn",  # 10+
})
#: Allowed in a check's main SQL when a ``legacy_sql`` serves servers that lack it.
VERSION_SWITCHED = frozenset({"pg_input_is_valid", "pg_input_error_info"})

_PARAM = re.compile(r"%\((\w+)\)s")


def portability_problems(text: str, switched: frozenset[str] = frozenset()) -> list[str]:
    """What in ``text`` PostgreSQL 9.4 cannot run (empty when it can)."""
    problems = []
    tokens = [t for t in Dialect.get_or_raise("postgres").tokenize(text) if t.token_type != TokenType.STRING]
    words = [word for t in tokens for word in t.text.upper().split()]  # "GROUPING SETS" is one token
    for i in range(len(words)):
        for sequence in FORBIDDEN_SEQUENCES:
            if tuple(words[i:i + len(sequence)]) == sequence:
                problems.append(" ".join(sequence))
        if i + 1 < len(words) and words[i + 1] == "(":
            name = words[i].lower()
            if name in FORBIDDEN_FUNCTIONS and name not in switched:
                problems.append(f"{name}()")
            if name == "current_setting" and _top_level_commas(words, i + 1) > 0:
                problems.append("current_setting(name, missing_ok)")
    return problems


def _top_level_commas(words: list[str], open_at: int) -> int:
    depth, commas = 0, 0
    for word in words[open_at:]:
        depth += word == "("
        depth -= word == ")"
        if depth == 0:
            break
        commas += depth == 1 and word == ","
    return commas


def one_statement(text: str) -> exp.Expression:
    """The single statement ``text`` parses to (fails the test otherwise)."""
    statements = [s for s in sqlglot.parse(text, read="postgres") if s is not None]
    assert len(statements) == 1, f"{len(statements)} statements"
    assert isinstance(statements[0], exp.Query), type(statements[0]).__name__
    return statements[0]


def rendered(template: Query, conn, scoped: bool) -> str:
    """``template`` as the runner sends it, with literals in place of the named parameters."""
    fragments = {
        "scope": sql.SQL("app_id = ANY(%(app_uuids)s::uuid[])" if scoped else "true"),
        "app_scope": sql.SQL("uuid = ANY(%(app_uuids)s::uuid[])" if scoped else "true"),
        "partial": sql.SQL("true" if scoped else "false"),
    }
    text = template.compose(**fragments).as_string(conn)
    return _PARAM.sub(lambda m: "ARRAY[]::text[]" if m.group(1) == "app_uuids" else "300", text).replace("%%", "%")


@pytest.mark.parametrize("encoding", ["UTF8", "SQL_ASCII"])
@pytest.mark.parametrize("scoped", [False, True], ids=["all-apps", "some-apps"])
def test_every_check_and_pass_is_one_portable_statement(db, scoped, encoding):
    generation = replace(detect(db.conn), encoding=encoding)  # SQL_ASCII: invalid-json also checks UTF-8
    checked = 0
    # rel_notable runs its own window (under --app over the scope's releases numbered by app), or filters
    # rel_pos when the statement lists the shared rows' info.
    variants = [*passes_for(generation).items(), ("rel_notable/window_listed", passes_for(generation, True)["rel_notable"]),
                ("rel_notable/scoped", passes_for(generation, scoped=True)["rel_notable"])]
    for name, shared_pass in variants:
        text = rendered(shared_pass.body, db.conn, scoped)
        one_statement(text)
        assert portability_problems(text) == [], f"pass {name}"
        checked += 1
    for check in CATALOGUE.values():
        if not check.applies_to(generation):
            continue
        variants = [(check.sql_for(generation), VERSION_SWITCHED if check.legacy_sql is not None else frozenset())]
        if check.legacy_sql is not None:
            variants.append((check.sql_for(generation, legacy=True), frozenset()))
        above_info = check.above_info_sql_for(generation)
        if above_info is not None:  # listed when its info findings are counted
            variants.append((above_info, frozenset()))
        if check.cast_sql is not None:  # before 16, once its probe passed; and the probe itself
            variants.append((check.sql_for(generation, legacy=True, cast=True), frozenset()))
            probe = check.cast_probe_for(generation)
            assert probe is not None, check.id
            variants.append((probe, frozenset()))
        for cast_range in check.cast_ranges_for(generation) or ():  # the bisection once the probe failed
            variants += [(cast_range.cast, frozenset()), (cast_range.values, frozenset())]
        for template, switched in variants:
            text = rendered(template, db.conn, scoped)
            one_statement(text)
            assert portability_problems(text, switched) == [], f"check {check.id}"
            checked += 1
    assert checked >= len(passes_for(generation)) + 7


def passes_read(text: str, passes: set[str]) -> set[str]:
    """The shared passes ``text`` reads: the tables it names that are passes and not its own CTEs."""
    tree = one_statement(text)
    own = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    return {t.name for t in tree.find_all(exp.Table) if t.name in passes and t.name not in own}


@pytest.mark.parametrize("scoped", [False, True], ids=["all-apps", "some-apps"])
def test_each_check_declares_exactly_the_passes_its_sql_reads(db, scoped):
    """A check's ``passes`` and a pass's ``needs`` say what the SQL reads (its listing and its counting
    SELECT together), no more and no less (the runner puts exactly the declared passes, and what they
    need, into the statement)."""
    generation = detect(db.conn)
    passes = passes_for(generation)
    names = set(passes)
    for name, shared_pass in [*passes.items(), ("rel_notable/window_listed", passes_for(generation, True)["rel_notable"]),
                              ("rel_notable/scoped", passes_for(generation, scoped=True)["rel_notable"])]:
        assert passes_read(rendered(shared_pass.body, db.conn, scoped), names) == set(shared_pass.needs), f"pass {name}"
    compared = 0
    for check in CATALOGUE.values():
        if not check.applies_to(generation):
            continue
        for legacy in ([False, True] if check.legacy_sql is not None else [False]):
            text = rendered(check.sql_for(generation, legacy), db.conn, scoped)
            read = passes_read(text, names)
            count = check.count_sql_for(generation)
            if count is not None:
                # The statement carries the passes of both forms (a check is listed or counted).
                read |= passes_read(rendered(count, db.conn, scoped), names)
            assert read == set(check.passes), f"check {check.id}"
            compared += 1
        above_info = check.above_info_sql_for(generation)
        if above_info is not None:
            # The statement that counts the info findings carries these two and their passes alone.
            read = passes_read(rendered(above_info, db.conn, scoped), names)
            count = check.count_sql_for(generation)
            assert count is not None, f"check {check.id}: its info findings are counted by count_sql"
            read |= passes_read(rendered(count, db.conn, scoped), names)
            assert read == set(check.above_info_passes), f"check {check.id} above info"
    assert compared >= 12


def test_the_whole_audit_is_one_statement_on_the_pre_16_path(db):
    generation = detect(db.conn)
    checks = [c for c in CATALOGUE.values() if c.applies_to(generation)]
    statement = build_statement(generation, checks, Scope(), server_version=90400)
    text = _PARAM.sub("300", statement.as_string(db.conn)).replace("%%", "%")
    one_statement(text)
    assert portability_problems(text) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("INSERT INTO t (a) VALUES (1) ON CONFLICT DO NOTHING", "ON CONFLICT"),
        ("WITH x AS MATERIALIZED (SELECT 1) SELECT * FROM x", "AS MATERIALIZED"),
        ("SELECT jsonb_set(v, '{a}', '1') FROM t", "jsonb_set()"),
        ("SELECT to_jsonb(t) FROM t", "to_jsonb()"),
        ("SELECT gen_random_uuid()", "gen_random_uuid()"),
        ("SELECT pg_input_is_valid(v, 'json') FROM t", "pg_input_is_valid()"),
        ("SELECT current_setting('x', true)", "current_setting(name, missing_ok)"),
        ("SELECT a, count(*) FROM t GROUP BY GROUPING SETS ((a), ())", "GROUPING SETS"),
        ("SELECT * FROM t FOR UPDATE SKIP LOCKED", "SKIP LOCKED"),
        ("ALTER TABLE t ADD COLUMN IF NOT EXISTS c int", "ADD COLUMN IF"),
    ],
)
def test_the_detector_finds_each_later_construct(text, problem):
    assert problem in portability_problems(text)


def test_the_detector_ignores_string_literals_and_allowed_constructs():
    text = ("SELECT format('on conflict jsonb_set( %s', current_setting('TimeZone')), "
            "json_build_object('a', 1), json_agg(x) FILTER (WHERE x > 0) FROM t, unnest(a) WITH ORDINALITY")
    assert portability_problems(text) == []
    assert portability_problems("SELECT pg_input_is_valid(v, 'json')", VERSION_SWITCHED) == []


def test_two_statements_are_refused():
    with pytest.raises(AssertionError):
        one_statement("SELECT 1; SELECT 2")
