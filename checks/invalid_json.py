"""invalid-json: a JSON column holding text that does not parse, is not a JSON object, or (in a
SQL_ASCII database) is not UTF-8.

On PostgreSQL 16+ the server validates with ``pg_input_is_valid`` (no error can abort the
audit), unless :func:`undecided_sql` finds a value only Python can judge: then the check runs as
before 16 once the cast probe failed.  Older servers have no safe way to validate a value in SQL (a hot standby cannot create
a PL/pgSQL helper), so there the runner first tries :func:`cast_probe_sql` in a savepoint: when
every candidate value casts to ``json`` (the normal case) and none is one the server and Python's
parser could judge differently, :func:`cast_sql` validates on the server like 16+ does.  Else the
query returns every candidate value (anything but the default ``'{}'``) and
:func:`legacy_filter` parses it with :func:`json.loads`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from auditor.core.catalogue import CastRange, Check, Gated, ResultRow
from auditor.core.detect import Generation
from auditor.core.passes import Pass
from auditor.core.query import Query, text, union_all

EXCERPT_CHARS = 80


@dataclass(frozen=True)
class _Table:
    """Where a table's JSON columns live and when one of its rows is in use."""

    name: str
    columns: tuple[str, ...]
    source: str  # subquery with uuid, app_id and the columns (scoped)
    joins: str
    used_by: str  # SQL text: why the row matters now, or NULL


_TABLES: tuple[_Table, ...] = (
    _Table(
        "api_config",
        ("values", "memory", "cpu", "tags", "registry", "healthcheck",
         "lifecycle_post_start", "lifecycle_pre_stop", "termination_grace_period"),
        "SELECT uuid, app_id, {columns} FROM api_config WHERE {scope}",
        "LEFT JOIN live l ON l.app_id = t.app_id LEFT JOIN latest_cfg lc ON lc.app_id = t.app_id",
        "CASE WHEN l.config_id = t.uuid THEN 'live release' WHEN lc.uuid = t.uuid THEN 'latest config' END",
    ),
    _Table(
        "api_build",
        ("procfile",),
        "SELECT uuid, app_id, {columns} FROM api_build WHERE {scope}",
        "LEFT JOIN live l ON l.app_id = t.app_id",
        "CASE WHEN l.build_id = t.uuid THEN 'live release' END",
    ),
    _Table(
        "api_app",
        ("structure", "procfile_structure"),
        "SELECT uuid, uuid AS app_id, {columns} FROM api_app WHERE {app_scope}",
        "LEFT JOIN live l ON l.app_id = t.app_id",
        "CASE WHEN l.uuid IS NOT NULL THEN 'app with a live release' END",
    ),
    _Table(
        "api_appsettings",
        ("autoscale", "label"),
        # Every row that ties for the newest may be what appsettings_set.latest() returns.
        "SELECT uuid, app_id, {columns}, created = max(created) OVER (PARTITION BY app_id) AS is_latest"
        " FROM api_appsettings WHERE {scope}",
        "",
        "CASE WHEN t.is_latest THEN 'latest app settings' END",
    ),
)

# The placeholders are filled by _rows_sql / _select with constant names and SQL; {scope}/{app_scope} and
# %% are for the runner.
# One finding per row: the row's bad columns are aggregated (in schema order) into it.  Every table's
# suspect rows (_ROWS: the column names and values as two arrays) go through one LATERAL: planned once,
# not once per table (each copy cost ~0.6 MB of planner memory and its time, for rows that are rare).
# Every column is read as text (``::text``): an operator may have made one json or jsonb.
_SELECT = """
SELECT CASE WHEN x.used_by IS NOT NULL THEN 'critical' ELSE 'warning' END AS severity,
       x.app_id AS app_uuid, a.name AS app_name, x.object_table, x.uuid::text AS object_id,
       b.message AS message,
       '[]'::json AS related,
       json_build_object('columns', b.columns, 'used_by', x.used_by) AS evidence
FROM (
{rows}
) AS x
CROSS JOIN LATERAL (
    SELECT {aggregates}
    FROM unnest(x.cols, x.vals) WITH ORDINALITY AS v(col, val, ord)
    CROSS JOIN LATERAL (SELECT {utf8} AS utf8) AS enc
    {parse}
    WHERE v.val <> '{{}}' {where}
) AS b
LEFT JOIN apps a ON a.uuid = x.app_id
WHERE b.columns IS NOT NULL
"""
# One table's rows for _SELECT: its name, the row, why it matters now, its columns' names and values.
_ROWS = """    SELECT '{table}'::text AS object_table, t.uuid, t.app_id, {used_by} AS used_by,
           {names} AS cols, {values} AS vals
    FROM (SELECT t.* FROM ({source}) AS t WHERE {suspect} OFFSET 0) AS t
    {joins}"""

