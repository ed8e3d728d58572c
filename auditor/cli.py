"""The ``controller-audit`` command line (click).

Every command turns an expected failure into one line on stderr and a documented exit
code (see README "Exit codes"); a password never reaches the terminal.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
import psycopg

from auditor import __version__
from auditor.connection import Target, audit_session, redact, resolve_target
from auditor.errors import EXIT_UNKNOWN, AuditFailed, AuditorError
from auditor.options import target_options

_DEBUG_ENV = "CONTROLLER_AUDIT_DEBUG"


class AuditorGroup(click.Group):
    """A click group that maps errors to one redacted line and an exit code."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            rv = super().main(args, prog_name or "controller-audit", complete_var, standalone_mode=False, **extra)
        except click.exceptions.Abort:
            click.echo("controller-audit: interrupted", err=True)
            sys.exit(130)
        except click.UsageError as exc:
            exc.show()
            sys.exit(EXIT_UNKNOWN)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except AuditorError as exc:
            click.echo(f"controller-audit: {redact(exc.one_line())}", err=True)
            sys.exit(exc.exit_code)
        except psycopg.Error as exc:
            err = AuditFailed(redact(str(exc)))
            click.echo(f"controller-audit: {err.one_line()}", err=True)
            sys.exit(EXIT_UNKNOWN)
        except OSError as exc:
            click.echo(f"controller-audit: file error: {redact(str(exc))}", err=True)
            sys.exit(EXIT_UNKNOWN)
        except Exception as exc:
            if os.environ.get(_DEBUG_ENV):
                raise
            click.echo(
                f"controller-audit: internal error: {type(exc).__name__}: {redact(str(exc))} "
                f"(set {_DEBUG_ENV}=1 for a traceback)",
                err=True,
            )
            sys.exit(EXIT_UNKNOWN)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=AuditorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="controller-audit")
def cli() -> None:
    """Audit and repair the database of the Deis / Hephy Workflow controller.

    The target database is chosen by --dsn, else DATABASE_URL, else the controller's
    DEIS_DATABASE_* variables, else libpq's PG* variables and ~/.pgpass.
    """


def target_from(dsn: str | None) -> Target:
    """The connection target for a command's ``--dsn``."""
    return resolve_target(dsn)


@cli.command()
@target_options
def info(dsn: str | None, statement_timeout: str, lock_timeout: str) -> None:
    """Show the server, the schema generation and the table sizes."""
    from tabulate import tabulate

    from auditor.detect import detect
    from auditor.info import gather, support_lines

    target = target_from(dsn)
    with audit_session(target, statement_timeout=statement_timeout, lock_timeout=lock_timeout) as conn:
        generation = detect(conn)
        facts = gather(conn, generation)
    click.echo(f"target:          {target.describe()} (from {target.source})")
    click.echo(f"server version:  {facts.server_version}")
    for line in support_lines(facts.server_version_num):
        click.echo(line)
    click.echo(f"database:        {facts.database}")
    click.echo(f"generation:      {generation.name}")
    click.echo(f"last migration:  api {generation.migration_name}")
    click.echo(f"failed column:   {'yes' if generation.has_failed else 'no (failed deploys deleted their release)'}")
    click.echo(f"standby:         {'yes (hot standby, read-only)' if facts.in_recovery else 'no (primary)'}")
    if facts.system_identifier:
        click.echo(f"system id:       {facts.system_identifier}")
    rows = [(c.table, f"~{c.rows}" if c.estimated else c.rows) for c in facts.counts]
    click.echo()
    click.echo(tabulate(rows, headers=["table", "rows"], colalign=("left", "right")))


def _register_commands() -> None:
    """Attach the commands that live in their own modules."""
    import importlib
    import pkgutil

    import auditor.commands as commands

    for module in pkgutil.iter_modules(commands.__path__):
        if module.name.startswith("_"):
            continue
        importlib.import_module(f"auditor.commands.{module.name}").register(cli)


_register_commands()
main = cli
