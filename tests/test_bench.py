"""The benchmark's generator and harness, end to end at a CI size (no timing assertions)."""

from __future__ import annotations

import importlib.util
import itertools
import uuid
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from auditor.audit.story import app_story
from auditor.core.detect import detect
from bench import app_floor, fused, run
from bench.explain_audit import breakdown, explain_audit, report
from bench.fused import FusedCounts, JsonCheck, run_fused, shared_reasons, tool_counts
from bench.generate import REFERENCE_APP, Spec, content_checksum, generate, iter_counts
from bench.measure import TOOL_PACKAGES, CliRun, compiled_tool, rejected_option, run_cli
from bench.naive import run_naive
from bench.server import start_bench_server
from checks import CATALOGUE
from checks.invalid_json import json_problem
from tests.checks.stories import healthy_app, linear_history
from tests.damage import DamagingController
from tests.helpers import audit, by_check

TINY = Spec(releases=500, apps=50, tie_rate=0.2)

_SCHEMA_OBJECTS = """
SELECT t.relname, c.conname, pg_get_constraintdef(c.oid), c.condeferrable, c.condeferred
FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'public'
UNION ALL
SELECT tablename, indexname, indexdef, null, null FROM pg_indexes WHERE schemaname = 'public'"""


@pytest.fixture
def fresh(pg_server):
    """Factory of empty databases (no schema), dropped afterwards."""
    made: list[str] = []

    def make() -> str:
        made.append(pg_server.create_database(None))
        return pg_server.dsn(made[-1])

    yield make
    for name in made:
        pg_server.drop_database(name)


def _schema_objects(dsn: str) -> set[tuple]:
    with psycopg.connect(dsn) as conn:
        return set(conn.execute(_SCHEMA_OBJECTS).fetchall())


def test_same_seed_same_data_other_seed_other_data(fresh) -> None:
    first, second, other = fresh(), fresh(), fresh()
    stats = generate(first, TINY)
    generate(second, TINY)
    generate(other, Spec(releases=500, apps=50, tie_rate=0.2, seed=2))
    assert dict(iter_counts(first)) == dict(iter_counts(second))
    assert dict(iter_counts(first))["api_release"] == stats.releases == 500
    assert dict(iter_counts(first))["api_app"] == stats.apps == 50
    assert content_checksum(first) == content_checksum(second)
    assert content_checksum(first) != content_checksum(other)


def test_constraints_and_indexes_are_the_schemas(fresh, make_db) -> None:
    dsn = fresh()
    generate(dsn, TINY)
    assert _schema_objects(dsn) == _schema_objects(make_db(28).dsn)


@pytest.mark.parametrize("migration", [19, 23, 28])
def test_requested_damage_is_what_the_audit_finds(fresh, migration: int) -> None:
    dsn = fresh()
    stats = generate(dsn, Spec(releases=500, apps=50, tie_rate=0.2, orphan_rate=0.05, migration=migration))
    findings = audit(SimpleNamespace(dsn=dsn))
    assert stats.orphan_configs + stats.orphan_builds > 0
    assert len(by_check(findings, "orphan-config")) == stats.orphan_configs
    assert len(by_check(findings, "orphan-build")) == stats.orphan_builds
    assert stats.tied_apps > 0
    assert len(by_check(findings, "latest-ambiguous")) == stats.tied_apps
    with psycopg.connect(dsn) as conn:
        if migration >= 20:
            failed = conn.execute("SELECT count(*) FROM api_release WHERE failed").fetchone()[0]
            assert failed == stats.failed_releases > 0
        no_build_v1 = conn.execute("SELECT count(*) FROM api_release WHERE version = 1 AND build_id IS NULL")
        assert no_build_v1.fetchone()[0] == stats.apps
    naive = run_naive(dsn)
    assert naive.counts["orphan-config"] == stats.orphan_configs
    assert naive.counts["orphan-build"] == stats.orphan_builds
    assert naive.counts["shared-config"] == len(by_check(findings, "shared-config")) > 0
    assert naive.counts["shared-build"] == len(by_check(findings, "shared-build")) > 0