# A SQL_ASCII database stores whatever bytes a client sent; a value that is not UTF-8 cannot be
# read by the controller at all (its UTF8 session fails on the row).  The pattern matches valid
# UTF-8 byte by byte (the regex engine sees bytes in SQL_ASCII); it runs only on values with a
# byte above 0x7f.
_VALID_UTF8 = (r"^(?:[\x01-\x7f]|[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]"
               r"|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}"
               r"|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2})*$")
_UTF8_SQL_ASCII = rf"(v.val !~ '[\x80-\xff]' OR v.val ~ '{_VALID_UTF8}')"

# A value that is valid JSON is an object exactly when its first character that is not JSON
# whitespace (space, tab, newline, carriage return: PostgreSQL's lexer and RFC 8259 alike) is ``{``:
# one parse tells a valid object, none tells a valid value's kind when it starts with ``{``.  The
# cheap test first (``ascii``: the first character's code, 123 is ``{``; cheaper than ``left``), the
# pattern only for a value with leading whitespace.  ``v.val`` is replaced by the value's SQL (see
# :func:`_on`).
_STARTS_OBJECT = r"(ascii(v.val) = 123 OR v.val ~ '^[ \t\n\r]+[{]')"
# PostgreSQL 16+: validate in the server; the kind of a valid value that does not start with ``{``
# is the cast's (valid, so the cast cannot fail).
_PARSE_16 = """CROSS JOIN LATERAL (SELECT enc.utf8 AND pg_input_is_valid(v.val, 'json') AS ok) AS p
    CROSS JOIN LATERAL (SELECT CASE WHEN NOT p.ok THEN NULL WHEN {starts_object} THEN 'object'
                                    ELSE json_typeof(v.val::json) END AS kind) AS j"""
_WHERE_16 = "AND (NOT p.ok OR j.kind <> 'object')"
_AGGREGATES_16 = """string_agg(CASE WHEN NOT enc.utf8 THEN format('%%s.%%s is not UTF-8 text', x.object_table, v.col)
                           WHEN p.ok THEN format('%%s.%%s holds a JSON %%s, not an object', x.object_table, v.col, j.kind)
                      ELSE format('%%s.%%s is not valid JSON', x.object_table, v.col) END, '; ' ORDER BY v.ord) AS message,
           json_agg(json_build_object(
               'column', v.col,
               'problem', CASE WHEN NOT enc.utf8 THEN 'not UTF-8' WHEN p.ok THEN 'wrong type: ' || j.kind
                               ELSE 'unparsable' END,
               'error', {error},
               'excerpt', left(v.val, {excerpt}), 'length', length(v.val)) ORDER BY v.ord) AS columns"""
_ERROR_16 = """CASE WHEN enc.utf8 AND NOT p.ok THEN (SELECT concat_ws(': ', e.message, e.detail)
                                                           FROM pg_input_error_info(v.val, 'json') AS e) END"""
# Older servers once cast_probe_sql passed: every candidate UTF-8 value casts, so ``ok`` is the
# encoding alone and no value is unparsable (no parser message to report).
_PARSE_CAST = """CROSS JOIN LATERAL (SELECT enc.utf8 AS ok) AS p
    CROSS JOIN LATERAL (SELECT CASE WHEN NOT p.ok THEN NULL WHEN {starts_object} THEN 'object'
                                    ELSE json_typeof(v.val::json) END AS kind) AS j"""
