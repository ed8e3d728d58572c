"""One database, one report: the same bytes whatever plan the server picks for the audit's statement
(parallel workers or none, hash or sort, fresh statistics or none), in every format, on the
pre-16 path too (the compat subset runs this on every major)."""

from __future__ import annotations

import re

import pytest
from psycopg import conninfo, sql

from auditor.audit import open_audit
from auditor.audit.listing import Listing
from auditor.audit.runner import build_statement, cast_gate, check_order, client_side_checks
from auditor.core.settings import Settings
from bench.explain_audit import audit_statement
from tests.test_bench import damaged_story

pytestmark = pytest.mark.compat

#: Every plan cost zero for parallel workers, and a Gather over whatever can run in one.
_PARALLEL = ("-c parallel_setup_cost=0 -c parallel_tuple_cost=0 -c min_parallel_table_scan_size=0"
             " -c min_parallel_index_scan_size=0 -c {force}=regress")
#: Planner settings a DBA (or a DSN's ``options``) may give the audit's sessions.
PLANS = {
    "parallel": _PARALLEL,
    "no hashing": "-c enable_hashagg=off -c enable_hashjoin=off",
    "parallel, no hashing": _PARALLEL + " -c enable_hashagg=off -c enable_hashjoin=off",
    "no merge or nested loop": "-c enable_mergejoin=off -c enable_nestloop=off",
    "no sort": "-c enable_sort=off",
}

FORMATS = {
    "json": ("--format", "json"),
    "json, every finding": ("--format", "json", "--min-severity", "info"),
    "table": ("--format", "table"),
    "table, every finding": ("--format", "table", "--min-severity", "info"),
    "prometheus, every finding": ("--format", "prometheus", "--min-severity", "info"),
}

#: What differs between two runs on one database: the run's own time, and the database's clock
#: in the lines that say how far ahead of it a row is dated (future-dated, release-order).
_CLOCKED = [
    (re.compile(r'"duration_seconds": [0-9.e+-]+'), '"duration_seconds"'),
    (re.compile(r"checks, [0-9.]+ s\)"), "checks)"),
    (re.compile(r"(_seconds(?:\{[^}\n]*\})?) [0-9.e+-]+$", re.MULTILINE), r"\1"),
    (re.compile(r"-?\d+ days?(?: [0-9:]+)?"), "some days"),
    (re.compile(r'"now" ?: "[^"]*"'), '"now"'),
    (re.compile(r'"ahead_seconds" ?: \d+'), '"ahead_seconds"'),
]


def _unclocked(text: str) -> str:
    for pattern, replacement in _CLOCKED:
        text = pattern.sub(replacement, text)
    return text


def _with_plan(db, options: str) -> str:
    """``db``'s DSN with ``options`` (``force_parallel_mode`` before 16, ``debug_parallel_query`` from 16)."""
    force = "debug_parallel_query" if db.server.version_num >= 160000 else "force_parallel_mode"
    params = conninfo.conninfo_to_dict(db.dsn)
    params["options"] = options.format(force=force)
    return conninfo.make_conninfo(**params)


@pytest.fixture
def damaged(make_db):
    db = make_db(28)
    damaged_story(db.conn)
    return db


@pytest.mark.parametrize("args", FORMATS.values(), ids=FORMATS.keys())
def test_one_report_whatever_the_plan(damaged, run, args):
    def report(dsn: str) -> str:
        result = run("check", "--dsn", dsn, "--fail-on", "never", *args)
        assert result.exit_code == 0, result.output
        return _unclocked(result.stdout)

    expected = report(damaged.dsn)
    assert expected.count("orphan-config") > 1 and expected.count("dangling-reference") > 1
    for name, options in PLANS.items():
        assert report(_with_plan(damaged, options)) == expected, name


def test_fresh_statistics_keep_the_report(damaged, run):
    """ANALYZE (autovacuum's, at any moment) gives the planner other estimates: not another report."""
    args = ("check", "--dsn", damaged.dsn, "--fail-on", "never", "--format", "json", "--min-severity", "info")
    before = _unclocked(run(*args).stdout)
    damaged.conn.execute("ANALYZE")
    assert _unclocked(run(*args).stdout) == before


