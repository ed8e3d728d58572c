"""The benchmark: the tool against the floors and a naive baseline, at each database size.

``python -m bench.run [--sizes 10k,1m] [--dsn DSN]`` starts an embedded PostgreSQL unless
``--dsn`` names a server where the role may create databases, generates one synthetic
controller database per size (:mod:`bench.generate`), measures, prints a Markdown table and
writes it to ``bench/results.md``.  A size is ``RELEASES`` (apps = releases / 100) or
``RELEASES:APPS``.  Ratios compare figures of the same run; the machine is shared, so the
load average is recorded with every size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from auditor.audit import open_audit
from auditor.core.detect import detect
from auditor.core.fileio import atomic_write
from auditor.core.settings import Selection, Settings
from auditor.testbed.schema import NEWEST
from bench.generate import REFERENCE_APP, Spec, Stats, generate, parse_count
from bench.naive import run_naive
from checks import CATALOGUE
from tests.testbed import Server, start_local

DEFAULT_OUTPUT = Path(__file__).with_name("results.md")
NOT_AVAILABLE = "not available"

#: (key, row label, target) in table order.
ROWS: tuple[tuple[str, str, str], ...] = (
    ("db", "Database: apps / releases / configs / builds", ""),
    ("damage", "Generated damage: orphan configs+builds / failed releases / tied apps", ""),
    ("generate", "Generation time (COPY, indexes, VACUUM ANALYZE)", "minutes at 1M"),
    ("load", "Load average (1 min) before / after", ""),
    ("findings", "Findings of the full audit", "100k+ at 1M"),
    ("scan_floor", "Scan floor: one pass over release/config/build columns", ""),
    ("work_floor", "Work floor: GROUP BY config_id + GROUP BY build_id + newest per app", ""),
    ("audit", "Full audit: `check --format json` wall time (subprocess)", ""),
    ("audit_inproc", "Full audit in-process (statement + streaming findings)", ""),
    ("audit_vs_work", "Full audit / work floor", "<= 3x at 1M"),
    ("audit_vs_scan", "Full audit / scan floor", ""),
    ("rss", "Full audit peak RSS (max RSS of the subprocess)", "< 100 MB"),
    ("app_largest", "One app, largest: audit statement in-process", "< 50 ms"),
    ("app_check", "One app, largest: `check --app` wall time (subprocess)", ""),
    ("app_explain", "One app, largest: `explain` wall time (subprocess)", ""),
    ("app_reference", f"One app, `{REFERENCE_APP}` (same history at every size): in-process", ""),
    ("app_ratio", f"One app, `{REFERENCE_APP}`: this size / smallest size", "<= 1.5x"),
    ("naive", "Naive baseline (query per app, then per release)", ""),
    ("speedup", "Speed-up: naive / full audit", ">= 50x at 1M"),
    ("shared", "Repair: shared configs+builds / releases needing a copy", "~100k at 1M"),
    ("plan", "Repair: `plan --repair unshare` time / plan file size", ""),
    ("apply", "Repair: `apply --yes` time", ""),
    ("raw_repair", "Repair floor: INSERT ... SELECT + UPDATE by hand (clone)", ""),
    ("repair_ratio", "Repair: apply / floor", "<= 2x"),
)


@dataclass
class SizeResult:
    """The figures of one database size, by row key (already formatted)."""

    label: str
    cells: dict[str, str] = field(default_factory=dict)
    reference_seconds: float | None = None
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
    per_check: bool = False
    statement_timeout: str = "1h"


# -- measuring ----------------------------------------------------------------------------


def best_of(repeat: int, func: Callable[[], object]) -> float:
    """The fastest of ``repeat`` runs of ``func``, in seconds."""
    times = []
    for _ in range(max(1, repeat)):
        began = time.perf_counter()
        func()
        times.append(time.perf_counter() - began)
    return min(times)


@dataclass(frozen=True)
class CliRun:
    """One run of the console script."""

    seconds: float
    max_rss_kb: int
    returncode: int
    stderr: str


def console_script() -> str:
    """The installed ``controller-audit`` next to this interpreter, else on PATH."""
    here = Path(sys.executable).with_name("controller-audit")
    return str(here) if here.exists() else (shutil.which("controller-audit") or "controller-audit")


def run_cli(args: Sequence[str], stdout: int | None = subprocess.DEVNULL) -> CliRun:
    """Run ``controller-audit ARGS``; wall time and max RSS of that child alone (``wait4``)."""
    with tempfile.TemporaryFile() as err:
        began = time.perf_counter()
        proc = subprocess.Popen([console_script(), *args], stdout=stdout, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace").strip()
    return CliRun(seconds, usage.ru_maxrss, proc.returncode, text)


def cli_has(*command: str) -> bool:
    """Whether the installed tool has this (sub)command."""
    return run_cli([*command, "--help"]).returncode == 0


def fmt_s(seconds: float | None) -> str:
    """Seconds, three significant figures (milliseconds below one second)."""
    if seconds is None:
        return NOT_AVAILABLE
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def fmt_ratio(num: float | None, den: float | None) -> str:
    if not num or not den:
        return NOT_AVAILABLE
    return f"{num / den:.3g}x"


def cli_failure(run: CliRun) -> str:
    """A table cell for a failed command: its exit code and last stderr line."""
    last = run.stderr.splitlines()[-1] if run.stderr else ""
    return f"failed (exit {run.returncode}: {last[:100]})"


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


# -- the repair floor -----------------------------------------------------------------------

_SHARED_SQL = """
SELECT (SELECT count(*) FROM (SELECT config_id FROM api_release GROUP BY config_id HAVING count(*) > 1) c)
     + (SELECT count(*) FROM (SELECT build_id FROM api_release WHERE build_id IS NOT NULL
                              GROUP BY build_id HAVING count(*) > 1) b),
       (SELECT count(*) - count(DISTINCT config_id) FROM api_release)
     + (SELECT count(build_id) - count(DISTINCT build_id) FROM api_release)"""

#: The unshare done by hand: every release but the first of a shared row gets its own copy,
#: dated just before the release (one INSERT ... SELECT and one UPDATE per table).
_RAW_INSERT = """
INSERT INTO {table} ({columns})
SELECT md5(s.release_uuid::text || {salt})::uuid, s.created - interval '1 microsecond',
       s.created - interval '1 microsecond', {source_columns}