_ERROR_CAST = "NULL::text"
# PostgreSQL 16+, not SQL_ASCII: a row goes through the per-column LATERAL (VALUES, aggregates)
# only when one of its values is neither the default nor a JSON object. The same tests, inline
# per column: a value is a valid object when it starts with ``{`` and parses (one parse; a value
# that does not start with ``{`` is suspect without parsing). Most rows are fine, and the LATERAL's
# machinery per row was most of the check's time (26 of 33 ms for a 10,000-release app).
_FINE_16 = """CASE WHEN v.val IS NULL OR v.val = '{}' THEN true
     WHEN {starts_object} THEN pg_input_is_valid(v.val, 'json') ELSE false END"""
# The same before 16 once cast_probe_sql passed in the snapshot: every value parses, so none needs
# parsing again to tell an object.
_FINE_CAST = """(v.val IS NULL OR v.val = '{}' OR {starts_object})"""
# The same before 16 when the cast probe failed (the client judges): a row is shipped when one of
# its values is neither the default nor an object by its first character, when one is not UTF-8 or
# only Python can judge it (_UNDECIDED), or when the row is one whose values the cast refused
# (``%(cast_refused)s``, found by :func:`auditor.audit.precast.refused_rows`; every other value
# parses, so no value is parsed here).  ``cast_refused`` NULL ships every row (the reference path).
_FINE_NARROW = """CASE WHEN v.val IS NULL OR v.val = '{}' THEN true WHEN NOT {utf8} THEN false
     WHEN {undecided} THEN false ELSE {starts_object} END"""
_NARROW = """CASE WHEN %(cast_refused)s::uuid[] IS NULL THEN true WHEN t.uuid = ANY(%(cast_refused)s::uuid[]) THEN true
     ELSE NOT ({every}) END"""
# Older servers: ship every candidate value; legacy_filter parses them and writes the message.
_AGGREGATES_LEGACY = """NULL::text AS message,
           json_agg(json_build_object('column', v.col, 'value', v.val, 'length', length(v.val), 'utf8', enc.utf8)
                    ORDER BY v.ord) AS columns"""


def _columns(table: _Table, generation: Generation) -> tuple[str, ...]:
    present = generation.columns.get(table.name, ())
    return tuple(c for c in table.columns if c in present)


def _present(generation: Generation) -> Iterator[tuple[_Table, tuple[str, ...]]]:
    """Each table with the JSON columns this generation has (tables without any are left out)."""
    for table in _TABLES:
        if columns := _columns(table, generation):
            yield table, columns


def _scoped_to(table: _Table, template: str) -> str:
    """``template`` for ``table``: api_app is scoped by its own uuid (``{app_scope}``), the others by app_id."""
    return template.replace("{scope}", "{app_scope}") if table.name == "api_app" else template


def _values(columns: tuple[str, ...]) -> sql.Composable:
    """The ``VALUES`` rows (ord, col, val) of a row ``x``'s ``columns``, each read as text."""
    return sql.SQL(", ").join(sql.SQL("({}, {}::text, {}::text)").format(sql.Literal(i), sql.Literal(c),
                                                                      sql.Identifier("x", c))
                              for i, c in enumerate(columns, 1))


def _on(template: str, value: sql.Composable) -> sql.Composed:
    """``template`` (constant SQL about ``v.val``, braces literal) about ``value`` instead."""
    pieces = template.split("v.val")
    parts: list[sql.Composable] = [sql.SQL(pieces[0])]
    for piece in pieces[1:]:
        parts += [value, sql.SQL(piece)]
    return sql.Composed(parts)


def _expand(template: str, sql_ascii: bool) -> str:
    """``template`` with its ``{starts_object}``, ``{utf8}`` and ``{undecided}`` tests (all about ``v.val``)."""
    return (template.replace("{starts_object}", _STARTS_OBJECT).replace("{undecided}", _UNDECIDED)
            .replace("{utf8}", _UTF8_SQL_ASCII if sql_ascii else "true"))