def test_no_damage_when_every_rate_is_zero(fresh) -> None:
    dsn = fresh()
    stats = generate(dsn, TINY.undamaged())
    findings = audit(SimpleNamespace(dsn=dsn))
    assert stats.orphan_configs == stats.orphan_builds == stats.failed_releases == stats.tied_apps == 0
    assert stats.rollbacks > 0
    for check in ("orphan-config", "orphan-build", "latest-ambiguous"):
        assert by_check(findings, check) == [], check
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM api_release WHERE failed").fetchone()[0] == 0
    # A rollback leaves an older config live under a newer one (latest-*-not-live); without
    # rollbacks the newest rows are always the live release's.
    assert by_check(findings, "latest-config-not-live") or by_check(findings, "latest-build-not-live")
    straight = fresh()
    generate(straight, replace(TINY.undamaged(), rollback_rate=0.0))
    calm = audit(SimpleNamespace(dsn=straight))
    assert by_check(calm, "latest-config-not-live") == by_check(calm, "latest-build-not-live") == []


def test_pareto_shape_and_reference_app(fresh) -> None:
    stats = generate(fresh(), Spec(releases=5000, apps=100))
    counts = sorted(stats.by_app.values())
    assert stats.by_app[REFERENCE_APP] == 100
    assert counts[len(counts) // 2] < 5000 / 100 < counts[-1]
    assert sum(counts) == 5000 and counts[0] >= 1


def test_harness_end_to_end(pg_server, tmp_path, capsys) -> None:
    output = tmp_path / "results.md"
    assert run.main(["--sizes", "500:50", "--dsn", pg_server.admin_dsn, "--output", str(output),
                     "--repeat", "1", "--per-check", "--repair-runs", "2"]) == 0
    text = output.read_text()
    assert text in capsys.readouterr().out
    lines = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if line.startswith("| ")}
    cell = {key: lines[label].split(" | ")[2].strip(" |") for key, label, _ in run.ROWS}
    for _, label, _ in run.ROWS:
        assert label in lines, label
        assert len(lines[label].split(" | ")) == 3, lines[label]
    assert int(cell["findings"].split()[0].replace(",", "")) > 0
    for key in ("fused_floor", "audit", "audit_vs_fused", "audit_vs_work", "rss", "app_explain", "app_floor",
                "app_vs_floor"):
        assert "not available" not in cell[key] and "differ" not in cell[key], (key, cell[key])
    # The largest app's rows: the fastest of seven runs (the in-process statement's count), the median beside it.
    for key in ("app_floor", "app_check", "app_explain"):
        assert cell[key].endswith(" of 7)") and "(median " in cell[key], (key, cell[key])
    # An option the installed tool does not know yet is skipped with the tool's own words.
    if "not available" in cell["audit_info"]:
        assert "the tool rejects --min-severity info: No such option '--min-severity'" in cell["audit_info"]
        assert cell["rss_info"] == cell["audit_info"]
    # The socket server of --dsn has no TCP address unless given one.
    assert "--tcp-dsn" in cell["naive_tcp"] and "not available" not in cell["naive"]
    assert "median of 2" in cell["raw_repair"] and "median of 2" in cell["apply"]
    assert "orphan-config" in lines
    with psycopg.connect(pg_server.admin_dsn) as conn:
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE '%%clone%%'").fetchone()[0]
    assert left == 0


def test_the_reference_app_is_measured_at_every_size_in_turn(pg_server, tmp_path, monkeypatch) -> None:
    """bench-ref's ratio compares sizes under the same load: each round audits the reference app in
    every size's database in turn, and every database is dropped afterwards."""
    audited: list[str] = []
    real = run.in_process_audit

    def recorded(dsn: str, apps=(), **kwargs):  # type: ignore[no-untyped-def]
        if list(apps) == [REFERENCE_APP]:
            audited.append(conninfo_to_dict(dsn)["dbname"])
        return real(dsn, apps, **kwargs)

    monkeypatch.setattr(run, "in_process_audit", recorded)
    with psycopg.connect(pg_server.admin_dsn) as conn:
        before = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    output = tmp_path / "results.md"
    assert run.main(["--sizes", "300:30,400:40", "--dsn", pg_server.admin_dsn, "--output", str(output),
                     "--repeat", "1", "--repair-runs", "1"]) == 0
    first, second = audited[-2:]  # (the largest app of a size may be the reference app too)
    assert first != second and audited[-14:] == [first, second] * 7
    with psycopg.connect(pg_server.admin_dsn) as conn:
        assert {r[0] for r in conn.execute("SELECT datname FROM pg_database")} == before
    row = next(line for line in output.read_text().splitlines() if line.startswith(f"| `{REFERENCE_APP}`: this"))
    assert row.split(" | ")[2] == "1x"


