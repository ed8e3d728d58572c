"""The benchmark: the tool against the floors and a naive baseline, at each database size.

``python -m bench.run [--sizes 10k,1m] [--pg-major 15 | --pg-bindir DIR | --dsn DSN]`` starts
a PostgreSQL (the embedded wheel's by default; a major of the test matrix; any installation)
listening on a unix socket and on TCP loopback, unless ``--dsn`` names a server where the role
may create databases; generates one synthetic controller database per size
(:mod:`bench.generate`), measures, prints a Markdown table and writes it to
``bench/results.md``.  A size is ``RELEASES`` (apps = releases / 100) or ``RELEASES:APPS``.
Ratios compare figures of the same run; the machine is shared, so the load average is
recorded with every size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from auditor.audit import open_audit
from auditor.audit.listing import EVERYTHING, Listing
from auditor.audit.streamed import StreamedFinding
from auditor.core.detect import detect
from auditor.core.fileio import atomic_write
from auditor.core.findings import Counted
from auditor.core.settings import Selection, Settings
from auditor.testbed.schema import NEWEST
from bench.app_floor import AppFloor, app_floor
from bench.fused import run_fused
from bench.generate import REFERENCE_APP, Spec, Stats, generate, parse_count
from bench.measure import (
    NOT_AVAILABLE,
    best_of,
    cli_failure,
    cli_has,
    fmt_mb,
    fmt_ratio,
    fmt_s,
    rejected_option,
    run_cli,
)
from bench.naive import run_naive
from bench.repair import measure_repair, raw_unshare, repair_on_smaller
from bench.server import BenchServer, attach, start_bench_server
from checks import CATALOGUE

__all__ = ["AUDIT_RUNS", "ROWS", "main", "raw_unshare", "scan_floor", "work_floor"]

DEFAULT_OUTPUT = Path(__file__).with_name("results.md")
#: What ``check`` lists by default (``--min-severity warning``): the one-app rows measure it.
DEFAULT_LISTING = Listing("warning")

#: (key, row label, target) in table order.  Targets are those of issue #16 (1M releases).
ROWS: tuple[tuple[str, str, str], ...] = (
    ("db", "Database: apps / releases / configs / builds", ""),
    ("damage", "Generated damage: orphan configs+builds / failed releases / tied apps", ""),
    ("generate", "Generation time (COPY, indexes, VACUUM ANALYZE)", "minutes at 1M"),
    ("load", "Load average (1 min) before / after", ""),
    ("findings", "Findings: all (critical / warning / info)", ""),
    ("json_size", "JSON lines of every finding: size (info rows' share)", ""),
    ("scan_floor", "Scan floor: one pass over release/config/build columns", ""),
    ("work_floor", "Work floor: GROUP BY config_id + GROUP BY build_id + newest per app", ""),
    ("fused_floor", "Fused floor: one statement counting every finding per check and severity", ""),
    ("fused_vs_work", "Fused floor / work floor", "5-7x"),
    ("audit", "Default audit: `check --format json` wall time (subprocess)", ""),
    ("audit_vs_fused", "Default audit / fused floor", "<= 1.5x at 1M"),
    ("audit_vs_work", "Default audit / work floor", "<= 8x at 1M"),
    ("rss", "Default audit: peak RSS (max RSS of the subprocess)", ""),
    ("audit_info", "Every row listed: `check --format json --min-severity info` wall time", ""),
    ("audit_info_vs_work", "Every row listed / work floor", "<= 15x at 1M"),
    ("rss_info", "Every row listed: peak RSS", "<= 100 MB"),
    ("audit_inproc", "Full audit in-process: statement + streaming every finding (JSON shape)", ""),
    ("app_largest", "Largest app: audit statement in-process (JSON shape, default listing)", "<= 50 ms"),
    ("app_floor", "Largest app: its floor (one hand-written statement, fresh session; bench/app_floor.py)", ""),
    ("app_vs_floor", "Largest app: audit statement / its floor", ""),
    ("app_check", "Largest app: `check --app` wall time (subprocess)", ""),
    ("app_explain", "Largest app: `explain` wall time (subprocess)", "<= 300 ms"),
    ("app_reference", f"`{REFERENCE_APP}` (same history at every size): audit statement in-process (default listing)", ""),
    ("app_ratio", f"`{REFERENCE_APP}`: this size / smallest size", "<= 1.2x"),
    ("naive", "Naive baseline over the unix socket (query per app, then per release)", ""),
    ("naive_tcp", "Naive baseline over TCP loopback", ""),
    ("speedup", "Speed-up: naive over the socket / default audit", ""),
    ("speedup_tcp", "Speed-up: naive over TCP / default audit", ">= 20x at 1M"),
    ("shared", "Repair: shared configs+builds / releases needing a copy", "~100k at 1M"),
    ("plan", "Repair: `plan --repair unshare` time / plan file size", ""),
    ("apply", "Repair: `apply --yes` time (undo file written and fsynced before COMMIT)", ""),
    ("raw_repair", "Repair floor: INSERT ... SELECT + UPDATE by hand (clone)", ""),
    ("repair_ratio", "Repair: apply / floor (medians of one sitting)", "<= 1.5x"),
)

#: The console-script runs of the full audit: (row key, extra arguments).  A row whose option the
#: installed tool does not know (yet) says so instead of a figure; its ratio rows follow it.
AUDIT_RUNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("audit", ()),
    ("audit_info", ("--min-severity", "info")),
)
_RSS_ROW = {"audit": "rss", "audit_info": "rss_info"}


@dataclass
class SizeResult:
    """The figures of one database size, by row key (already formatted)."""

    label: str
    cells: dict[str, str] = field(default_factory=dict)
    reference_seconds: float | None = None
    #: The database generated for this size and how many releases its reference app has.
    dbname: str | None = None
    reference_releases: int = 0
    per_check: dict[str, tuple[float, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Options:
    """What the harness measures and how often."""

    migration: int = NEWEST
    seed: int = 1
    repeat: int = 3
    naive_full_limit: int = 100_000
    naive_sample: int = 100
    repair_releases: int = 250_000  # larger sizes measure the repair on a database this big
    repair_runs: int = 3
    per_check: bool = False
    statement_timeout: str = "1h"


# -- floors ---------------------------------------------------------------------------------


def _failed_column(conn: psycopg.Connection) -> sql.Composable:
    return sql.Identifier("failed") if detect(conn).has_failed else sql.SQL("false")


def scan_floor(conn: psycopg.Connection) -> None:
    """One pass over the columns the audit reads in api_release, api_config and api_build."""
    conn.execute(sql.SQL(
        "SELECT (SELECT row(count(uuid), count(app_id), max(version), max(created), count(config_id),"
        " count(build_id), bool_or({})) FROM api_release),"
        " (SELECT row(count(uuid), count(app_id), max(created)) FROM api_config),"
        " (SELECT row(count(uuid), count(app_id), max(created)) FROM api_build)").format(
            _failed_column(conn))).fetchall()


WORK_FLOOR = (
    "SELECT count(*), sum(n) FROM (SELECT config_id, count(*) AS n FROM api_release GROUP BY config_id) s",
    "SELECT count(*), sum(n) FROM (SELECT build_id, count(*) AS n FROM api_release"
    " WHERE build_id IS NOT NULL GROUP BY build_id) s",
    "SELECT (SELECT count(*) FROM (SELECT DISTINCT ON (app_id) app_id, uuid FROM api_config"
    " ORDER BY app_id, created DESC) c), (SELECT count(*) FROM (SELECT DISTINCT ON (app_id) app_id, uuid"
    " FROM api_build ORDER BY app_id, created DESC) b)",
)


def work_floor(conn: psycopg.Connection) -> None:
    """The least work any audit of these findings must do: the two groupings and newest per app."""
    for statement in WORK_FLOOR:
        conn.execute(statement).fetchall()


# -- the tool -------------------------------------------------------------------------------


@dataclass
class InProcess:
    """One in-process audit: its time, findings per check and per severity, JSON bytes per severity."""

    seconds: float
    by_check: Counter
    by_severity: Counter
    by_check_severity: Counter
    json_bytes: Counter


def in_process_audit(dsn: str, apps: Sequence[str] = (), include: Sequence[str] = (),
                     timeout: str = "1h", listing: Listing = DEFAULT_LISTING) -> InProcess:
    """The audit statement and streaming its findings as ``check --format json`` streams them
    (rendered by the server where it can; those below ``listing`` counted by the server, as the
    default report does), with the counts; JSON bytes of server-rendered lines."""
    with open_audit(Settings(dsn=dsn, statement_timeout=timeout), apps=apps,
                    selection=Selection(include=tuple(include))) as run:
        pairs: Counter = Counter()
        sizes: Counter = Counter()
        hidden: list[Counted] = []
        began = time.perf_counter()
        for finding in run.streamed("json", listing=listing, hidden=hidden):
            pairs[(finding.check, finding.severity)] += 1
            if isinstance(finding, StreamedFinding) and finding.line is not None:
                sizes[finding.severity] += len(finding.line) + 1
        seconds = time.perf_counter() - began
        for counted in hidden:
            pairs[(counted.check, counted.severity)] += counted.findings
    by_check: Counter = Counter()
    by_severity: Counter = Counter()
    for (check, severity), n in pairs.items():
        by_check[check] += n
        by_severity[severity] += n
    return InProcess(seconds, by_check, by_severity, pairs, sizes)


def measure_reference(server: BenchServer, results: Sequence[SizeResult], opts: Options) -> None:
    """The reference app's audit (same history at every size) in each size's database, the sizes
    taken in turn in each round so that every size sees the same load; the fastest round counts."""
    best: dict[str, float] = {}
    for _ in range(max(7, opts.repeat)):
        for result in results:
            assert result.dbname is not None
            seconds = in_process_audit(server.dsn(result.dbname), apps=[REFERENCE_APP]).seconds
            best[result.label] = min(seconds, best.get(result.label, seconds))
    for result in results:
        result.reference_seconds = best[result.label]
        result.cells["app_reference"] = f"{fmt_s(best[result.label])} ({result.reference_releases} releases)"


def _cli_audit_rows(dsn: str, cells: dict[str, str], opts: Options) -> dict[str, float]:
    """Each of :data:`AUDIT_RUNS` through the console script: best wall time and max RSS."""
    seconds: dict[str, float] = {}
    if not cli_has("check"):
        for key, _ in AUDIT_RUNS:
            cells[key] = cells[_RSS_ROW[key]] = f"{NOT_AVAILABLE} (no check command yet)"
        return seconds
    for key, extra in AUDIT_RUNS:
        args = ["check", "--format", "json", "--fail-on", "never", "--dsn", dsn,
                "--statement-timeout", opts.statement_timeout, *extra]
        first = run_cli(args)
        refused = rejected_option(first)
        if refused is not None:
            cells[key] = cells[_RSS_ROW[key]] = f"{NOT_AVAILABLE} (the tool rejects {' '.join(extra)}: {refused})"
            continue
        runs = [first] + [run_cli(args) for _ in range(max(0, opts.repeat - 1))]
        failed = [r for r in runs if r.returncode != 0]
        if failed:
            cells[key] = cells[_RSS_ROW[key]] = cli_failure(failed[0])
            continue
        seconds[key] = min(r.seconds for r in runs)
        cells[key] = fmt_s(seconds[key])
        cells[_RSS_ROW[key]] = f"{max(r.max_rss_kb for r in runs) / 1024:.0f} MB"
    return seconds


def _fused_cell(seconds: float, fused: Counter, audit: Counter) -> str:
    """The fused floor's time, with a warning when its counts differ from the audit's."""
    if +fused == +audit:
        return fmt_s(seconds)
    differ = sorted(k for k in set(fused) | set(audit) if fused[k] != audit[k])
    shown = ", ".join(f"{c} {s}: {fused[(c, s)]} vs {audit[(c, s)]}" for c, s in differ[:3])
    return f"{fmt_s(seconds)} (counts differ from the audit's: {shown})"


def floor_cells(floor: AppFloor, app_time: float) -> dict[str, str]:
    """The largest app's floor and the tool's statement over it; before PostgreSQL 16 a value of the
    app that does not parse leaves the floor untimed (:mod:`bench.app_floor`)."""
    if not floor.seconds:
        cell = f"{NOT_AVAILABLE} (a JSON value of {floor.app} does not parse before PostgreSQL 16)"
        return {"app_floor": cell, "app_vs_floor": cell}
    return {"app_floor": f"{fmt_s(floor.best)} (median {fmt_s(floor.median)} of {len(floor.seconds)})",
            "app_vs_floor": fmt_ratio(app_time, floor.best)}


# -- one size -------------------------------------------------------------------------------


def measure_size(server: BenchServer, name: str, label: str, releases: int, apps: int, opts: Options,
                 log: Callable[[str], None]) -> SizeResult:
    """Fill the empty database ``name`` and take every figure of the table on it but the reference
    app's (:func:`measure_reference`, once every size is there)."""
    result = SizeResult(label, dbname=name)
    cells = result.cells
    load_before = os.getloadavg()[0]
    dsn = server.dsn(name)
    log(f"[{label}] generating {releases:,} releases in {apps:,} apps")
    stats: Stats = generate(dsn, Spec(releases=releases, apps=apps, migration=opts.migration, seed=opts.seed))
    cells["db"] = f"{stats.apps:,} / {stats.releases:,} / {stats.configs:,} / {stats.builds:,}"
    cells["damage"] = (f"{stats.orphan_configs + stats.orphan_builds:,} / {stats.failed_releases:,}"
                       f" / {stats.tied_apps:,}")
    cells["generate"] = fmt_s(stats.seconds)

    log(f"[{label}] floors")
    with psycopg.connect(dsn, autocommit=True) as conn:
        scan_floor(conn)  # warm the cache
        scan = best_of(opts.repeat, lambda: scan_floor(conn))
        work = best_of(opts.repeat, lambda: work_floor(conn))
    cells["scan_floor"], cells["work_floor"] = fmt_s(scan), fmt_s(work)
    with psycopg.connect(dsn) as conn:
        counted = [run_fused(conn)]
        fused = best_of(opts.repeat, lambda: counted.append(run_fused(conn)))
    cells["fused_vs_work"] = fmt_ratio(fused, work)

    log(f"[{label}] full audit in-process")
    inproc = in_process_audit(dsn, timeout=opts.statement_timeout, listing=EVERYTHING)
    cells["audit_inproc"] = fmt_s(inproc.seconds)
    cells["fused_floor"] = _fused_cell(fused, counted[-1].by_severity, inproc.by_check_severity)
    sev = inproc.by_severity
    cells["findings"] = (f"{sum(sev.values()):,} ({sev['critical']:,} / {sev['warning']:,} / "
                         f"{sev['info']:,})")
    total_bytes = sum(inproc.json_bytes.values())
    cells["json_size"] = (f"{fmt_mb(total_bytes)} ({inproc.json_bytes['info'] / total_bytes:.1%})"
                          if total_bytes else f"{NOT_AVAILABLE} (rendered client-side on this server)")

    log(f"[{label}] full audit through the console script")
    cli = _cli_audit_rows(dsn, cells, opts)
    basis = cli.get("audit")
    cells["audit_vs_fused"] = fmt_ratio(basis, fused)
    cells["audit_vs_work"] = fmt_ratio(basis, work)
    cells["audit_info_vs_work"] = fmt_ratio(cli.get("audit_info"), work)

    log(f"[{label}] one app")
    largest = stats.largest_app
    app_runs = max(7, opts.repeat)
    app_time = min(in_process_audit(dsn, apps=[largest]).seconds for _ in range(app_runs))
    cells["app_largest"] = f"{fmt_s(app_time)} ({largest}, {stats.largest_app_releases:,} releases)"
    cells.update(floor_cells(app_floor(dsn, largest, app_runs), app_time))
    result.reference_releases = stats.by_app[REFERENCE_APP]
    for key, args in (("app_check", ["check", "--app", largest, "--format", "json", "--fail-on", "never"]),
                      ("app_explain", ["explain", largest])):
        if not cli_has(args[0]):
            cells[key] = f"{NOT_AVAILABLE} (no {args[0]} command yet)"
            continue
        runs = [run_cli([*args, "--dsn", dsn]) for _ in range(app_runs)]
        ok = sorted(r.seconds for r in runs if r.returncode in (0, 1, 2))
        cells[key] = (f"{fmt_s(ok[0])} (median {fmt_s(statistics.median(ok))} of {len(ok)})" if ok
                      else cli_failure(runs[0]))

    log(f"[{label}] naive baseline")
    sample = None if releases <= opts.naive_full_limit else opts.naive_sample
    for key, speed_key, naive_dsn in (("naive", "speedup", dsn), ("naive_tcp", "speedup_tcp", server.tcp_dsn(name))):
        if naive_dsn is None:
            cells[key] = cells[speed_key] = f"{NOT_AVAILABLE} (no TCP address: give --tcp-dsn)"
            continue
        naive = run_naive(naive_dsn, sample=sample, seed=opts.seed)
        if sample is None:
            naive_seconds = naive.seconds
            cells[key] = f"{fmt_s(naive_seconds)} ({naive.queries:,} queries)"
        else:
            naive_seconds = naive.seconds * stats.releases / max(naive.releases, 1)
            cells[key] = (f"{fmt_s(naive_seconds)} extrapolated linearly from a random sample of "
                          f"{naive.apps} apps / {naive.releases:,} releases ({fmt_s(naive.seconds)})")
        cells[speed_key] = fmt_ratio(naive_seconds, basis)

    if opts.per_check:
        log(f"[{label}] per check")
        for cid, check in CATALOGUE.items():
            if check.database_level:
                continue
            alone = in_process_audit(dsn, include=[cid], timeout=opts.statement_timeout)
            result.per_check[cid] = (alone.seconds, sum(alone.by_check.values()))

    log(f"[{label}] repair")
    if releases <= opts.repair_releases:
        measure_repair(server, name, cells, opts.repair_runs, opts.statement_timeout)
    else:
        repair_on_smaller(server, cells, opts.repair_releases, opts.migration, opts.seed, opts.repair_runs,
                          opts.statement_timeout, log)
    cells["load"] = f"{load_before:.2f} / {os.getloadavg()[0]:.2f}"
    return result