def _suspect(columns: tuple[str, ...], mode: str, sql_ascii: bool) -> sql.Composable:
    """SQL: row ``t`` has a value the LATERAL must look at (mode ``server``, ``cast``) or ship (``legacy``)."""
    if sql_ascii and mode != "legacy":
        return sql.SQL("true")
    fine = {"server": _FINE_16, "cast": _FINE_CAST, "legacy": _FINE_NARROW}[mode]
    every = sql.SQL(" AND ").join(_on(_expand(fine, sql_ascii), sql.SQL("{}::text").format(sql.Identifier("t", c)))
                                  for c in columns)
    if mode != "legacy":
        return sql.SQL("NOT ({})").format(every)
    before, after = _NARROW.split("{every}")
    return sql.Composed([sql.SQL(before), every, sql.SQL(after)])


def _source(table: _Table, columns: tuple[str, ...]) -> Query:
    """The table's scoped rows with ``uuid``, ``app_id`` and its JSON ``columns``."""
    return Query(table.source, {"columns": sql.SQL(", ").join(map(sql.Identifier, columns))})


def _array(items: Iterable[sql.Composable], element: str) -> sql.Composed:
    """SQL: the text array of ``element`` (a template of one ``{}``) for each of ``items``."""
    return sql.SQL("ARRAY[{}]::text[]").format(sql.SQL(", ").join(sql.SQL(element).format(i) for i in items))


def _rows_sql(table: _Table, columns: tuple[str, ...], mode: str, sql_ascii: bool,
              rows: sql.Identifier | None = None) -> Query:
    """One table's rows for the check's SELECT; ``rows``: the table's pass of :func:`gated` (its suspect
    rows flagged ``suspect``) instead of the table."""
    # Only the constant table and column names above (as present in the schema) are composed in.
    return Query(_ROWS, {
        "table": text(table.name), "joins": sql.SQL(table.joins), "used_by": sql.SQL(table.used_by),
        "names": _array(map(sql.Literal, columns), "{}"),
        "values": _array((sql.Identifier("t", c) for c in columns), "{}::text"),
        "source": _source(table, columns) if rows is None else Query("SELECT * FROM {rows}", {"rows": rows}),
        "suspect": _suspect(columns, mode, sql_ascii) if rows is None else sql.SQL("t.suspect"),
    })


def _select(rows: list[Query], mode: str, sql_ascii: bool) -> Query:
    """The check's SELECT: every table's ``rows`` through one LATERAL over their values."""
    parts: dict[str, sql.Composable | Query] = {
        "rows": union_all(rows), "utf8": sql.SQL(_UTF8_SQL_ASCII if sql_ascii else "true")}
    if mode == "legacy":
        parts.update(parse=sql.SQL(""), where=sql.SQL(""), aggregates=sql.SQL(_AGGREGATES_LEGACY))
    else:
        parse, error = (_PARSE_16, _ERROR_16) if mode == "server" else (_PARSE_CAST, _ERROR_CAST)
        parts.update(parse=sql.SQL(_expand(parse, sql_ascii)), where=sql.SQL(_WHERE_16),
                     aggregates=Query(_AGGREGATES_16, {"excerpt": sql.Literal(EXCERPT_CHARS), "error": sql.SQL(error)}))
    return Query(_SELECT, parts)


def invalid_json_sql(generation: Generation, legacy: bool = False) -> Query:
    """The check's SELECT over the JSON columns this generation has (``legacy``: the candidate values
    for :func:`legacy_filter`)."""
    return _union(generation, "legacy" if legacy else "server")


def cast_sql(generation: Generation) -> Query:
    """The check's SELECT before PostgreSQL 16, once :func:`cast_probe_sql` passed in the same snapshot:
    the values are validated by casting them (same findings as :func:`legacy_filter` would give)."""
    return _union(generation, "cast")


def _union(generation: Generation, mode: str) -> Query:
    sql_ascii = generation.encoding == "SQL_ASCII"
    return _select([_rows_sql(t, cols, mode, sql_ascii) for t, cols in _present(generation)], mode, sql_ascii)


# Python's json.loads fails where PostgreSQL's parser does not on integers of more than 4,300 digits
# (sys.get_int_max_str_digits) and on nesting deeper than the recursion limit (~1,000).  A value that
# might be either (a run of 255 digits in a long value, or 500 brackets: PostgreSQL's regex counts
# only up to 255) is left to Python: the probe reports it and the check runs on the client.
_UNDECIDED = (r"(octet_length(v.val) > 4300 AND length(v.val) > 4300 AND v.val ~ '[0-9]{255}')"
              r" OR (octet_length(v.val) >= 500 AND length(v.val) >= 500"
              r" AND length(v.val) - length(translate(v.val, '[{', '')) >= 500)")
