"""The repair's benchmark: ``plan``/``apply`` of ``unshare`` against the same change by hand.

Each round clones the source database twice (``CREATE DATABASE ... TEMPLATE``): the tool plans
and applies ``unshare`` on one clone, the hand-written floor runs on the other; the rounds
run back to back in one sitting and the table reports the median of each (and their spread):
the median ratio, not the best run's.

Alone, on any server (a database of its own is generated, measured and dropped)::

    python -m bench.repair --dsn ADMIN_DSN [--releases 250k] [--runs 3] [--migration 28] [--seed 1]
                           [--statements 25]

``--statements N`` adds one more apply, run in this process on its own clone, and lists its N
costliest statements: wall time and, when the server runs on this machine, the CPU time of the
backend (``/proc/PID/stat``), which the load of a shared machine inflates far less than wall
time (the leader's only: parallel workers are not counted).  COPY of the plan is not a
statement and is not listed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from auditor.core.detect import detect
from bench.generate import NEWEST, Spec, generate, parse_count
from bench.measure import NOT_AVAILABLE, CliRun, cli_failure, cli_has, fmt_ratio, median_spread, run_cli
from bench.server import BenchServer, attach

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


@dataclass
class RepairRounds:
    """Timings of each round (seconds), and the plan file's size."""

    raw: list[float]
    plan: list[float]
    apply: list[float]
    plan_bytes: int = 0


def clone(server: BenchServer, source: str) -> str:
    """A copy of ``source`` (``CREATE DATABASE ... TEMPLATE``)."""
    name = f"{source}_clone{time.monotonic_ns() % 1_000_000}"
    server.server.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                            sql.Identifier(source)))
    return name


def _raw_round(server: BenchServer, source: str) -> float:
    name = clone(server, source)
    try:
        with psycopg.connect(server.dsn(name), autocommit=True) as conn:
            began = time.perf_counter()
            raw_unshare(conn)
            return time.perf_counter() - began
    finally:
        server.server.drop_database(name)


@contextlib.contextmanager
def _planned_clone(server: BenchServer, source: str, timeout: str) -> Iterator[tuple[str, Path, CliRun]]:
    """A fresh clone of ``source`` (dropped afterwards) and ``plan --repair unshare`` run on it:
    its DSN, the plan file (in a temporary directory) and the plan's run."""
    name = clone(server, source)
    dsn = server.dsn(name)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            plan_file = Path(tmp) / "unshare.plan"
            yield dsn, plan_file, run_cli(["plan", "--repair", "unshare", "-o", str(plan_file), "--dsn", dsn,
                                           "--statement-timeout", timeout])
    finally:
        server.server.drop_database(name)


def _tool_round(server: BenchServer, source: str, timeout: str, rounds: RepairRounds, cells: dict[str, str]) -> bool:
    """Plan and apply on a fresh clone; False (and the failure in ``cells``) when a step failed."""
    with _planned_clone(server, source, timeout) as (dsn, plan_file, plan):
        if plan.returncode != 0 or not plan_file.exists():
            cells["plan"] = cli_failure(plan)
            return False
        rounds.plan.append(plan.seconds)
        rounds.plan_bytes = plan_file.stat().st_size
        applied = run_cli(["apply", str(plan_file), "--yes", "--dsn", dsn, "--statement-timeout", timeout])
        if applied.returncode != 0:
            cells["apply"] = cli_failure(applied)
            return False
        rounds.apply.append(applied.seconds)
        return True


@dataclass
class StatementTime:
    """One statement of a profiled apply: wall seconds, backend CPU seconds (None: not readable)."""

    seconds: float
    cpu: float | None
    text: str


def _backend_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a server process on this machine, None if it is elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def timed_statements() -> Iterator[list[StatementTime]]:
    """Time every ``Connection.execute`` of this process while the block runs (bench only: the
    method is wrapped for the block's duration and restored after it)."""
    times: list[StatementTime] = []
    execute = psycopg.Connection.execute

    def timed(self: psycopg.Connection, query, params=None, **kwargs):  # type: ignore[no-untyped-def]
        pid = self.info.backend_pid
        cpu, began = _backend_cpu(pid), time.perf_counter()
        try:
            return execute(self, query, params, **kwargs)
        finally:
            seconds = time.perf_counter() - began
            after = _backend_cpu(pid)
            try:
                text = query.as_string(self) if isinstance(query, sql.Composable) else str(query)
            except psycopg.Error:  # a broken connection cannot quote
                text = repr(query)
            times.append(StatementTime(seconds, None if cpu is None or after is None else after - cpu,
                                       " ".join(text.split())))

    psycopg.Connection.execute = timed  # type: ignore[method-assign, assignment]
    try:
        yield times
    finally:
        psycopg.Connection.execute = execute  # type: ignore[method-assign]