@pytest.mark.parametrize("repeat", [1, 2, 3])
def test_each_cli_audit_runs_as_often_as_the_floors(fresh, monkeypatch, repeat) -> None:
    """``--repeat N`` times each ``check`` N times, as the floors it is divided by (the fastest counts)."""
    dsn = fresh()
    generate(dsn, Spec(releases=200, apps=20))
    calls: Counter = Counter()
    real = run.run_cli

    def counted(args, **kwargs):  # type: ignore[no-untyped-def]
        if args and args[0] == "check":
            calls[" ".join(args[args.index("--statement-timeout") + 2:]) or "default"] += 1
        return real(args, **kwargs)

    monkeypatch.setattr(run, "run_cli", counted)
    cells: dict[str, str] = {}
    seconds = run._cli_audit_rows(dsn, cells, run.Options(repeat=repeat))
    assert set(seconds) == {"audit", "audit_info"}
    assert calls == {"default": repeat, "--min-severity info": repeat}


def test_repair_alone_on_a_server(pg_server, capsys) -> None:
    from bench import repair
    with psycopg.connect(pg_server.admin_dsn) as conn:
        databases = conn.execute("SELECT count(*) FROM pg_database").fetchone()[0]
    assert repair.main(["--dsn", pg_server.admin_dsn, "--releases", "300", "--runs", "1", "--statements", "30"]) == 0
    out, err = capsys.readouterr()
    cell = dict(line.split(": ", 1) for line in out.splitlines())
    assert "(on a 300-release database)" in cell["shared"]
    assert cell["apply"].endswith("s") and cell["repair_ratio"].endswith("x"), cell
    # --statements: one more apply, in process, its statements listed costliest first (stdout untouched)
    profile = err.split("each statement timed\n", 1)[1].splitlines()
    assert profile[0].startswith("profiled apply: ") and len(profile) == 31, profile
    assert any("UPDATE api_release AS r SET config_id" in line for line in profile), profile
    seconds = [float(line.split(" s", 1)[0]) for line in profile[1:]]
    assert seconds == sorted(seconds, reverse=True)
    assert psycopg.Connection.execute.__name__ == "execute"  # restored after the profile
    with psycopg.connect(pg_server.admin_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database").fetchone()[0] == databases


def test_bench_server_answers_on_the_socket_and_over_tcp() -> None:
    bench = start_bench_server()
    try:
        name = bench.server.create_database(None)
        tcp = bench.tcp_dsn(name)
        assert tcp is not None and "127.0.0.1" in tcp
        generate(bench.dsn(name), TINY)
        with psycopg.connect(tcp) as conn:
            assert conn.execute("SELECT inet_server_addr()::text").fetchone()[0].startswith("127.0.0.1")
        with psycopg.connect(bench.dsn(name)) as conn:
            assert conn.execute("SELECT inet_server_addr()").fetchone()[0] is None  # the unix socket
        assert run_naive(tcp).counts == run_naive(bench.dsn(name)).counts
    finally:
        bench.close()


def test_the_console_script_is_timed_with_its_bytecode_compiled(monkeypatch) -> None:
    # The suite may run with PYTHONDONTWRITEBYTECODE (as this project's CI image does): without the
    # caches every timed run would compile the tool's modules again, which an installed tool never does.
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    compiled_tool.cache_clear()
    assert run_cli(["--help"]).returncode == 0
    root = Path(__file__).resolve().parent.parent
    sources = [p for name in TOOL_PACKAGES for p in (root / name).rglob("*.py")]
    assert len(sources) > 50
    stale = [p for p in sources if not Path(importlib.util.cache_from_source(str(p))).exists()
             or Path(importlib.util.cache_from_source(str(p))).stat().st_mtime < p.stat().st_mtime]
    assert stale == []


def test_a_rejected_option_is_told_apart_from_a_failure() -> None:
    tool = run_cli(["check", "--no-such-flag", "--dsn", "host=/nonexistent dbname=x"])
    assert rejected_option(tool) == "No such option '--no-such-flag'."
    click = CliRun(0.1, 1, 2, "Usage: controller-audit check [OPTIONS]\n\nError: No such option: --min-severity")
    assert rejected_option(click) == "No such option: --min-severity"
    assert rejected_option(CliRun(0.1, 1, 2, "")) is None  # exit 2: critical findings
    assert rejected_option(CliRun(0.1, 1, 3, "controller-audit: timeout: statement_timeout reached")) is None


# -- the fused floor --------------------------------------------------------------------------


def _as_replica(conn: psycopg.Connection, statement: str, params: tuple) -> None:
    """Run ``statement`` with foreign keys off (``session_replication_role = replica``)."""
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(statement, params)


def damaged_story(conn: psycopg.Connection) -> None:
    """Every damage class and hazard the audit reports, written as the controller (and the hand
    edits it never makes) would: the fused floor must count what the audit finds."""
    ctl = DamagingController(conn)
    now = datetime.now(timezone.utc)
    for index in range(8):
        healthy_app(ctl, index, rollbacks=True)
    # Rollbacks: an old pair reused by the live release, and one reused then left behind.
    live_reuse = ctl.create_app("live-reuse")
    linear_history(live_reuse, 3)
    live_reuse.rollback(3)
    left_behind = ctl.create_app("left-behind")
    linear_history(left_behind, 4)
    left_behind.rollback(2)
    left_behind.push()
    # latest() shared but not live: v3's config is the newest, shared by v3 and v4; the app rolls back to v2.
    latest_shared = ctl.create_app("latest-shared")
    latest_shared.push()
    latest_shared.config_set(A="1")
    latest_shared.push()
    latest_shared.rollback(2)
    # Failed deploys (orphans in the old era, failed releases in the new): latest() not live.
    shop = ctl.create_app("shop")
    linear_history(shop, 3)
    shop.failed_config_set(WORKERS="64")
    shop.failed_push()
    clutter = ctl.create_app("clutter")
    clutter.push()
    clutter.orphan_build()
    clutter.orphan_config(X="1")
    clutter.push()
    clutter.config_set(Y="2")
    resume = ctl.clock
    clutter.orphan_config(at=now - timedelta(seconds=20), Z="3")  # in flight, not the newest: not reported
    clutter.orphan_config(at=now - timedelta(seconds=10), Z="4")  # in flight, latest(): not reported
    ctl.tick(resume)
    # Ties at latest(): a config and a build created at the same time as the newest.
    tied = ctl.create_app("tied")
    tied.push()
    tied.config_set(A="1")
    newest = tied.current()
    tied.orphan_config(at=newest.created - timedelta(milliseconds=1), B="2")
    tied.orphan_build(at=conn.execute("SELECT created FROM api_build WHERE uuid = %s",
                                      (newest.build,)).fetchone()[0])
    # Release order: a clock that went backwards, releases tied at the newest, a live tie.
    backwards = ctl.create_app("backwards")
    linear_history(backwards, 2)
    backwards.push(at=ctl.clock - timedelta(minutes=10))
    tie = ctl.create_app("tie")
    linear_history(tie, 3)
    tie.tie_releases(3, 4)
    if ctl.generation.has_failed:
        live_tie = ctl.create_app("live-tie")
        linear_history(live_tie, 3)
        live_tie.tie_releases(3, 4)
        live_tie.failed_push()
    # Repeated versions (no UNIQUE(app_id, version): missing-constraint too) and a version gap.
    ctl.drop_release_unique()
    repeated = ctl.create_app("repeated")
    linear_history(repeated, 3)
    repeated.duplicate_version(2, at=repeated.release(2).created + timedelta(seconds=1))
    gap = ctl.create_app("gap")
    linear_history(gap, 4)
    conn.execute("DELETE FROM api_release WHERE app_id = %s AND version = 3", (gap.uuid,))
    # Cross-app: one release using another app's config and build; another app's live release
    # uses a row of a third app.
    owner = ctl.create_app("owner")
    linear_history(owner, 3)
    borrower = ctl.create_app("borrower")
    linear_history(borrower, 3)
    borrower.point_at(2, owner, "config")
    borrower.point_at(2, owner, "build")
    squatter = ctl.create_app("squatter")
    linear_history(squatter, 2)
    squatter.point_at(squatter.current().version, owner, "config")
    # Dangling: a deleted config, a release without its config and its build, a deleted app.
    ghost_rows = ctl.create_app("ghost-rows")
    linear_history(ghost_rows, 4)
    _as_replica(conn, "DELETE FROM api_config WHERE uuid = %s", (ghost_rows.release(2).config,))
    both = ghost_rows.release(3)
    _as_replica(conn, "DELETE FROM api_build WHERE uuid = %s", (both.build,))
    _as_replica(conn, "DELETE FROM api_config WHERE uuid = %s", (both.config,))
    gone = ctl.create_app("gone")
    linear_history(gone, 3)
    _as_replica(conn, "DELETE FROM api_app WHERE uuid = %s", (gone.uuid,))
    # Future-dated: a newest release and its build, a config that is not the newest.
    ahead = ctl.create_app("ahead")
    linear_history(ahead, 2)
    resume = ctl.clock
    ahead.orphan_config(at=now + timedelta(days=30), A="1")
    ahead.orphan_config(at=now + timedelta(days=60), B="1")
    ahead.push(at=now + timedelta(days=365))
    ctl.tick(resume)
    # Invalid JSON: the live config, an old config, the live build, an app, its settings.
    poisoned = ctl.create_app("poisoned")
    linear_history(poisoned, 4)
    bad = {poisoned.current().config: '{"A": "1"', poisoned.release(2).config: "[]"}
    for config, value in bad.items():
        conn.execute('UPDATE api_config SET "values" = %s WHERE uuid = %s', (value, config))
    conn.execute("UPDATE api_build SET procfile = 'null' WHERE uuid = %s", (poisoned.current().build,))
    conn.execute("UPDATE api_app SET structure = '{''web'': 1}' WHERE uuid = %s", (poisoned.uuid,))
    for days, value in ((1, '"old"'), (2, "{broken")):
        ctl.insert("api_appsettings", {"uuid": str(uuid.uuid4()), "created": ctl.clock + timedelta(days=days),
                                       "updated": ctl.clock, "app_id": poisoned.uuid, "owner_id": poisoned.owner_id,
                                       "whitelist": [], "autoscale": value, "label": "{}"})
    # An apps:create that failed before v1.
    ctl.failed_create_app("stillborn")


def lent_rows_story(conn: psycopg.Connection) -> None:
    """Rows that only other apps' releases use (none of their own app's), carrying the facts of a row:
    bad JSON, a future date, an owner app that is gone, several borrowing apps.  The fused floor counts
    a row's facts on its own app's line; these rows have none, so it counts them from their cross-app
    group (``_ROWS_BY_LINE``)."""
    ctl = DamagingController(conn)
    now = datetime.now(timezone.utc)
    for index in range(3):
        healthy_app(ctl, index)
    lender = ctl.create_app("lender")
    linear_history(lender, 2)
    borrowers = [ctl.create_app(f"borrower-{n}") for n in range(3)]
    for borrower in borrowers:
        linear_history(borrower, 3)
    resume = ctl.clock
    lent_config = lender.orphan_config(at=now + timedelta(days=30), A="1")  # future-dated, not latest()
    ctl.tick(resume)
    lent_build = lender.orphan_build()
    conn.execute('UPDATE api_config SET "values" = %s WHERE uuid = %s', ("[]", lent_config))
    conn.execute("UPDATE api_build SET procfile = 'null' WHERE uuid = %s", (lent_build,))
    # One borrower's live release and another's old one use the config; one old release the build.
    for borrower, version, column, row in ((borrowers[0], 3, "config_id", lent_config),
                                           (borrowers[1], 1, "config_id", lent_config),
                                           (borrowers[2], 2, "build_id", lent_build)):
        conn.execute(f"UPDATE api_release SET {column} = %s WHERE app_id = %s AND version = %s",
                     (row, borrower.uuid, version))
    # A gone app's config, used only by another app's release.
    gone = ctl.create_app("gone-lender")
    linear_history(gone, 2)
    orphaned = gone.orphan_config(B="2")
    conn.execute("UPDATE api_release SET config_id = %s WHERE app_id = %s AND version = 2",
                 (orphaned, borrowers[2].uuid))
    _as_replica(conn, "DELETE FROM api_app WHERE uuid = %s", (gone.uuid,))


def _fused_equals_tool(dsn: str) -> tuple[Counter, Counter, FusedCounts]:
    """Assert the fused floor's counts, by default and with ``reasons``, are the audit's; return the
    audit's counts per (check, severity) and per (shared check, reason), and the floor's default run."""
    by_severity, reasons = tool_counts(dsn)
    with psycopg.connect(dsn) as conn:
        counted = run_fused(conn)
        classified = run_fused(conn, reasons=True)
    assert +counted.by_severity == by_severity
    assert +classified.by_severity == by_severity
    assert shared_reasons(classified) == reasons
    return by_severity, reasons, counted


@pytest.mark.parametrize("migration", [19, 28])
def test_fused_floor_counts_rows_only_other_apps_use(make_db, migration: int) -> None:
    db = make_db(migration)
    lent_rows_story(db.conn)
    by_severity, _, _ = _fused_equals_tool(db.dsn)
    checks = {check for check, _ in by_severity}
    assert {"invalid-json", "future-dated", "cross-app-reference", "dangling-reference", "shared-config"} <= checks


def test_fused_floor_counts_lines_of_row_and_app(make_db) -> None:
    """The default floor's shape (issue 16u): the releases grouped by (row, app) before the join, as the
    audit's use passes do, never each release joined with its row (main's floor did that: 1M probes at
    1M releases, then a grouping of the joined rows)."""
    db = make_db(28)
    lent_rows_story(db.conn)
    with psycopg.connect(db.dsn) as conn:
        query = sql.SQL("EXPLAIN (VERBOSE, COSTS OFF) {}").format(fused.statement(detect(conn)))
        plan = "\n".join(r[0] for r in conn.execute(query, {"grace_seconds": 60.0, "skew_seconds": 5.0}))
    for pointer in ("config_id", "build_id"):
        assert f"Group Key: r.{pointer}, r.app_id" in plan or f"Group Key: r_1.{pointer}, r_1.app_id" in plan


@pytest.mark.parametrize("migration", [19, 28])
def test_fused_floor_counts_what_the_audit_finds(make_db, migration: int) -> None:
    db = make_db(migration)
    damaged_story(db.conn)
    by_severity, reasons, counted = _fused_equals_tool(db.dsn)
    with psycopg.connect(db.dsn) as conn:
        if conn.info.server_version >= 160000:
            validated = run_fused(conn, json_check="pg_input_is_valid")
            assert +validated.by_severity == by_severity and not validated.json_fallback
    # Every damage class of the story is there (the comparison is not between two empty counters).
    checks = {check for check, _ in by_severity}
    for check in ("orphan-config", "orphan-build", "latest-build-not-live", "shared-config", "shared-build",
                  "cross-app-reference", "dangling-reference", "release-version-gap", "latest-ambiguous",
                  "invalid-json", "app-without-release", "release-order", "future-dated", "missing-constraint"):
        assert check in checks, check
    assert {severity for _, severity in by_severity} == {"critical", "warning", "info"}
    assert {reason for _, reason in reasons} >= {"adjacent", "rollback-reuse", "rollback-reuse-live",
                                                 "shared-latest-not-live", "cross-app"}
    # The optimistic cast failed on the unparsable values, and the exact recounts ran: a
    # release with two missing parents, one with two foreign ones.
    assert counted.json_fallback and counted.statements == 4


@pytest.mark.parametrize("migration", [19, 28])
def test_fused_floor_counts_what_the_audit_finds_before_16(make_db, migration: int) -> None:
    db = make_db(migration)
    damaged_story(db.conn)
    by_severity, _ = tool_counts(db.dsn, server_version=150000)  # JSON parsed client-side
    with psycopg.connect(db.dsn) as conn:
        counted = run_fused(conn)
    assert counted.json_fallback
    assert +counted.by_severity == by_severity
    # Without an unparsable value the optimistic cast is the only statement.
    healthy = make_db(migration)
    ctl = DamagingController(healthy.conn)
    for index in range(6):
        healthy_app(ctl, index, rollbacks=True)
    with psycopg.connect(healthy.dsn) as conn:
        calm = run_fused(conn)
    assert not calm.json_fallback and calm.statements == 1
    assert +calm.by_severity == tool_counts(healthy.dsn, server_version=150000)[0]


def test_fused_floor_on_a_generated_database(fresh) -> None:
    dsn = fresh()
    generate(dsn, Spec(releases=2000, apps=40, tie_rate=0.2, orphan_rate=0.05))
    by_severity, reasons = tool_counts(dsn)
    with psycopg.connect(dsn) as conn:
        counted = run_fused(conn)
        classified = run_fused(conn, reasons=True)
    assert +counted.by_severity == by_severity and sum(by_severity.values()) > 0
    assert +classified.by_severity == by_severity
    assert shared_reasons(classified) == reasons


def test_explain_audit_attributes_the_statement_to_passes_and_checks(make_db) -> None:
    db = make_db(28)
    damaged_story(db.conn)
    result, plan, sizes = explain_audit(db.dsn, split=True)
    checks = {part.removeprefix("check ").split(" / ")[0] for part in result.parts if part.startswith("check ")}
    # Every check's branch is found in the plan (by the check id its output starts with).
    assert checks == set(CATALOGUE)
    assert any(part.startswith("pass ") for part in result.parts)
    # No part counted twice (a sub-plan's time is inside the node that runs it).
    assert sum(result.parts.values()) <= result.total_ms * 1.05
    # The split counts what the audit finds.
    assert Counter({key: n for key, (n, _) in sizes.items()}) == tool_counts(db.dsn)[0]
    assert "statement run plainly" in report(result, sizes)


def test_a_pass_is_charged_once_whichever_of_its_scans_runs_it() -> None:
    """A pass read twice, run by the scan walked second (a rescan spreads it over its loops): its
    time is the pass's, not also the scan's (issue 16v: the outer query was charged it again)."""
    def scan(per_loop: float, loops: int) -> dict:
        return {"Node Type": "CTE Scan", "CTE Name": "xuse", "Actual Total Time": per_loop, "Actual Loops": loops}

    plan = {"Execution Time": 101.0, "Plan": {
        "Node Type": "Append", "Actual Total Time": 101.0, "Actual Loops": 1, "Plans": [
            {"Node Type": "Aggregate", "Subplan Name": "CTE xuse", "Parent Relationship": "InitPlan",
             "Actual Total Time": 90.0, "Actual Loops": 1, "Plans": []},
            scan(1.0, 1),  # reads what the other scan ran
            scan(1.0, 100),  # ran the pass in its first loop: 90 ms of its 100
        ]}}
    result = breakdown(plan, [])
    assert result.parts == {"pass xuse": 90.0, "rendering and the outer query": 11.0}


def _story_facts(conn: psycopg.Connection, name: str) -> dict[str, object]:
    """The one-app floor's facts, computed here from ``explain``'s story and the rows' JSON parsed in
    Python: what the floor's statement must give for the app ``name``."""
    story = app_story(conn, detect(conn), name)
    versions = [r.version for r in story.releases]
    facts: dict[str, object] = {
        "releases": len(story.releases), "highest": versions[-1] if versions else None,
        "repeated": sum(1 for a, b in itertools.pairwise(versions) if a == b),
        "gaps": sum(1 for a, b in itertools.pairwise(versions) if b > a + 1),
        "newest_tied": len(story.newest_tied),
        "newest_version": story.newest.version if story.newest else None,
        "future_dated": sum(1 for r in story.releases if story.future_dated(r.created)),
    }
    for kind, rows, table in (("config", story.configs, "api_config"), ("build", story.builds, "api_build")):
        pointer = [r.config if kind == "config" else r.build for r in story.releases]
        latest = story.latest[kind]
        present = set(detect(conn).columns[table])
        columns = [c for c in fused.JSON_COLUMNS[table] if c in present]
        values = conn.execute(sql.SQL("SELECT {} FROM {} WHERE app_id = %s").format(
            sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in columns),
            sql.Identifier(table)), (story.uuid,)).fetchall()
        facts.update({
            f"{kind}_rows": len(rows),
            f"{kind}_orphans": sum(1 for u in rows.values() if u.orphan),
            f"{kind}_shared": sum(1 for u in rows.values() if len(u.versions) + u.foreign_uses > 1),
            f"{kind}_bad_json": sum(1 for row in values
                                    if any(v != "{}" and json_problem(v) is not None for v in row)),
            f"{kind}_foreign_uses": sum(u.foreign_uses for u in rows.values()),
            f"{kind}_outside_refs": sum(1 for p in pointer if p is not None and p not in rows),
            f"{kind}_latest": latest.today.uuid if latest.today else None,
            f"{kind}_latest_tied": latest.ties if latest.today else 0,
            f"{kind}_live": (story.live.config if kind == "config" else story.live.build) if story.live else None,
        })
    return facts