# (``octet_length`` first: it reads the header, ``length`` counts characters.)

# One row per table: how many candidate values were cast (every one, or the statement raises
# invalid_text_representation) and how many only Python can judge.  Each column inline, no LATERAL
# per row (which cost more than the casts).
_PROBE = "SELECT {table}::text AS object_table, {cast_values} AS cast_values, {undecided} AS undecided FROM {name} AS t WHERE {scope}"
_CANDIDATE = "v.val IS NOT NULL AND v.val <> '{}' AND {utf8}"
_CAST_VALUE = "CASE WHEN {candidate} THEN (json_typeof(v.val::json) IS NOT NULL)::int ELSE 0 END"
_UNDECIDED_VALUE = "CASE WHEN {candidate} AND ({undecided}) THEN 1 ELSE 0 END"


def _per_row_sum(template: str, columns: tuple[str, ...], sql_ascii: bool) -> sql.Composed:
    """SQL: the sum over row ``t``'s ``columns`` of ``template`` (about ``v.val``)."""
    expanded = _expand(template.replace("{candidate}", _CANDIDATE), sql_ascii)
    return sql.SQL(" + ").join(_on(expanded, sql.SQL("{}::text").format(sql.Identifier("t", c))) for c in columns)


def _per_value_sum(template: str, columns: tuple[str, ...], sql_ascii: bool) -> sql.Composed:
    """SQL: the sum over the table's rows ``t`` of ``template`` (about ``v.val``) for each column."""
    return sql.SQL("coalesce(sum({}), 0)").format(_per_row_sum(template, columns, sql_ascii))


def _lengths(columns: tuple[str, ...]) -> sql.Composed:
    """SQL: row ``t``'s ``columns``' lengths in bytes, for ``greatest``."""
    return sql.SQL(", ").join(sql.SQL("octet_length({}::text)").format(sql.Identifier("t", c)) for c in columns)


# From PostgreSQL 16 the server validates every value (no cast to probe): only the values only
# Python can judge are counted.  Each is at least 500 bytes long, so a row's longest value is tested
# first (one comparison per row; the rows with a long value are tested value by value).  Under
# --app the scans stay in the session's backend ({serial}): planned in parallel, starting the workers
# took longer than the audit of the largest app.
_UNDECIDED_PROBE = ("SELECT {table}::text AS object_table, 0 AS cast_values, {undecided} AS undecided"
                    " FROM {name} AS t WHERE {scope} AND {serial} AND greatest({lengths}) >= 500")


def undecided_sql(generation: Generation) -> Query:
    """From PostgreSQL 16: one row per table (as :func:`cast_probe_sql`'s) counting the values only
    Python can judge, casting none (0: the server's validation is exact)."""
    sql_ascii = generation.encoding == "SQL_ASCII"
    return union_all([Query(_scoped_to(table, _UNDECIDED_PROBE), {
        "table": sql.Literal(table.name), "name": sql.Identifier(table.name),
        "undecided": _per_value_sum(_UNDECIDED_VALUE, columns, sql_ascii),
        "lengths": _lengths(columns),
    }) for table, columns in _present(generation)])


# From PostgreSQL 16 in the gated statement: one pass per table reads it once for the gate and the
# check.  It keeps the rows the check looks at (``suspect``: the test of _FINE_16) and those with a
# value only Python can judge (``undecided``, counted per row as :func:`undecided_sql` counts them):
# none of either in the normal case.  The fence keeps each test evaluated once per row.
_GATED_ROWS = """SELECT * FROM (
    SELECT t.*, {suspect} AS suspect,
           CASE WHEN greatest({lengths}) >= 500 THEN {undecided} ELSE 0 END AS undecided
    FROM ({source}) AS t OFFSET 0) AS s
WHERE s.suspect OR s.undecided > 0"""
_GATED_PROBE = "SELECT {table}::text AS object_table, 0 AS cast_values, coalesce(sum(s.undecided), 0) AS undecided FROM {rows} AS s"