FROM (SELECT r.uuid AS release_uuid, r.created, r.{fk} AS target,
             row_number() OVER (PARTITION BY r.{fk} ORDER BY r.version, r.created) AS nth
      FROM api_release r WHERE r.{fk} IS NOT NULL) s
JOIN {table} t ON t.uuid = s.target
WHERE s.nth > 1"""
_RAW_UPDATE = """
UPDATE api_release r SET {fk} = md5(r.uuid::text || {salt})::uuid
FROM (SELECT uuid, row_number() OVER (PARTITION BY {fk} ORDER BY version, created) AS nth
      FROM api_release WHERE {fk} IS NOT NULL) s
WHERE s.uuid = r.uuid AND s.nth > 1"""


def raw_unshare(conn: psycopg.Connection) -> None:
    """The hand-written floor of ``unshare``, in one transaction."""
    gen = detect(conn)
    with conn.transaction():
        for table, fk in (("api_config", "config_id"), ("api_build", "build_id")):
            rest = [c for c in gen.columns[table] if c not in ("uuid", "created", "updated")]
            parts = {
                "table": sql.Identifier(table),
                "fk": sql.Identifier(fk),
                "salt": sql.Literal(":" + table),
                "columns": sql.SQL(", ").join(map(sql.Identifier, ("uuid", "created", "updated", *rest))),
                "source_columns": sql.SQL(", ").join(sql.Identifier("t", c) for c in rest),
            }
            conn.execute(sql.SQL(_RAW_INSERT).format(**parts))
            conn.execute(sql.SQL(_RAW_UPDATE).format(**parts))


# -- one size -------------------------------------------------------------------------------


def in_process_audit(dsn: str, apps: Sequence[str] = (), include: Sequence[str] = (),
                     timeout: str = "1h") -> tuple[float, Counter]:
    """Seconds spent running the audit statement and streaming its findings (rendered by the
    server, as ``check --format json`` streams them), and their counts."""
    with open_audit(Settings(dsn=dsn, statement_timeout=timeout), apps=apps,
                    selection=Selection(include=tuple(include))) as run:
        began = time.perf_counter()
        counts = Counter(f.check for f in run.streamed("json"))
        return time.perf_counter() - began, counts


def measure_repair(server: Server, source: str, cells: dict[str, str], opts: Options, note: str = "") -> None:
    """Plan and apply ``unshare`` on one clone of ``source``, the raw-SQL floor on another."""
    with psycopg.connect(server.dsn(source), autocommit=True) as conn:
        shared, copies = conn.execute(_SHARED_SQL).fetchone()
    cells["shared"] = f"{shared:,} / {copies:,}{note}"
    available = cli_has("plan") and cli_has("apply")
    if not available:
        for key in ("plan", "apply", "repair_ratio"):
            cells[key] = f"{NOT_AVAILABLE} (no plan/apply command yet)"
    clones = [_clone(server, source) for _ in range(2 if available else 1)]
    raw_db, tool_db = clones[0], clones[-1]
    try:
        with psycopg.connect(server.dsn(raw_db), autocommit=True) as conn:
            began = time.perf_counter()
            raw_unshare(conn)
            raw = time.perf_counter() - began
        cells["raw_repair"] = fmt_s(raw)
        if not available:
            return
        dsn = server.dsn(tool_db)
        with tempfile.TemporaryDirectory() as tmp:
            plan_file = Path(tmp) / "unshare.plan"
            plan = run_cli(["plan", "--repair", "unshare", "-o", str(plan_file), "--dsn", dsn,
                            "--statement-timeout", opts.statement_timeout])
            if plan.returncode != 0 or not plan_file.exists():
                cells["plan"] = cli_failure(plan)
                cells["apply"] = cells["repair_ratio"] = NOT_AVAILABLE
                return
            cells["plan"] = f"{fmt_s(plan.seconds)} / {plan_file.stat().st_size / 1e6:.3g} MB"
            apply = run_cli(["apply", str(plan_file), "--yes", "--dsn", dsn,
                             "--statement-timeout", opts.statement_timeout])
            if apply.returncode != 0:
                cells["apply"] = cli_failure(apply)
                cells["repair_ratio"] = NOT_AVAILABLE
                return
            cells["apply"] = fmt_s(apply.seconds)
            cells["repair_ratio"] = fmt_ratio(apply.seconds, raw)
    finally:
        for clone in clones:
            server.drop_database(clone)


def _repair_on_smaller(server: Server, cells: dict[str, str], opts: Options, log: Callable[[str], None]) -> None:
    """The repair figures on a database of ``opts.repair_releases`` releases (~100k shared rows)."""
    releases = opts.repair_releases
    name = server.create_database(None)
    try:
        log(f"generating {releases:,} releases for the repair")
        generate(server.dsn(name), Spec(releases=releases, apps=max(1, releases // 100), migration=opts.migration,
                                        seed=opts.seed))
        measure_repair(server, name, cells, opts, note=f" (on a {releases:,}-release database)")
    finally:
        server.drop_database(name)


def _clone(server: Server, source: str) -> str:
    """A copy of ``source`` (``CREATE DATABASE ... TEMPLATE``)."""
    name = f"{source}_clone{time.monotonic_ns() % 1_000_000}"
    server.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(source)))
    return name


def measure_size(server: Server, label: str, releases: int, apps: int, opts: Options,
                 log: Callable[[str], None]) -> SizeResult:
    """Generate one database and take every figure of the table on it."""
    result = SizeResult(label)
    cells = result.cells
    load_before = os.getloadavg()[0]
    name = server.create_database(None)
    dsn = server.dsn(name)
    try:
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

        log(f"[{label}] full audit")
        inproc, counts = in_process_audit(dsn, timeout=opts.statement_timeout)
        cells["audit_inproc"] = fmt_s(inproc)
        cells["findings"] = f"{sum(counts.values()):,}"
        audit_seconds: float | None = None
        if cli_has("check"):
            runs = [run_cli(["check", "--format", "json", "--fail-on", "never", "--dsn", dsn,
                             "--statement-timeout", opts.statement_timeout]) for _ in range(max(1, opts.repeat - 1))]
            failed = [r for r in runs if r.returncode != 0]
            if failed:
                cells["audit"] = cells["rss"] = cli_failure(failed[0])
            else:
                audit_seconds = min(r.seconds for r in runs)
                cells["audit"] = fmt_s(audit_seconds)
                cells["rss"] = f"{max(r.max_rss_kb for r in runs) / 1024:.0f} MB"
        else:
            cells["audit"] = cells["rss"] = f"{NOT_AVAILABLE} (no check command yet)"
        basis = audit_seconds or inproc
        note = "" if audit_seconds else " (in-process)"
        cells["audit_vs_work"] = fmt_ratio(basis, work) + note
        cells["audit_vs_scan"] = fmt_ratio(basis, scan) + note

        log(f"[{label}] one app")
        largest = stats.largest_app
        app_time = min(in_process_audit(dsn, apps=[largest])[0] for _ in range(max(3, opts.repeat)))
        cells["app_largest"] = f"{fmt_s(app_time)} ({largest}, {stats.largest_app_releases:,} releases)"
        ref_time = min(in_process_audit(dsn, apps=[REFERENCE_APP])[0] for _ in range(max(3, opts.repeat)))
        result.reference_seconds = ref_time
        cells["app_reference"] = f"{fmt_s(ref_time)} ({stats.by_app[REFERENCE_APP]} releases)"
        for key, args in (("app_check", ["check", "--app", largest, "--format", "json", "--fail-on", "never"]),
                          ("app_explain", ["explain", largest])):
            if not cli_has(args[0]):
                cells[key] = f"{NOT_AVAILABLE} (no {args[0]} command yet)"
                continue
            runs = [run_cli([*args, "--dsn", dsn]) for _ in range(max(1, opts.repeat))]
            ok = [r for r in runs if r.returncode in (0, 1, 2)]
            cells[key] = fmt_s(min(r.seconds for r in ok)) if ok else cli_failure(runs[0])

        log(f"[{label}] naive baseline")
        sample = None if releases <= opts.naive_full_limit else opts.naive_sample
        naive = run_naive(dsn, sample=sample, seed=opts.seed)
        if sample is None:
            naive_seconds = naive.seconds
            cells["naive"] = f"{fmt_s(naive_seconds)} ({naive.queries:,} queries)"
        else:
            naive_seconds = naive.seconds * stats.releases / max(naive.releases, 1)
            cells["naive"] = (f"{fmt_s(naive_seconds)} extrapolated linearly from a random sample of "
                              f"{naive.apps} apps / {naive.releases:,} releases ({fmt_s(naive.seconds)})")
        cells["speedup"] = fmt_ratio(naive_seconds, basis) + note

        if opts.per_check:
            log(f"[{label}] per check")
            for cid, check in CATALOGUE.items():
                if check.database_level:
                    continue
                seconds, found = in_process_audit(dsn, include=[cid], timeout=opts.statement_timeout)
                result.per_check[cid] = (seconds, sum(found.values()))

        log(f"[{label}] repair")
        if releases <= opts.repair_releases:
            measure_repair(server, name, cells, opts)
        else:
            _repair_on_smaller(server, cells, opts, log)
    finally:
        server.drop_database(name)
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


def machine(server: Server) -> str:
    """One line about where the figures come from."""
    with psycopg.connect(server.admin_dsn) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
    return (f"{dt.date.today().isoformat()}, {os.cpu_count()} cores ({platform.machine()}), "
            f"PostgreSQL {version} ({server.kind}), Python {platform.python_version()}")


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10k,1m", help="comma-separated RELEASES[:APPS] (default 10k,1m)")
    parser.add_argument("--dsn", default=None, help="a server where the role may create databases "
                        "(default: start an embedded PostgreSQL)")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="where to write the Markdown table")
    parser.add_argument("--migration", type=int, default=NEWEST, help="schema generation (19..28)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing; the fastest counts")
    parser.add_argument("--naive-sample", type=int, default=100,
                        help="apps the naive baseline walks above 100k releases (then extrapolated)")
    parser.add_argument("--repair-releases", type=parse_count, default=250_000,
                        help="sizes above this measure the repair on a database this big (default 250k)")
    parser.add_argument("--per-check", action="store_true", help="also time each check alone")
    args = parser.parse_args(argv)
    opts = Options(migration=args.migration, seed=args.seed, repeat=args.repeat,
                   naive_sample=args.naive_sample,
                   repair_releases=args.repair_releases, per_check=args.per_check)
    sizes = parse_sizes(args.sizes)

    def log(message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)

    server = Server(admin_dsn=args.dsn, kind="--dsn") if args.dsn else start_local()
    try:
        results = [measure_size(server, label, releases, apps, opts, log) for label, releases, apps in sizes]
        where = machine(server)
    finally:
        server.close()
    text = f"Machine: {where}; schema migration {opts.migration:04d}, seed {opts.seed}.\n\n{table(results)}"
    print(text, end="")
    atomic_write(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