# -- the table ------------------------------------------------------------------------------


def table(results: Sequence[SizeResult]) -> str:
    """The Markdown table: one row per measure, one column per size."""
    if results and results[0].reference_seconds:
        base = results[0].reference_seconds
        for r in results:
            r.cells["app_ratio"] = fmt_ratio(r.reference_seconds, base)
    head = "| measure | target | " + " | ".join(r.label for r in results) + " |"
    rule = "|---|---|" + "---|" * len(results)
    lines = [head, rule]
    for key, label, target in ROWS:
        cells = " | ".join(r.cells.get(key, NOT_AVAILABLE) for r in results)
        lines.append(f"| {label} | {target} | {cells} |")
    if any(r.per_check for r in results):
        lines += ["", "| check (in-process, alone) | " + " | ".join(r.label for r in results) + " |",
                  "|---|" + "---|" * len(results)]
        for cid in dict.fromkeys(c for r in results for c in r.per_check):
            cells = " | ".join(
                f"{fmt_s(r.per_check[cid][0])} ({r.per_check[cid][1]:,} findings)" if cid in r.per_check
                else NOT_AVAILABLE for r in results)
            lines.append(f"| {cid} | {cells} |")
    return "\n".join(lines) + "\n"


def machine(server: BenchServer) -> str:
    """One line about where the figures come from."""
    with psycopg.connect(server.server.admin_dsn) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
    return (f"{dt.date.today().isoformat()}, {os.cpu_count()} cores ({platform.machine()}), "
            f"PostgreSQL {version} ({server.server.kind}), Python {platform.python_version()}")


