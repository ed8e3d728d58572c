"""The benchmark's generator and harness, end to end at a CI size (no timing assertions)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import psycopg
import pytest

from bench import run
from bench.generate import REFERENCE_APP, Spec, content_checksum, generate, iter_counts
from bench.naive import run_naive
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
                     "--repeat", "1", "--per-check"]) == 0
    text = output.read_text()
    assert text in capsys.readouterr().out
    lines = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if line.startswith("| ")}
    for _, label, _ in run.ROWS:
        assert label in lines, label
        assert len(lines[label].split(" | ")) == 3, lines[label]
    findings = lines["Findings of the full audit"].split(" | ")[2].strip(" |")
    assert int(findings.replace(",", "")) > 0
    assert "not available" not in lines[run.ROWS[7][1]]  # the full audit through the console script
    assert "orphan-config" in lines
    with psycopg.connect(pg_server.admin_dsn) as conn:
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE '%%clone%%'").fetchone()[0]
    assert left == 0
