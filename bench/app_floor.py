"""The one-app floor: the least work any audit of one app must do, as one hand-written statement.

Issue #16 asks for the largest app's audit statement in 50 ms.  This floor says what that target
leaves to the tool: the facts every implementation of the checks must read for one app, counted
and nothing rendered (no message, no ``related`` list, no evidence, no JSON line):

* the app's releases in position order (``version, created, uuid``: repeated versions, gaps), the
  newest by ``created`` (``release_set.latest()``, ties) and the live release (the newest that
  did not fail);
* per table (configs, builds): the app's releases grouped by row, fully joined with the app's rows
  (orphans, rows shared, this app's releases pointing outside its rows), the JSON of each row
  checked, ``latest()`` (the newest ``created``, the smallest uuid among ties) against the live
  release's row;
* other apps' releases using the app's rows, read through the pointer's index for the array of the
  app's rows (the cascade that crosses apps; no index covers ``(config_id, app_id)``).

It is a lower bound, not the audit: it does not tell findings apart by severity or hazard class,
and the in-flight window, dangling parents and the app settings are left out.  It runs as the
tool's statement does: in a fresh session whose only earlier statement resolved the app (as the
tool resolves its scope), inside a READ ONLY, REPEATABLE READ transaction with JIT off and the
audit's ``work_mem``.  JSON is validated with ``pg_input_is_valid`` from 16 on; before 16 each value
is cast (as the tool's optimistic cast), which fails on an unparsable value: the floor is then not
timed for that app and its ``bad_json`` facts are ``None`` (the benchmark's databases hold no
unparsable value).

Run: ``python -m bench.app_floor --dsn DSN --app NAME [--repeat N]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
from psycopg import sql

from auditor.core.connection import DEFAULT_WORK_MEM, JIT_OFF
from auditor.core.detect import Generation, detect
from auditor.core.settings import DEFAULT_SKEW_SECONDS
from bench.fused import JSON_COLUMNS, JsonCheck, _bad_json

# {failed}: the release's failed flag (false before 0020); {bad_config}/{bad_build}: "this row
# holds a value that is not a JSON object".  One row of facts, named by column.
_STATEMENT = """
WITH r AS (
    SELECT r.version, r.created, {failed} AS failed, r.config_id, r.build_id,
           r.version = lag(r.version) OVER w AS repeats,
           r.version > lag(r.version) OVER w + 1 AS gap_before
    FROM api_release r
    WHERE r.app_id = %(app)s
    WINDOW w AS (ORDER BY r.version, r.created, r.uuid)
), newest AS (
    SELECT max(r.created) AS created FROM r
), live AS (
    SELECT r.config_id, r.build_id FROM r WHERE NOT r.failed
    ORDER BY r.created DESC, r.version DESC LIMIT 1
), releases AS (
    SELECT count(*) AS releases, max(r.version) AS highest,
           count(*) FILTER (WHERE r.repeats) AS repeated, count(*) FILTER (WHERE r.gap_before) AS gaps,
           count(*) FILTER (WHERE r.created = n.created) AS newest_tied,
           max(r.version) FILTER (WHERE r.created = n.created) AS newest_version,
           count(*) FILTER (WHERE r.created > now() + %(skew_seconds)s::float8 * interval '1 second')
               AS future_dated
    FROM r CROSS JOIN newest n
){tables}
SELECT s.releases, s.highest, s.repeated, s.gaps, s.newest_tied, s.newest_version, s.future_dated{columns}
FROM releases s{joins}
"""

#: Per table ({t}: config or build, {pointer}: the release's column): the app's rows with their JSON
#: flag, its releases grouped by row, other apps' releases using its rows, then counted in one row.
_TABLE = """, {t}_rows AS (
    SELECT w.uuid, w.created, {bad} AS bad FROM {table} w WHERE w.app_id = %(app)s
), {t}_use AS (
    SELECT r.{pointer} AS uuid, count(*) AS n FROM r WHERE r.{pointer} IS NOT NULL GROUP BY r.{pointer}
), {t}_foreign AS (
    SELECT f.{pointer} AS uuid, count(*) AS n
    FROM api_release f
    WHERE f.{pointer} = ANY (ARRAY(SELECT x.uuid FROM {table} x WHERE x.app_id = %(app)s))
      AND f.app_id IS DISTINCT FROM %(app)s
    GROUP BY f.{pointer}
), {t}_counted AS (
    SELECT count(w.uuid) AS rows,
           count(*) FILTER (WHERE w.uuid IS NOT NULL AND u.uuid IS NULL AND f.uuid IS NULL) AS orphans,
           count(*) FILTER (WHERE w.uuid IS NOT NULL AND coalesce(u.n, 0) + coalesce(f.n, 0) > 1) AS shared,
           count(*) FILTER (WHERE w.bad) AS bad_json,
           coalesce(sum(f.n), 0)::bigint AS foreign_uses,
           coalesce(sum(u.n) FILTER (WHERE w.uuid IS NULL), 0)::bigint AS outside_refs,
           max(w.created) AS newest
    FROM {t}_rows w
    FULL JOIN {t}_use u ON u.uuid = w.uuid
    LEFT JOIN {t}_foreign f ON f.uuid = w.uuid
), {t}_latest AS (
    SELECT min(w.uuid::text)::uuid AS uuid, count(*) AS tied
    FROM {t}_rows w JOIN {t}_counted c ON w.created = c.newest
)"""
_TABLE_COLUMNS = (", {t}.rows AS {t}_rows, {t}.orphans AS {t}_orphans, {t}.shared AS {t}_shared,"
                  " {t}.bad_json AS {t}_bad_json, {t}.foreign_uses AS {t}_foreign_uses,"
                  " {t}.outside_refs AS {t}_outside_refs, {t}l.uuid::text AS {t}_latest,"
                  " {t}l.tied AS {t}_latest_tied, (SELECT l.{pointer} FROM live l)::text AS {t}_live")
_TABLE_JOINS = " CROSS JOIN {t}_counted {t} CROSS JOIN {t}_latest {t}l"

_TABLES = (("config", "api_config", "config_id"), ("build", "api_build", "build_id"))


def statement(generation: Generation, json_check: JsonCheck) -> sql.SQL:
    """The floor's statement for ``generation``, validating JSON with ``json_check``."""
    present = generation.columns
    tables = columns = joins = ""
    for t, table, pointer in _TABLES:
        json_columns = tuple(c for c in JSON_COLUMNS[table] if c in present.get(table, ()))
        tables += _TABLE.format(t=t, table=table, pointer=pointer, bad=_bad_json(json_columns, json_check, "w"))
        columns += _TABLE_COLUMNS.format(t=t, pointer=pointer)
        joins += _TABLE_JOINS.format(t=t)
    failed = "r.failed" if generation.has_failed else "false"
    # Only constant text built above reaches the statement; the app is a parameter.
    return sql.SQL(_STATEMENT.format(failed=failed, tables=tables, columns=columns, joins=joins))


