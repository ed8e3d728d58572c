"""One run of the demo: a server (embedded, or the user's ``--dsn``), the walkthrough's database,
with ``--keep`` a damaged database to practise on, and cleaning up whatever is not kept.

Without ``--keep`` nothing but the walkthrough's small files outlives the run (the output
names them); an interrupted or failed run removes those too.  With ``--keep`` the walkthrough's
(repaired) database is dropped and a fresh copy of the whole story, damage and all, stays,
with the exact lines to use it and to remove it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg import sql

from auditor.core.connection import connect, redact, resolve_target
from auditor.demo.presenter import Presenter, StepFailed
from auditor.demo.story import OUT_OF_ORDER, write_known_damage, write_story
from auditor.demo.walkthrough import summary, walk
from auditor.testbed.schema import NEWEST, OLDEST_BUILDABLE, schema_sql

if TYPE_CHECKING:
    from auditor.testbed.server import Cluster

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


def database_dsn(admin_dsn: str, name: str) -> str:
    """``admin_dsn`` pointed at database ``name``."""
    params: dict[str, Any] = pg_conninfo.conninfo_to_dict(admin_dsn)
    params["dbname"] = name
    return pg_conninfo.make_conninfo("", **params)


def create_database(admin_dsn: str, name: str, migration: int) -> str:
    """Create database ``name`` holding the controller schema of ``migration``; returns its DSN."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = database_dsn(admin_dsn, name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(schema_sql(migration).encode())
    return dsn


def drop_database(admin_dsn: str, name: str) -> None:
    """Drop database ``name`` (its sessions ended first)."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                     "AND pid <> pg_backend_pid()", (name,))
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def invocation() -> str:
    """How the user can run this same ``controller-audit`` from their shell."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "controller-audit":
        found = shutil.which("controller-audit")
        if found is not None and Path(found).resolve() == argv0.resolve():
            return "controller-audit"
        return shlex.quote(str(argv0))
    return f"{shlex.quote(sys.executable)} -m auditor"


def stop_command(data_dir: Path, remove: list[Path]) -> str:
    """One shell line that stops the server of ``data_dir`` (a fast shutdown, waited for) and
    removes ``remove``; it works for root too (``pg_ctl`` refuses root) and after a reboot."""
    pid_file = shlex.quote(str(data_dir / "postmaster.pid"))
    paths = " ".join(shlex.quote(str(p)) for p in remove)
    return (f'kill -INT "$(head -1 {pid_file})" && while [ -e {pid_file} ]; do sleep 0.2; done; '
            f"rm -rf {paths}")


def keep_instructions(dsn: str, admin_dsn: str, name: str, stop: str | None, echo: Callable[[str], None]) -> None:
    """How to point the tool at the kept database, and how to remove it afterwards."""
    program = invocation()
    shown = redact(dsn)
    echo("")
    echo(click.style(f"--keep: database {name} keeps the whole story, damage and all, for you to practise on:",
                     bold=True))
    echo(f"  export DATABASE_URL={shlex.quote(shown)}")
    echo(f"  {program} check   # then: {program} explain {OUT_OF_ORDER}, plan, apply, undo")
    if shown != dsn:
        echo("  (put your password where *** stands)")
    if stop is not None:
        echo("When done, stop the server and remove its files and the walkthrough's:")
        echo(f"  {stop}")
    else:
        echo("When done, drop the database (with the --dsn you gave):")
        echo(f"  psql {shlex.quote(redact(admin_dsn))} -c {shlex.quote(f'DROP DATABASE {name}')}")


def run_demo(dsn: str | None, migration: int, keep: bool, echo: Callable[[str], None] = click.echo) -> int:
    """Start (or use) a server, write the story, walk through it, keep or clean up."""
    from auditor.testbed.server import start_embedded

    if dsn is not None:  # a clear, redacted one-line error before anything starts
        connect(resolve_target(dsn), autocommit=True).close()
    workdir = Path(tempfile.mkdtemp(prefix="controller-audit-demo-"))
    server = None
    admin_dsn = dsn
    stamp = f"controller_demo_{int(time.time())}_{os.getpid()}"
    created: list[str] = []
    outcome = "interrupted"
    try:
        if admin_dsn is None:
            echo(click.style("Starting an embedded PostgreSQL (from a pip wheel) in a temporary directory...",
                             dim=True))
            server = start_embedded(keep=keep)
            admin_dsn = server.admin_dsn
        created.append(stamp)
        _walk_through(create_database(admin_dsn, stamp, migration), workdir, keep, echo)
        if keep:
            created.append(f"{stamp}_damaged")
            _keep_a_damaged_copy(server, admin_dsn, created[-1], migration, workdir, echo)
        outcome = "done"
        return 0
    except StepFailed:
        outcome = "failed"
        raise
    finally:
        _clean_up(server, admin_dsn, created[:1] if outcome == "done" else created, workdir, outcome)


def _walk_through(dsn: str, workdir: Path, keep: bool, echo: Callable[[str], None]) -> None:
    """Write the story's first act into ``dsn``, introduce it, walk through it, sum it up."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        story = write_known_damage(conn)
        echo(f"A {story.ctl.generation.label} controller database: 7 apps and the damage real ones carry. "
             "Each step runs the real command line.")
        echo(f"Whole outputs and files go to {workdir}.")
        width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
        if width is not None:
            echo(click.style(f"(Lines wider than this terminal's {width} columns are cut here, never in the files.)",
                             dim=True))
        steps = Presenter(dsn, workdir, echo, width)
        walk(steps, story)
    summary(steps, invocation(), keep)


def _keep_a_damaged_copy(server: Cluster | None, admin_dsn: str, name: str, migration: int, workdir: Path,
                         echo: Callable[[str], None]) -> None:
    """Write the whole story into a new database ``name`` and say how to use and remove it."""
    dsn = create_database(admin_dsn, name, migration)
    with psycopg.connect(dsn, autocommit=True) as conn:
        write_story(conn)
    stop = None
    if server is not None:
        sockets = [server.socket_dir] if server.socket_dir != server.base else []
        stop = stop_command(server.data_dir, [server.base, *sockets, workdir])
    keep_instructions(dsn, admin_dsn, name, stop, echo)


def _clean_up(server: Cluster | None, admin_dsn: str | None, drop: list[str], workdir: Path, outcome: str) -> None:
    """Stop what is not kept: the server (unless kept after a run that was done), else drop the
    databases in ``drop``; remove the working directory unless the run was done or a step failed."""
    if server is not None and (outcome != "done" or not server.keep):
        server.keep = False
        server.close()
    elif admin_dsn is not None:
        for name in drop:
            drop_database(admin_dsn, name)
    if outcome == "interrupted":
        shutil.rmtree(workdir, ignore_errors=True)