@pytest.mark.parametrize("server_version", [None, 150000], ids=["server", "before-16"])
def test_the_streamed_lines_whatever_the_plan(damaged, server_version):
    """The lines the JSON report copies, on the server's path and the pre-16 one (invalid-json's rows
    filtered on the client)."""
    def lines(dsn: str) -> list[str]:
        with open_audit(Settings(dsn=dsn), server_version=server_version) as audit:
            found = audit.streamed("json", listing=Listing.of("info", "never"), hidden=[])
            return [_unclocked(f.line or "") for f in found]

    expected = lines(damaged.dsn)
    assert sum('"invalid-json"' in line for line in expected) > 1
    for name, options in PLANS.items():
        assert lines(_with_plan(damaged, options)) == expected, name


def _statement(audit, checks=None) -> tuple[sql.Composable, dict[str, object]]:
    """The JSON report's statement (every finding listed) for ``checks`` (default: all), as ``check`` sends it."""
    if checks is not None:
        audit.checks = checks
    return audit_statement(audit.conn, audit, None, "info")


def test_each_check_sorted_on_its_own_is_the_report_s_order(damaged):
    """The statement sorts each check's findings on its own (and the shared checks' by their plan):
    under every plan setting its rows come exactly as the union of every check's rows sorted by check,
    app, table and object id (``check_order``, the order the report promises) would give them; on the
    server's path and before 16, where invalid-json's rows are read on the client."""
    for name, options in {"default": "", **PLANS}.items():
        dsn = _with_plan(damaged, options) if options else damaged.dsn
        with open_audit(Settings(dsn=dsn)) as audit:
            version = audit.conn.info.server_version
            as_version = 150000 if version < 160000 else version
            _, params = _statement(audit)
            client_side = client_side_checks(audit.conn, audit.generation, audit.checks, audit.scope, params,
                                             as_version)
            gated = None if client_side else cast_gate(audit.generation, audit.checks, audit.scope, as_version)
            statement = build_statement(audit.generation, audit.checks, audit.scope, as_version, False,
                                        Listing("info"), client_side=client_side, gated=gated, stable=True)
            sorted_once = sql.SQL("SELECT * FROM ({}) AS every_row{}").format(statement, check_order(audit.checks))
            got = audit.conn.execute(statement, params).fetchall()
            expected = audit.conn.execute(sorted_once, params).fetchall()
        assert len(got) > 20 and sum(row[0] == "shared-config" for row in got) > 1
        assert "ORDER BY CASE check_id" not in statement.as_string(None)
        assert got == expected, name


def _children(node: dict) -> list[dict]:
    """``node``'s children in its plan, not counting the CTEs computed for it (its init plans)."""
    return [c for c in node.get("Plans", []) if c.get("Parent Relationship") != "InitPlan"]


def _sorted_after_the_window(node: dict) -> bool:
    """Whether a sort in ``node``'s plan sits above an aggregate of rows from a window (the shared
    checks' grouping of each app's releases by row)."""
    if node["Node Type"] in ("Sort", "Incremental Sort") and any(_aggregate_over_window(c) for c in _children(node)):
        return True
    return any(_sorted_after_the_window(c) for c in _children(node))


def _aggregate_over_window(node: dict) -> bool:
    """Whether ``node``'s plan aggregates the rows of a window (outside its init plans)."""
    if node["Node Type"] == "Aggregate" and _has_window(node):
        return True
    return any(_aggregate_over_window(c) for c in _children(node))


def _has_window(node: dict) -> bool:
    return node["Node Type"] == "WindowAgg" or any(_has_window(c) for c in _children(node))


@pytest.mark.parametrize("check_ids", [None, ("shared-config",), ("shared-build", "cross-app-reference")],
                         ids=["every check", "shared-config", "the second half"])
def test_the_shared_rows_are_not_sorted_once_rendered(damaged, check_ids):
    """The shared checks' rows (at 1M releases ~465k of the ~487k listed, ~1.2 kB each with their
    ``related`` arrays) leave their grouping in the report's order: no sort above it.  Before, the
    statement ended in one sort of every rendered row (an external merge of 583 MB at 1M, and no row
    left the server before it ended)."""
    with open_audit(Settings(dsn=damaged.dsn)) as audit:
        checks = None if check_ids is None else [c for c in audit.checks if c.id in check_ids]
        statement, params = _statement(audit, checks)
        plan = audit.conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(statement), params).fetchone()[0][0]["Plan"]
    assert _aggregate_over_window(plan)  # the shared checks' grouping is in the plan
    assert not _sorted_after_the_window(plan)