@pytest.mark.parametrize("json_check", ["cast", pytest.param("pg_input_is_valid", marks=pytest.mark.pg(">= 16"))])
@pytest.mark.parametrize("migration", [19, 28])
def test_the_one_app_floor_reads_what_the_story_holds(make_db, migration: int, json_check: JsonCheck) -> None:
    """Every app of the damaged story (orphans, rows other apps use, rows of other apps used, ties,
    repeated versions, gaps, future-dated releases, unparsable JSON): the floor's facts are those of
    ``explain``'s story, so the floor does the work it stands for.  ``cast`` is the floor of servers
    before 16 (an unparsable value fails the cast: that app's floor is not timed)."""
    seen: Counter = Counter()
    tied = fell_back = 0
    for story in (damaged_story, lent_rows_story):
        db = make_db(migration)
        story(db.conn)
        for (name,) in db.conn.execute("SELECT id FROM api_app ORDER BY id").fetchall():
            floor = app_floor.app_floor(db.dsn, name, repeat=1, json_check=json_check)
            expected = _story_facts(db.conn, name)
            if floor.facts["config_bad_json"] is None:  # the cast failed: not timed
                assert json_check == "cast" and not floor.seconds
                expected["config_bad_json"] = expected["build_bad_json"] = None
                fell_back += 1
            else:
                assert len(floor.seconds) == 1
            assert floor.facts == expected, name
            seen.update(k for k, v in floor.facts.items() if type(v) is int and v > 0)
            tied += floor.facts["newest_tied"] > 1
    # The comparison covers every kind of fact (not only zeros).
    for fact in ("repeated", "gaps", "future_dated", "config_orphans", "build_orphans", "config_shared",
                 "config_foreign_uses", "build_foreign_uses", "config_outside_refs", "build_outside_refs"):
        assert seen[fact] > 0, fact
    assert tied and (fell_back if json_check == "cast" else seen["config_bad_json"])


def test_the_floor_cells_say_when_the_floor_could_not_be_timed() -> None:
    timed = run.floor_cells(app_floor.AppFloor("app-1", seconds=[0.05, 0.04, 0.06]), 0.09)
    assert timed == {"app_floor": "40 ms (median 50 ms of 3)", "app_vs_floor": "2.25x"}
    untimed = run.floor_cells(app_floor.AppFloor("app-1"), 0.09)
    assert untimed["app_floor"] == untimed["app_vs_floor"]
    assert "not available" in untimed["app_floor"] and "app-1 does not parse" in untimed["app_floor"]