def gated(generation: Generation) -> Gated | None:
    """From PostgreSQL 16, the check behind the gate (:class:`~auditor.core.catalogue.Gated`): a pass per
    table (``json_<table>``) read by :func:`undecided_sql`'s count and by the check's SELECT, instead of
    a scan of each table for each.  None in a SQL_ASCII database (every row is looked at there)."""
    if generation.encoding == "SQL_ASCII":
        return None
    passes, probes, selects = [], [], []
    for table, columns in _present(generation):
        name = f"json_{table.name}"
        rows = sql.Identifier(name)
        passes.append(Pass(name, Query(_GATED_ROWS, {
            "source": _source(table, columns), "suspect": _suspect(columns, "server", False),
            "lengths": _lengths(columns), "undecided": _per_row_sum(_UNDECIDED_VALUE, columns, False)})))
        probes.append(Query(_GATED_PROBE, {"table": sql.Literal(table.name), "rows": rows}))
        selects.append(_rows_sql(table, columns, "server", False, rows))
    return Gated(tuple(passes), union_all(probes), _select(selects, "server", False))


def cast_probe_sql(generation: Generation) -> Query:
    """Before PostgreSQL 16: cast every value :func:`cast_sql` would cast (raises 22P02 when one does
    not parse); one row per table with the count of values Python must judge (0: cast_sql is exact)."""
    sql_ascii = generation.encoding == "SQL_ASCII"
    selects = []
    for table, columns in _present(generation):
        selects.append(Query(_scoped_to(table, _PROBE), {
            "table": sql.Literal(table.name), "name": sql.Identifier(table.name),
            "cast_values": _per_value_sum(_CAST_VALUE, columns, sql_ascii),
            "undecided": _per_value_sum(_UNDECIDED_VALUE, columns, sql_ascii),
        }))
    return union_all(selects)


# Before 16, once the probe failed: the rows whose uuid is in a range, for
# auditor.audit.precast.refused_rows.  _RANGE_CAST casts every candidate value of each row inline
# (no LATERAL per row: it cost ~3x the casts; each CASE is true or raises, so every one is
# evaluated); _RANGE_VALUES ships the candidate values of a small range to be parsed on the client.
_IN_RANGE = "{scope} AND uuid BETWEEN %(cast_from)s::uuid AND %(cast_to)s::uuid"
# The casts are in the select list: evaluated only for the rows the WHERE keeps (quals may be
# evaluated in any order).
_RANGE_CAST = """SELECT count(CASE WHEN {every} THEN 1 END) FROM {name} AS t
WHERE {in_range} AND NOT uuid::text = ANY(%(cast_excluded)s::text[])"""
_CASTS = "CASE WHEN v.val IS NULL OR v.val = '{}' OR NOT {utf8} THEN true ELSE json_typeof(v.val::json) IS NOT NULL END"
_RANGE_VALUES = """
SELECT x.uuid::text AS object_id, v.val AS value
FROM (SELECT uuid, {columns} FROM {name} WHERE {in_range}) AS x
CROSS JOIN LATERAL (VALUES {values}) AS v(ord, col, val)
CROSS JOIN LATERAL (SELECT {utf8} AS utf8) AS enc
WHERE v.val <> '{{}}' AND enc.utf8
LIMIT %(leaf_values)s
"""


def cast_ranges_sql(generation: Generation) -> tuple[CastRange, ...]:
    """Before PostgreSQL 16, per table: the values :func:`cast_probe_sql` casts, in the rows whose uuid is
    in a range (:class:`~auditor.core.catalogue.CastRange`)."""
    sql_ascii = generation.encoding == "SQL_ASCII"
    ranges = []
    for table, columns in _present(generation):
        in_range = Query(_scoped_to(table, _IN_RANGE))
        casts = sql.SQL(" AND ").join(_on(_expand(_CASTS, sql_ascii), sql.SQL("{}::text").format(sql.Identifier("t", c)))
                                      for c in columns)
        name = sql.Identifier(table.name)
        ranges.append(CastRange(
            cast=Query(_RANGE_CAST, {"name": name, "in_range": in_range, "every": casts}),
            values=Query(_RANGE_VALUES, {
                "name": name, "in_range": in_range,
                "columns": sql.SQL(", ").join(map(sql.Identifier, columns)),
                "values": _values(columns), "utf8": sql.SQL(_UTF8_SQL_ASCII if sql_ascii else "true")}),
        ))
    return tuple(ranges)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (dict, "object"), (list, "array"), (str, "string"), (bool, "boolean"), (int, "number"), (float, "number"),
)