@dataclass
class AppFloor:
    """The floor's facts for one app and the seconds of each fresh-session run."""

    app: str
    facts: dict[str, Any] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def _run_once(dsn: str, app: str, floor: AppFloor, json_check: JsonCheck | None) -> None:
    """One fresh session: resolve the app, then the statement, timed with the fetch of its row."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        generation = detect(conn)
        row = conn.execute("SELECT uuid FROM api_app WHERE id = %s", (app,)).fetchone()
        if row is None:
            raise SystemExit(f"bench.app_floor: no app named {app!r}")
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        conn.execute("SELECT set_config('work_mem', %s, true), " + JIT_OFF, (DEFAULT_WORK_MEM,))
        if json_check is None:
            json_check = "pg_input_is_valid" if conn.info.server_version >= 160000 else "cast"
        params = {"app": row[0], "skew_seconds": DEFAULT_SKEW_SECONDS}
        began = time.perf_counter()
        try:
            floor.facts = _facts(conn.execute(statement(generation, json_check), params))
        except psycopg.errors.InvalidTextRepresentation:
            # The cast (servers before 16) failed on a value of the app: its facts without the JSON
            # test, not timed.
            conn.execute("ROLLBACK")
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            floor.facts = _facts(conn.execute(statement(_without_json(generation), json_check), params))
            floor.facts["config_bad_json"] = floor.facts["build_bad_json"] = None
            return
        floor.seconds.append(time.perf_counter() - began)


def _facts(cur: psycopg.Cursor[Any]) -> dict[str, Any]:
    """The statement's one row, by column name (fetched: part of the timed run)."""
    values = cur.fetchone()
    assert values is not None and cur.description is not None
    return dict(zip((c.name for c in cur.description), values, strict=True))


def _without_json(generation: Generation) -> Generation:
    """``generation`` with no JSON column in the configs and builds (the floor's fallback before 16)."""
    columns = dict(generation.columns)
    for _, table, _ in _TABLES:
        columns[table] = tuple(c for c in columns.get(table, ()) if c not in JSON_COLUMNS[table])
    return replace(generation, columns=columns)


def app_floor(dsn: str, app: str, repeat: int = 7, json_check: JsonCheck | None = None) -> AppFloor:
    """Run the floor for ``app`` ``repeat`` times, each in a fresh session; ``json_check``: how JSON is
    validated (default: ``pg_input_is_valid`` from PostgreSQL 16 on, else ``cast``)."""
    floor = AppFloor(app)
    for _ in range(max(1, repeat)):
        _run_once(dsn, app, floor, json_check)
    return floor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.app_floor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--app", required=True)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    floor = app_floor(args.dsn, args.app, args.repeat)
    for name, value in floor.facts.items():
        print(f"{name:22s} {value}")
    if floor.seconds:
        print(f"floor: best {floor.best * 1000:.1f} ms, median {floor.median * 1000:.1f} ms "
              f"of {len(floor.seconds)} fresh sessions")
    else:
        print("floor: not timed (a JSON value of the app does not parse before PostgreSQL 16)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