def parse_sizes(text: str) -> list[tuple[str, int, int]]:
    """``10k,1m`` or ``500:50`` into (label, releases, apps)."""
    sizes = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        releases_text, _, apps_text = item.partition(":")
        releases = parse_count(releases_text)
        apps = parse_count(apps_text) if apps_text else max(1, releases // 100)
        sizes.append((item, releases, apps))
    if not sizes:
        raise SystemExit("--sizes: give at least one size")
    return sizes


def open_server(args: argparse.Namespace) -> BenchServer:
    """The server of this run: ``--dsn``, a major of the test matrix, an installation, or the wheel's."""
    if args.dsn:
        return attach(args.dsn, args.tcp_dsn)
    if args.pg_major is not None:
        from tests.matrix import installation

        found = installation(args.pg_major)
        return start_bench_server(found.bindir, kind=found.source)
    if args.pg_bindir is not None:
        return start_bench_server(args.pg_bindir, kind=str(args.pg_bindir))
    return start_bench_server()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10k,1m", help="comma-separated RELEASES[:APPS] (default 10k,1m)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--dsn", default=None, help="a server where the role may create databases "
                       "(default: start an embedded PostgreSQL)")
    where.add_argument("--pg-major", type=int, default=None,
                       help="start this PostgreSQL major of the test matrix (tests/matrix.py)")
    where.add_argument("--pg-bindir", type=Path, default=None, help="start the PostgreSQL of this bin directory")
    parser.add_argument("--tcp-dsn", default=None,
                        help="with --dsn on a unix socket: the same server over TCP (for the naive baseline)")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="where to write the Markdown table")
    parser.add_argument("--migration", type=int, default=NEWEST, help="schema generation (19..28)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing; the fastest counts")
    parser.add_argument("--naive-sample", type=int, default=100,
                        help="apps the naive baseline walks above 100k releases (then extrapolated)")
    parser.add_argument("--repair-releases", type=parse_count, default=250_000,
                        help="sizes above this measure the repair on a database this big (default 250k)")
    parser.add_argument("--repair-runs", type=int, default=3,
                        help="rounds of the repair and its floor; the medians count (default 3)")
    parser.add_argument("--per-check", action="store_true", help="also time each check alone")
    args = parser.parse_args(argv)
    opts = Options(migration=args.migration, seed=args.seed, repeat=args.repeat,
                   naive_sample=args.naive_sample, repair_releases=args.repair_releases,
                   repair_runs=args.repair_runs, per_check=args.per_check)
    sizes = parse_sizes(args.sizes)

    def log(message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)

    server = open_server(args)
    try:
        results: list[SizeResult] = []
        databases: list[str] = []  # every size's, kept until the reference app is measured in each
        try:
            for label, releases, apps in sizes:
                databases.append(server.server.create_database(None))
                results.append(measure_size(server, databases[-1], label, releases, apps, opts, log))
            log("the reference app at every size, interleaved")
            measure_reference(server, results, opts)
        finally:
            for name in databases:
                server.server.drop_database(name)
        described = machine(server)
    finally:
        server.close()
    text = f"Machine: {described}; schema migration {opts.migration:04d}, seed {opts.seed}.\n\n{table(results)}"
    print(text, end="")
    atomic_write(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
