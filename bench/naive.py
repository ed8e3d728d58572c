"""The naive baseline: orphan, shared and latest findings the way a quick ORM script gets them.

For comparison only.  It walks the apps one by one and, like code written against the
Django models, issues a query per app and then a query per release (``release.config``,
``release.build``), then lists the app's configs and builds and asks for
``config_set.latest()`` / ``build_set.latest()``.  The findings are counted, not reported.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

KINDS = ("orphan-config", "orphan-build", "shared-config", "shared-build",
         "latest-config-not-live", "latest-build-not-live")


@dataclass
class NaiveResult:
    """Counts of findings by kind, and what the walk covered."""

    counts: Counter = field(default_factory=Counter)
    apps: int = 0
    releases: int = 0
    queries: int = 0
    seconds: float = 0.0


def _has_failed(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM information_schema.columns"
        " WHERE table_name = 'api_release' AND column_name = 'failed'").fetchone()
    return bool(row and row[0])


def audit_app(conn: psycopg.Connection, app_uuid: str, has_failed: bool, result: NaiveResult) -> None:
    """One app, a query at a time: ``app.release_set``, each release's config and build, then latest()."""
    failed = sql.Identifier("failed") if has_failed else sql.SQL("false")
    releases = conn.execute(
        sql.SQL("SELECT uuid, version, config_id, build_id, {} FROM api_release WHERE app_id = %s ORDER BY version")
        .format(failed), (app_uuid,)).fetchall()
    result.queries += 1
    config_uses: Counter = Counter()
    build_uses: Counter = Counter()
    live = None
    for uuid, _version, config_id, build_id, is_failed in releases:
        config = conn.execute("SELECT uuid FROM api_config WHERE uuid = %s", (config_id,)).fetchone()
        result.queries += 1
        if config:
            config_uses[config[0]] += 1
        if build_id is not None:
            build = conn.execute("SELECT uuid FROM api_build WHERE uuid = %s", (build_id,)).fetchone()
            result.queries += 1
            if build:
                build_uses[build[0]] += 1
        if not is_failed:
            live = (uuid, config_id, build_id)
    for kind, table, uses, live_ref in (("config", "api_config", config_uses, live and live[1]),
                                         ("build", "api_build", build_uses, live and live[2])):
        rows = conn.execute(sql.SQL("SELECT uuid FROM {} WHERE app_id = %s").format(sql.Identifier(table)),
                            (app_uuid,)).fetchall()
        latest = conn.execute(
            sql.SQL("SELECT uuid FROM {} WHERE app_id = %s ORDER BY created DESC LIMIT 1").format(sql.Identifier(table)),
            (app_uuid,)).fetchone()
        result.queries += 2
        for (row_uuid,) in rows:
            if uses[row_uuid] == 0:
                result.counts[f"orphan-{kind}"] += 1
            elif uses[row_uuid] > 1:
                result.counts[f"shared-{kind}"] += 1
        if latest is not None and live is not None and latest[0] != live_ref:
            result.counts[f"latest-{kind}-not-live"] += 1
    result.apps += 1
    result.releases += len(releases)


def run_naive(dsn: str, sample: int | None = None, seed: int = 1) -> NaiveResult:
    """Walk every app (or a seeded random ``sample`` of them) and count the findings."""
    result = NaiveResult()
    with psycopg.connect(dsn, autocommit=True) as conn:
        has_failed = _has_failed(conn)
        began = time.perf_counter()
        apps = [r[0] for r in conn.execute("SELECT uuid FROM api_app ORDER BY id").fetchall()]
        result.queries += 1
        if sample is not None and sample < len(apps):
            apps = random.Random(seed).sample(apps, sample)
        for app_uuid in apps:
            audit_app(conn, app_uuid, has_failed, result)
        result.seconds = time.perf_counter() - began
    return result