def json_problem(value: str) -> tuple[str, str | None] | None:
    """``None`` for a JSON object; else ``("unparsable", parser message)`` or ``("wrong type: T", None)``."""
    try:
        parsed = json.loads(value, parse_constant=_reject_constant)
    except ValueError as exc:
        return "unparsable", str(exc)
    except RecursionError:
        return "unparsable", "nested too deeply to parse"
    if isinstance(parsed, dict):
        return None
    kind = next((name for typ, name in _TYPE_NAMES if isinstance(parsed, typ)), "null")
    return f"wrong type: {kind}", None


def _problem_text(table: str, column: str, problem: str) -> str:
    if problem == "not UTF-8":
        return f"{table}.{column} is not UTF-8 text"
    if problem == "unparsable":
        return f"{table}.{column} is not valid JSON"
    return f"{table}.{column} holds a JSON {problem.removeprefix('wrong type: ')}, not an object"


def legacy_filter(row: ResultRow) -> ResultRow | None:
    """Parse a legacy row's candidate values (a named row of the runner's columns): the row with its
    message and evidence, or None when all are objects."""
    table, evidence = row.object_table, row.evidence or {}
    bad = []
    for candidate in evidence["columns"]:
        found = ("not UTF-8", None) if candidate.get("utf8") is False else json_problem(candidate["value"])
        if found is not None:
            problem, error = found
            bad.append({"column": candidate["column"], "problem": problem, "error": error,
                        "excerpt": candidate["value"][:EXCERPT_CHARS], "length": candidate["length"]})
    if not bad:
        return None
    message = "; ".join(_problem_text(table, b["column"], b["problem"]) for b in bad)
    return row._replace(message=message, evidence={**evidence, "columns": bad})


CHECK = Check(
    id="invalid-json",
    severity="critical",
    levels=("critical", "warning"),
    title="JSON column that does not hold a JSON object",
    rationale="""\
Every JSON column of the controller (config `values`, `memory`, `cpu`, `tags`,
`registry`, `healthcheck`, lifecycle hooks, `termination_grace_period`; build
`procfile`; app `structure`, `procfile_structure`; app settings `autoscale`, `label`) is
a text column holding a serialised JSON object, `{}` by default.  Text that does not
parse, or parses to an array, string, number or `null`, was written around the
controller (hand-edited SQL, a broken restore, an encoding mishap).  jsonfield 3.x hands
such a value to the controller as a plain string instead of failing on read, so the
damage shows up later and elsewhere: `config:set` merges into it and crashes, a deploy
builds the pod spec from it and fails, `ps:scale` cannot read the app's structure.
Critical when the row matters now (the config or build of the app's live release, the
app's latest config, the row of an app with a live release, the app's latest settings),
warning for historical rows, which break only a rollback to them.  One finding per row;
its evidence lists each bad column with the problem (`unparsable` with the parser's
message, or `wrong type: ...`) and the first 80 characters of the value.  Parsing is
Python's `json.loads`, as the controller's: a value PostgreSQL accepts but Python refuses
(nested about a thousand levels deep, an integer of more than 4,300 digits) is
`unparsable` too, on every server.  Columns an
operator turned into `json` or `jsonb` are read as text the same way.  In a `SQL_ASCII`
database, which stores whatever bytes a client sent, a value that is not UTF-8 is reported
as `not UTF-8`: the controller's UTF8 session cannot even read that row.""",
    passes=("apps", "live", "latest_cfg"),
    sql=invalid_json_sql,
    legacy_sql=lambda generation: invalid_json_sql(generation, legacy=True),
    legacy_filter=legacy_filter,
    cast_sql=cast_sql,
    cast_probe_sql=cast_probe_sql,
    undecided_sql=undecided_sql,
    gated=gated,
    cast_ranges_sql=cast_ranges_sql,
    cast_judge=lambda value: json_problem(value) is not None,
)
