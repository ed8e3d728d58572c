"""A synthetic controller database at production scale, seeded and reproducible.

Fills an empty database with the controller schema of one generation
(:func:`auditor.testbed.schema.schema_sql`) and N apps holding M releases in total, streamed
through ``COPY``.  The shape follows the controller's own writes
(``../shared/controller-schema.md`` sections 4 and 5):

* release counts per app are Pareto-distributed: most apps small, a long tail with thousands;
* v1 has a config and no build; a push makes a build and shares the current config, a
  ``config:set`` makes a config and shares the current build, a rollback shares an older
  release's config and build (never v1, never a failed release);
* damage at configurable rates: orphan configs/builds (a failed deploy of the old era deleted
  its release; a 409 or an early error today), failed releases keeping their rows (0020+),
  and ``created`` ties at an app's maximum config/build.

Every app also gets the same reference app ``bench-ref`` (same history at every size), so
per-app timings can be compared across database sizes.  The big tables are loaded without
their indexes and constraints, which are then rebuilt exactly as the schema defines them
(read back from ``pg_constraint`` / ``pg_index``), and the tables are vacuumed and analysed.

Run: ``python -m bench.generate --dsn DSN --releases 1m --apps 10k [--migration 28] [--seed 1]``.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone

import psycopg
from psycopg import sql

from auditor.core.detect import Generation, detect
from auditor.testbed.schema import NEWEST, schema_sql

REFERENCE_APP = "bench-ref"
#: Tables loaded with COPY after their indexes and constraints are dropped.
BULK_TABLES = ("api_config", "api_build", "api_release")
_EPOCH = datetime(2015, 1, 1, tzinfo=timezone.utc)
_DAY_US = 86_400_000_000
_YEAR_US = 365 * _DAY_US
_FLUSH_LINES = 20_000
_NULL = "\\N"


@dataclass(frozen=True)
class Spec:
    """What to generate.  Rates are probabilities per release (``tie_rate``: per app)."""

    releases: int
    apps: int
    migration: int = NEWEST
    seed: int = 1
    orphan_rate: float = 0.02  # an orphan config/build left before a release (failed deploy, 409)
    failed_rate: float = 0.03  # a failed deploy keeping its release (0020+ only)
    rollback_rate: float = 0.05  # a rollback sharing an older release's config and build
    tie_rate: float = 0.01  # the app's newest config/build ties in ``created`` with the one before
    push_share: float = 0.5  # of the non-rollback operations, the share that are pushes
    pareto_alpha: float = 1.16  # the 80/20 rule
    reference_releases: int = 100

    def undamaged(self) -> Spec:
        """The same database without damage (sharing and rollbacks stay: they are normal)."""
        return replace(self, orphan_rate=0.0, failed_rate=0.0, tie_rate=0.0)


@dataclass
class Stats:
    """What was generated."""

    apps: int = 0
    releases: int = 0
    configs: int = 0
    builds: int = 0
    orphan_configs: int = 0
    orphan_builds: int = 0
    failed_releases: int = 0
    rollbacks: int = 0
    tied_apps: int = 0
    largest_app: str = ""
    largest_app_releases: int = 0
    reference_app: str = REFERENCE_APP
    seconds: float = 0.0
    by_app: dict[str, int] = field(default_factory=dict, repr=False)

    def summary(self) -> dict[str, object]:
        """The counts, without the per-app table."""
        out = asdict(self)
        out.pop("by_app")
        return out


def parse_count(text: str) -> int:
    """``500``, ``10k``, ``1m`` or ``1.5M`` as an integer."""
    text = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    number = text[:-1] if scale > 1 else text
    return int(float(number) * scale)


# -- shapes -----------------------------------------------------------------------------


def allocate(total: int, apps: int, rng: random.Random, alpha: float) -> list[int]:
    """``apps`` Pareto-distributed release counts, each at least 1, summing to ``total``."""
    if apps <= 0:
        return []
    if total < apps:
        raise ValueError(f"{total} releases cannot give {apps} apps a release each")
    weights = sorted((rng.paretovariate(alpha) for _ in range(apps)), reverse=True)
    cap = max(min(total // 10, 10_000), -(-total // apps) * 2)
    counts: list[int] = []
    left, weight_left = total, sum(weights)
    for i, w in enumerate(weights):
        others = apps - i - 1
        share = round(left * w / weight_left) if others else left
        n = max(1, min(cap, share, left - others))
        counts.append(n)
        left -= n
        weight_left -= w
    rng.shuffle(counts)
    return counts


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


_DAYS: dict[int, str] = {}


def _ts(us: int) -> str:
    """COPY text for the timestamptz ``_EPOCH + us`` microseconds (UTC)."""
    day, rest = divmod(us, _DAY_US)
    date = _DAYS.get(day)
    if date is None:
        date = _DAYS[day] = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")
    seconds, micro = divmod(rest, 1_000_000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{date} {hours:02d}:{minutes:02d}:{seconds:02d}.{micro:06d}+00"


class _Sink:
    """COPY text lines for one table, sent in chunks (content never holds tabs or backslashes)."""

    def __init__(self, copy: psycopg.Copy | None) -> None:
        self.copy = copy
        self.lines: list[str] = []
        self.rows = 0

    def add(self, line: str) -> None:
        self.lines.append(line)
        self.rows += 1
        if len(self.lines) >= _FLUSH_LINES:
            self.flush()

    def flush(self) -> None:
        if self.lines and self.copy is not None:
            self.copy.write("\n".join(self.lines) + "\n")
        self.lines.clear()


class _AppWriter:
    """Writes one app's history as the controller would, into the three sinks."""

    def __init__(self, gen: Generation, spec: Spec, sinks: dict[str, _Sink], stats: Stats) -> None:
        self.spec = spec
        self.sinks = sinks
        self.stats = stats
        self.has_failed = gen.has_failed
        self.has_exception = gen.has_exception
        extra = [c for c in gen.columns["api_config"]
                 if c not in ("uuid", "created", "updated", "values", "app_id", "owner_id")]
        self.config_tail = "\t{}" * len(extra)

    def write(self, rng: random.Random, app: str, name: str, owner: tuple[int, str], releases: int,
              start: int, span: int) -> None:
        spec, stats = self.spec, self.stats
        owner_id, owner_name = owner
        mean_step = max(span // max(releases, 1), 10_000)
        t = start
        history: list[tuple[str, str | None, bool]] = []  # (config, build, failed) by version - 1
        ok_versions: list[int] = []
        newest = {"config": 0, "build": 0}
        tie = rng.random() < spec.tie_rate

        def step() -> int:
            return 2_000 + int(rng.expovariate(1.0) * mean_step)

        def config(at: int) -> str:
            uid = _uuid(rng)
            self.sinks["api_config"].add(
                f'{uid}\t{_ts(at)}\t{_ts(at)}\t{{"APP_ENV": "production", "REVISION": "{rng.getrandbits(20)}"}}'
                f"\t{app}\t{owner_id}{self.config_tail}")
            newest["config"] = max(newest["config"], at)
            stats.configs += 1
            return uid

        def build(at: int) -> str:
            uid = _uuid(rng)
            sha = f"{rng.getrandbits(160):040x}"
            self.sinks["api_build"].add(
                f"{uid}\t{_ts(at)}\t{_ts(at)}\tregistry.local/{name}:git-{sha[:8]}\t{sha}"
                f'\t{{"web": "gunicorn app:app", "worker": "celery worker"}}\t\t{app}\t{owner_id}')
            newest["build"] = max(newest["build"], at)
            stats.builds += 1
            return uid

        def release(at: int, cfg: str, bld: str | None, summary: str, failed: bool) -> None:
            version = len(history) + 1
            line = (f"{_uuid(rng)}\t{_ts(at)}\t{_ts(at)}\t{version}\t{owner_name} {summary}\t{app}"
                    f"\t{bld or _NULL}\t{cfg}\t{owner_id}")
            if self.has_failed:
                line += "\tt" if failed else "\tf"
            if self.has_exception:
                line += "\tdeploy failed: timed out waiting for pods" if failed else "\t\\N"
            self.sinks["api_release"].add(line)
            history.append((cfg, bld, failed))
            if failed:
                stats.failed_releases += 1
            else:
                ok_versions.append(version)
            stats.releases += 1

        def orphan(at: int) -> None:
            if rng.random() < 0.5:
                config(at)
                stats.orphan_configs += 1
            else:
                build(at)
                stats.orphan_builds += 1

        cur_config = config(t)
        cur_build: str | None = None
        release(t + 1_000, cur_config, None, "created initial release", False)
        while len(history) < releases:
            t += step()
            if rng.random() < spec.orphan_rate:
                orphan(t)
                t += step()
            last = len(history) + 1 == releases
            failed = self.has_failed and rng.random() < spec.failed_rate
            tied = False
            if len(ok_versions) > 1 and not (last and tie) and rng.random() < spec.rollback_rate:
                target = ok_versions[rng.randrange(1, len(ok_versions))]  # never v1 (ok_versions[0])
                cfg, bld, _ = history[target - 1]
                release(t, cfg, bld, f"rolled back to v{target}", failed)
                stats.rollbacks += 1
            elif rng.random() < spec.push_share:
                tied = last and tie and newest["build"] > 0
                bld = build(newest["build"] if tied else t)
                release(t + 1_000, cur_config, bld, f"deployed registry.local/{name}", failed)
                cfg = cur_config
            else:
                tied = last and tie
                cfg = config(newest["config"] if tied else t)
                bld = cur_build
                release(t + 1_000, cfg, bld, "added REVISION", failed)
            if not failed:
                cur_config, cur_build = history[-1][0], history[-1][1]
            if tied:
                stats.tied_apps += 1
        if not tie and rng.random() < spec.orphan_rate:
            orphan(t + step())
        stats.apps += 1
        stats.by_app[name] = releases
        if releases > stats.largest_app_releases:
            stats.largest_app, stats.largest_app_releases = name, releases


# -- loading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ddl:
    """Constraints and indexes of the bulk tables, as the catalogue defines them."""

    drops: tuple[sql.Composable, ...]
    creates: tuple[sql.Composable, ...]


def _bulk_ddl(conn: psycopg.Connection) -> _Ddl:
    constraints = conn.execute(
        """
        SELECT c.conname, t.relname, pg_get_constraintdef(c.oid), c.contype
        FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
        WHERE c.contype IN ('p', 'u', 'f')
          AND (c.conrelid = ANY(%(t)s::regclass[]) OR c.confrelid = ANY(%(t)s::regclass[]))
        ORDER BY c.contype = 'f', t.relname, c.conname""",
        {"t": list(BULK_TABLES)},
    ).fetchall()
    indexes = conn.execute(
        """
        SELECT x.relname, pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
        WHERE i.indrelid = ANY(%s::regclass[])
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        ORDER BY x.relname""",
        (list(BULK_TABLES),),
    ).fetchall()
    keys = [c for c in constraints if c[3] != "f"]
    fks = [c for c in constraints if c[3] == "f"]
    drops = [sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(t), sql.Identifier(n))
             for n, t, _, _ in fks + keys]
    drops += [sql.SQL("DROP INDEX {}").format(sql.Identifier(n)) for n, _ in indexes]
    # Definitions are read back from the server's own catalogue, never from input.
    creates = [sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(sql.Identifier(t), sql.Identifier(n),
                                                                      sql.SQL(d)) for n, t, d, _ in keys]
    creates += [sql.SQL(d) for _, d in indexes]
    creates += [sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(sql.Identifier(t), sql.Identifier(n),
                                                                       sql.SQL(d)) for n, t, d, _ in fks]
    return _Ddl(tuple(drops), tuple(creates))


