"""One database, one report: the same bytes whatever plan the server picks for the audit's statement
(parallel workers or none, hash or sort, fresh statistics or none), in every format, on the
pre-16 path too (the compat subset runs this on every major)."""

from __future__ import annotations

import re

import pytest
from psycopg import conninfo

from auditor.audit import open_audit
from auditor.audit.listing import Listing
from auditor.core.settings import Settings
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
