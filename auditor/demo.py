"""The demo: a controller database with a realistic story, audited and repaired for real.

Every step runs the real ``controller-audit`` command line in a subprocess, exactly as a
user would type it; nothing here takes a separate code path.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import click
import psycopg

from auditor.core.connection import connect, redact, resolve_target
from auditor.testbed.builder import Controller
from auditor.testbed.schema import NEWEST, OLDEST_BUILDABLE, schema_sql

GENERATIONS = {"hephy": 28, "deis": 23, "deis-old": 19}


def parse_generation(value: str) -> int:
    """``hephy``, ``deis``, ``deis-old`` or an api migration number 19..28."""
    if value in GENERATIONS:
        return GENERATIONS[value]
    if value.isdigit() and OLDEST_BUILDABLE <= int(value) <= NEWEST:
        return int(value)
    raise click.BadParameter(
        f"choose one of {', '.join(GENERATIONS)} or a migration number {OLDEST_BUILDABLE}..{NEWEST}"
    )


def write_story(conn: psycopg.Connection) -> dict[str, str]:
    """Healthy apps, a poisoned app, a rolled-back app, widely shared configs, an orphan build,
    and an app no deploy gets through (its releases out of order).

    Returns the names of the apps the walkthrough looks at.
    """
    ctl = Controller(conn)
    for name in ("billing", "frontend"):
        app = ctl.create_app(name, owner="alice")
        app.push(image=f"registry.local/{name}:1.0")
        app.config_set(LOG_LEVEL="info")
        app.push(image=f"registry.local/{name}:1.1")
    worker = ctl.create_app("worker", owner="bob")
    worker.config_set(QUEUE_URL="amqp://queue:5672", CONCURRENCY="4")
    for n in range(1, 9):
        worker.push(image=f"registry.local/worker:{n}.0")
    shop = ctl.create_app("shop", owner="carol")
    shop.push(image="registry.local/shop:1.0")
    shop.config_set(DATABASE_URL="postgres://shop-db/shop", WORKERS="4")
    shop.push(image="registry.local/shop:1.1")
    # A config:set whose deploy failed: the new config outlives its release (old Deis) or
    # stays with a failed release (Deis 2.7+, Hephy). Either way config_set.latest() returns it,
    # and every controller restart re-saves it (boot's load_db_state_to_k8s).
    shop.failed_config_set(WORKERS="64", DEBUG="true")
    api = ctl.create_app("api", owner="dave")
    api.push(image="registry.local/api:2.0")
    api.config_set(FEATURE_FLAGS="search")
    api.push(image="registry.local/api:2.1-broken")
    api.rollback(3)
    frontend_orphan = ctl.create_app("checkout", owner="alice")
    frontend_orphan.push(image="registry.local/checkout:1.0")
    frontend_orphan.orphan_build(image="registry.local/checkout:1.1-never-released")
    search = ctl.create_app("search", owner="erin")
    search.push(image="registry.local/search:1.0")
    search.config_set(SHARDS="3")
    # A controller replica whose clock ran 10 minutes behind handled this push: v4 is dated
    # before v3, so the controller (newest by created + 1) numbers every next release v4 again,
    # and each config:set, push and rollback of search fails on UNIQUE(app_id, version).
    search.push(image="registry.local/search:1.1", at=ctl.clock - timedelta(minutes=10))
    row = conn.execute(
        "SELECT config_id::text FROM api_release r JOIN api_app a ON a.uuid = r.app_id "
        "WHERE a.id = 'api' ORDER BY version DESC LIMIT 1"
    ).fetchone()
    assert row is not None
    return {"poisoned": "shop", "rolled_back": "api", "shared_config": row[0], "out_of_order": "search"}


@dataclass
class Walkthrough:
    """Runs the real commands against ``dsn`` and narrates each step."""

    dsn: str
    workdir: Path
    echo: Callable[[str], None] = click.echo

    def run(self, narration: str, *args: str, expect: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
        """Narrate, show the command line, run it, show its output; check its exit code."""
        self.echo("")
        self.echo(click.style(f"# {narration}", fg="cyan", bold=True))
        self.echo(click.style("$ controller-audit " + " ".join(shlex.quote(a) for a in args), bold=True))
        env = dict(os.environ, DATABASE_URL=self.dsn, COLUMNS="160")
        env.pop("CONTROLLER_AUDIT_DEBUG", None)
        result = subprocess.run(
            [sys.executable, "-m", "auditor", *args],
            cwd=self.workdir, env=env, capture_output=True, text=True, check=False,
        )
        for stream in (result.stdout, result.stderr):
            if stream.strip():
                self.echo(redact(stream.rstrip()))
        self.echo(click.style(f"(exit code {result.returncode})", dim=True))
        if result.returncode not in expect:
            raise click.ClickException(
                f"demo step failed: controller-audit {' '.join(args)} exited {result.returncode}"
            )
        return result


def walk(dsn: str, workdir: Path, names: dict[str, str], echo: Callable[[str], None] = click.echo) -> int:
    """The whole workflow: check, explain, blast-radius, plan, plan sql, rehearse, apply, check."""
    steps = Walkthrough(dsn, workdir, echo)
    poisoned, rolled_back = names["poisoned"], names["rolled_back"]
    steps.run("Audit the whole database: what damage is there?", "check", "--fail-on", "never")
    steps.run(f"3 a.m.: every deploy of {names['out_of_order']!r} fails with a duplicate key. Why?",
              "explain", names["out_of_order"])
    steps.run(f"A deploy of {poisoned!r} failed yesterday: what did it leave behind, and what does it break?",
              "explain", poisoned)
    steps.run(f"The app {rolled_back!r} was rolled back to v3: its live release reuses v3's config. "
              "What would deleting that config through the controller take with it?",
              "blast-radius", "config", names["shared_config"])
    plan = "repair.plan.json"
    steps.run("Plan the repairs: prune orphans, put the releases back in order (release-order, opt-in: it can "
              "change which release is live), give each release its own rows, restore latest(). Nothing is "
              "written yet.", "plan", "-o", plan, "--repair", "prune-orphans", "--repair", "release-order",
              "--repair", "unshare", "--repair", "restore-latest", "--detailed-exitcode", expect=(2,))
    steps.run("Review the plan as a person would.", "plan", "show", plan)
    steps.run("The same plan as a SQL script for psql -v ON_ERROR_STOP=1 -f, for those who prefer to run it "
              "themselves.", "plan", "sql", plan)
    steps.run("Rehearse: apply in one transaction, verify every invariant, then roll back.",
              "apply", plan, "--rehearse", "--yes")
    steps.run("Apply for real: one verified transaction, with an undo file written first.",
              "apply", plan, "--yes")
    final = steps.run("Audit again: the database is a clean ledger now.", "check", "--fail-on", "info")
    steps.run("And a new plan is empty.", "plan", "-o", "second.plan.json", "--repair", "release-order",
              "--repair", "prune-orphans", "--repair", "unshare", "--repair", "restore-latest",
              "--detailed-exitcode")
    echo("")
    echo(click.style("Demo finished: every release owns its config and build; latest() returns the live "
                     "release's rows; every app's newest release is its highest version, so its next deploy "
                     "works; check exits 0.", fg="green", bold=True))
    return final.returncode


def create_demo_database(admin_dsn: str, migration: int) -> tuple[str, str]:
    """Create a fresh database holding the controller schema; returns (name, dsn)."""
    from psycopg import conninfo as pg_conninfo
    from psycopg import sql

    name = f"controller_demo_{int(time.time())}_{os.getpid()}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = pg_conninfo.conninfo_to_dict(admin_dsn)
    params["dbname"] = name
    dsn = pg_conninfo.make_conninfo(**params)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(schema_sql(migration).encode())
    return name, dsn


def drop_database(admin_dsn: str, name: str) -> None:
    """Drop the demo database (used with --dsn, unless --keep)."""
    from psycopg import sql

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                     "AND pid <> pg_backend_pid()", (name,))
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def run_demo(dsn: str | None, migration: int, keep: bool, echo: Callable[[str], None] = click.echo) -> int:
    """Start (or use) a server, write the story, walk through the workflow, clean up."""
    from auditor.testbed.server import start_embedded

    if dsn is not None:  # a clear, redacted one-line error before anything starts
        connect(resolve_target(dsn), autocommit=True).close()
    server = None
    workdir = Path(tempfile.mkdtemp(prefix="controller-audit-demo-"))
    name = None
    admin_dsn = dsn
    try:
        if admin_dsn is None:
            echo(click.style("Starting an embedded PostgreSQL (from a pip wheel) in a temporary directory...",
                             dim=True))
            server = start_embedded(keep=keep)
            admin_dsn = server.admin_dsn
        name, demo_dsn = create_demo_database(admin_dsn, migration)
        with psycopg.connect(demo_dsn, autocommit=True) as conn:
            names = write_story(conn)
        echo(click.style(f"Created a controller database (api migration {migration:04d}) with seven apps: "
                         "healthy ones, a poisoned one, a rolled-back one, widely shared configs, an "
                         "orphan build and one whose releases are out of order.", dim=True))
        code = walk(demo_dsn, workdir, names, echo)
        if keep:
            echo("")
            echo("--keep: the database stays up. Explore it with: "
                 f"export DATABASE_URL={shlex.quote(redact(demo_dsn))}")
            echo(f"         files of the walkthrough (plan, undo file): {workdir}")
            if server is not None and server.data_dir is not None:
                pid_file = server.data_dir / "postmaster.pid"
                echo(f"         stop the server: kill -INT $(head -1 {pid_file}) && rm -rf {server.data_dir.parent}")
        return code
    finally:
        if not keep:
            if server is not None:
                server.close()
            elif name is not None and admin_dsn is not None:
                drop_database(admin_dsn, name)
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