def profile_apply(server: BenchServer, source: str, timeout: str) -> tuple[float, list[StatementTime]]:
    """Plan ``unshare`` on a clone of ``source`` and apply it in this process, timing each statement:
    the apply's wall time and its statements, costliest first."""
    from auditor.cli import cli

    with _planned_clone(server, source, timeout) as (dsn, plan_file, plan):
        if plan.returncode != 0:
            raise RuntimeError(f"plan failed: {cli_failure(plan)}")
        said = io.StringIO()
        code: str | int | None = None
        with timed_statements() as times, contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            began = time.perf_counter()
            try:
                cli.main(["apply", str(plan_file), "--yes", "--dsn", dsn, "--statement-timeout", timeout,
                          "--undo-file", str(plan_file.with_suffix(".undo"))])
            except SystemExit as exit_:
                code = exit_.code
            seconds = time.perf_counter() - began
        if code != 0:
            raise RuntimeError(f"apply exited with {code}: {said.getvalue().strip()}")
        return seconds, sorted(times, key=lambda t: t.seconds, reverse=True)


def format_profile(seconds: float, times: list[StatementTime], top: int) -> list[str]:
    """The profile as lines: the totals, then the ``top`` costliest statements."""
    cpu = [t.cpu for t in times if t.cpu is not None]
    lines = [f"profiled apply: {seconds:.2f} s; {len(times)} statements {sum(t.seconds for t in times):.2f} s"
             + (f", backend CPU {sum(cpu):.2f} s" if cpu else "")]
    lines += [f"{t.seconds:8.2f} s {'' if t.cpu is None else f'{t.cpu:6.2f} s CPU'}  {t.text[:110]}"
              for t in times[:top]]
    return lines


def measure_repair(server: BenchServer, source: str, cells: dict[str, str], runs: int = 3,
                   timeout: str = "1h", note: str = "") -> RepairRounds:
    """``runs`` rounds of the floor and the tool on clones of ``source``, back to back."""
    with psycopg.connect(server.dsn(source), autocommit=True) as conn:
        shared, copies = conn.execute(_SHARED_SQL).fetchone()
    cells["shared"] = f"{shared:,} / {copies:,}{note}"
    available = cli_has("plan") and cli_has("apply")
    rounds = RepairRounds([], [], [])
    for _ in range(max(1, runs)):
        rounds.raw.append(_raw_round(server, source))
        if available and not _tool_round(server, source, timeout, rounds, cells):
            available = False
    cells["raw_repair"] = median_spread(rounds.raw)
    if not (rounds.apply and len(rounds.apply) == len(rounds.raw)):
        reason = "" if cli_has("plan") and cli_has("apply") else " (no plan/apply command yet)"
        for key in ("plan", "apply", "repair_ratio"):
            cells.setdefault(key, NOT_AVAILABLE + reason)
        cells.setdefault("repair_ratio", NOT_AVAILABLE)
        return rounds
    cells["plan"] = f"{median_spread(rounds.plan)} / {rounds.plan_bytes / 1e6:.3g} MB"
    cells["apply"] = median_spread(rounds.apply)
    cells["repair_ratio"] = fmt_ratio(statistics.median(rounds.apply), statistics.median(rounds.raw))
    return rounds


def repair_on_smaller(server: BenchServer, cells: dict[str, str], releases: int, migration: int, seed: int,
                      runs: int, timeout: str, log: Callable[[str], None], statements: int = 0) -> None:
    """The repair figures on a database of ``releases`` releases (~100k shared rows at 250k);
    with ``statements``, the costliest statements of one more apply are logged."""
    name = server.server.create_database(None)
    try:
        log(f"generating {releases:,} releases for the repair")
        generate(server.dsn(name), Spec(releases=releases, apps=max(1, releases // 100), migration=migration,
                                        seed=seed))
        log(f"repair: {runs} rounds of the floor and plan/apply")
        measure_repair(server, name, cells, runs, timeout, note=f" (on a {releases:,}-release database)")
        if statements:
            log("repair: one more apply, each statement timed")
            seconds, times = profile_apply(server, name, timeout)
            for line in format_profile(seconds, times, statements):
                log(line)
    finally:
        server.server.drop_database(name)


def main(argv: list[str] | None = None) -> int:
    """The repair's rows of the benchmark alone, on the server ``--dsn`` (an admin DSN)."""
    parser = argparse.ArgumentParser(prog="python -m bench.repair", description=main.__doc__)
    parser.add_argument("--dsn", required=True, help="a DSN of the server (a role that may create databases)")
    parser.add_argument("--releases", type=parse_count, default=250_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--migration", type=int, default=NEWEST)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--statement-timeout", default="1h")
    parser.add_argument("--statements", type=int, default=0, metavar="N",
                        help="profile one more apply and list its N costliest statements")
    args = parser.parse_args(argv)
    cells: dict[str, str] = {}
    repair_on_smaller(attach(args.dsn), cells, args.releases, args.migration, args.seed, args.runs,
                      args.statement_timeout, lambda line: print(line, file=sys.stderr, flush=True), args.statements)
    for key in ("shared", "plan", "apply", "raw_repair", "repair_ratio"):
        print(f"{key}: {cells.get(key, '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