def _columns(gen: Generation, table: str, leading: tuple[str, ...]) -> sql.Composed:
    rest = [c for c in gen.columns[table] if c not in leading]
    return sql.SQL(", ").join(sql.Identifier(c) for c in (*leading, *rest))


_RELEASE_COLUMNS = ("uuid", "created", "updated", "version", "summary", "app_id", "build_id", "config_id",
                    "owner_id")
_CONFIG_COLUMNS = ("uuid", "created", "updated", "values", "app_id", "owner_id")
_BUILD_COLUMNS = ("uuid", "created", "updated", "image", "sha", "procfile", "dockerfile", "app_id", "owner_id")


def _copy_statement(gen: Generation, table: str) -> sql.Composed:
    leading = {"api_config": _CONFIG_COLUMNS, "api_build": _BUILD_COLUMNS, "api_release": _RELEASE_COLUMNS}[table]
    return sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), _columns(gen, table, leading))


def _plan(spec: Spec) -> tuple[random.Random, list[tuple[str, int]], list[tuple[int, str]]]:
    """The seeded random source, (app name, releases) per app, and the owners."""
    if spec.apps < 1 or spec.releases < spec.apps:
        raise ValueError("need at least one app and at least one release per app")
    rng = random.Random(spec.seed)
    ref = min(spec.reference_releases, spec.releases // 2) if spec.apps > 1 else spec.releases
    ref = max(ref, 1)
    others = allocate(spec.releases - ref, spec.apps - 1, rng, spec.pareto_alpha)
    apps = [(REFERENCE_APP, ref)] + [(f"app-{i:05d}", n) for i, n in enumerate(others, 1)]
    owners = [(i, f"user{i:04d}") for i in range(1, max(1, spec.apps // 20) + 1)]
    return rng, apps, owners


def _write_users_and_apps(conn: psycopg.Connection, gen: Generation, rng: random.Random,
                          apps: list[tuple[str, int]], owners: list[tuple[int, str]]) -> list[tuple]:
    joined = _ts(0)
    with conn.cursor().copy(
        "COPY auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff,"
        " is_active, date_joined) FROM STDIN"
    ) as copy:
        for uid, username in owners:
            copy.write_row((uid, "!", False, username, "", "", f"{username}@example.com", False, True, joined))
    conn.execute("SELECT setval(pg_get_serial_sequence('auth_user', 'id'), %s)", (len(owners),))
    layout: list[tuple] = []
    app_columns = _columns(gen, "api_app", ("uuid", "created", "updated", "id", "owner_id"))
    extra = len(gen.columns["api_app"]) - 5
    with conn.cursor().copy(sql.SQL("COPY api_app ({}) FROM STDIN").format(app_columns)) as copy:
        for i, (name, releases) in enumerate(apps):
            app_rng = random.Random(f"{REFERENCE_APP}-history") if i == 0 else rng
            app_uuid = _uuid(app_rng)
            owner = owners[0] if i == 0 else owners[rng.randrange(len(owners))]
            start = app_rng.randrange(_YEAR_US)
            span = app_rng.randrange(_YEAR_US // 2, 6 * _YEAR_US)
            created = _ts(start - 1_000_000)
            copy.write("\t".join((app_uuid, created, created, name, str(owner[0]), *(['{"web": 1}'] * extra))) + "\n")
            layout.append((app_rng, app_uuid, name, owner, releases, start, span))
    return layout


def generate(dsn: str, spec: Spec) -> Stats:
    """Create the schema of ``spec.migration`` in the empty database ``dsn`` and fill it."""
    began = time.perf_counter()
    stats = Stats()
    with psycopg.connect(dsn, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('api_app')").fetchone()[0] is not None:
            raise ValueError("the target database already has controller tables; give an empty database")
        conn.execute(schema_sql(spec.migration).encode())
        gen = detect(conn)
        ddl = _bulk_ddl(conn)
        for statement in ddl.drops:
            conn.execute(statement)
        rng, apps, owners = _plan(spec)
        layout = _write_users_and_apps(conn, gen, rng, apps, owners)
        with ExitStack() as stack:
            sinks: dict[str, _Sink] = {}
            for table in BULK_TABLES:
                side = stack.enter_context(psycopg.connect(dsn))
                copy = stack.enter_context(side.cursor().copy(_copy_statement(gen, table)))
                sinks[table] = _Sink(copy)
            writer = _AppWriter(gen, spec, sinks, stats)
            for app_rng, app_uuid, name, owner, releases, start, span in layout:
                writer.write(app_rng, app_uuid, name, owner, releases, start, span)
            for sink in sinks.values():
                sink.flush()
        conn.execute("SET maintenance_work_mem = '256MB'")
        for statement in ddl.creates:
            conn.execute(statement)
        for table in ("auth_user", "api_app", *BULK_TABLES):
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
    stats.seconds = time.perf_counter() - began
    return stats


def content_checksum(dsn: str) -> str:
    """A digest of every row of the controller tables, in uuid order (for reproducibility)."""
    digest = hashlib.sha256()
    with psycopg.connect(dsn) as conn:
        for table in ("api_app", *BULK_TABLES):
            row = conn.execute(
                sql.SQL("SELECT count(*), md5(string_agg(md5(t::text), '' ORDER BY t.uuid)) FROM {} t").format(
                    sql.Identifier(table))).fetchone()
            digest.update(f"{table}:{row[0]}:{row[1]};".encode())
    return digest.hexdigest()


def iter_counts(dsn: str) -> Iterator[tuple[str, int]]:
    """Row counts of the controller tables."""
    with psycopg.connect(dsn) as conn:
        for table in ("api_app", *BULK_TABLES):
            yield table, conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", required=True, help="an empty database to fill")
    parser.add_argument("--releases", default="10k")
    parser.add_argument("--apps", default=None, help="default: releases / 100")
    parser.add_argument("--migration", type=int, default=NEWEST)
    parser.add_argument("--seed", type=int, default=1)
    for name, default in (("orphan-rate", 0.02), ("failed-rate", 0.03), ("rollback-rate", 0.05),
                          ("tie-rate", 0.01)):
        parser.add_argument(f"--{name}", type=float, default=default)
    args = parser.parse_args(argv)
    releases = parse_count(args.releases)
    apps = parse_count(args.apps) if args.apps else max(1, releases // 100)
    spec = Spec(releases=releases, apps=apps, migration=args.migration, seed=args.seed,
                orphan_rate=args.orphan_rate, failed_rate=args.failed_rate,
                rollback_rate=args.rollback_rate, tie_rate=args.tie_rate)
    stats = generate(args.dsn, spec)
    for key, value in stats.summary().items():
        print(f"{key:22} {value:.1f}" if isinstance(value, float) else f"{key:22} {value}")


if __name__ == "__main__":
    main()
