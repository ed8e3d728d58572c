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
from auditor.cli.params import target_options
from auditor.core.connection import Target, audit_session, redact, resolve_target
from auditor.core.errors import EXIT_UNKNOWN, AuditFailed, AuditorError
from auditor.core.text import escape, escape_block

_DEBUG_ENV = "CONTROLLER_AUDIT_DEBUG"


#: libpq's messages for a connection string it cannot parse: they quote the string, which may
#: hold a password, so they are never printed (every connection goes through
#: :func:`auditor.core.connection.connect`, which refuses such strings first; this is the net below).
_CONNINFO_ERRORS = ("missing \"=\" after", "unterminated quoted string", "invalid percent-encoded token",
                    "unexpected spaces found", "invalid connection option", "invalid uri query parameter",
                    "key/value separator", "invalid ipv6 host address", "matching \"]\"",
                    "invalid integer value", "invalid connection string", "invalid dsn")


def error_line(message: str) -> str:
    """``controller-audit: <message>`` with passwords removed and control characters shown."""
    return f"controller-audit: {escape(redact(message))}"


def _show_click_error(exc: click.ClickException) -> None:
    """One line for a bad option or argument (where to find help included); click's own
    display for the rest (help for a bare group).  Control characters are shown."""
    if isinstance(exc, click.UsageError) and not isinstance(exc, click.exceptions.NoArgsIsHelpError):
        where = f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
        click.echo(error_line(f"bad usage: {exc.format_message()}{where}"), err=True)
        return
    original = exc.format_message
    exc.format_message = lambda: escape_block(original())  # type: ignore[method-assign]
    exc.show()


def _psycopg_error_line(exc: psycopg.Error) -> str:
    message = str(exc)
    if isinstance(exc, psycopg.ProgrammingError) and any(m in message.lower() for m in _CONNINFO_ERRORS):
        return error_line("invalid connection string: it cannot be parsed (it is not shown: it may hold a "
                          "password)")
    return error_line(AuditFailed(message).one_line())


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
            _show_click_error(exc)
            sys.exit(EXIT_UNKNOWN)
        except click.ClickException as exc:
            _show_click_error(exc)
            sys.exit(exc.exit_code)
        except AuditorError as exc:
            click.echo(error_line(exc.one_line()), err=True)
            sys.exit(exc.exit_code)
        except psycopg.Error as exc:
            click.echo(_psycopg_error_line(exc), err=True)
            sys.exit(EXIT_UNKNOWN)
        except OSError as exc:
            click.echo(error_line(f"file error: {exc}"), err=True)
            sys.exit(EXIT_UNKNOWN)
        except Exception as exc:
            if os.environ.get(_DEBUG_ENV):
                raise
            click.echo(
                error_line(f"internal error: {type(exc).__name__}: {exc} (set {_DEBUG_ENV}=1 for a traceback)"),
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

    from auditor.core.detect import detect
    from auditor.core.info import gather, support_lines

    target = target_from(dsn)
    with audit_session(target, statement_timeout=statement_timeout, lock_timeout=lock_timeout) as conn:
        generation = detect(conn)
        facts = gather(conn, generation)
    click.echo(f"target:          {escape(target.describe())} (from {target.source})")
    click.echo(f"server version:  {escape(facts.server_version)}")
    for line in support_lines(facts.server_version_num):
        click.echo(line)
    click.echo(f"database:        {escape(facts.database)}")
    click.echo(f"generation:      {generation.name}")
    click.echo(f"last migration:  api {generation.migration_name}")
    click.echo(f"failed column:   {'yes' if generation.has_failed else 'no (failed deploys deleted their release)'}")
    click.echo(f"standby:         {'yes (hot standby, read-only)' if facts.in_recovery else 'no (primary)'}")
    if facts.system_identifier:
        click.echo(f"system id:       {facts.system_identifier}")
    rows = [(escape(c.table), f"~{c.rows}" if c.estimated else c.rows) for c in facts.counts]
    click.echo()
    click.echo(tabulate(rows, headers=["table", "rows"], colalign=("left", "right")))


def _register_commands() -> None:
    """Attach the commands that live in their own modules."""
    import importlib
    import pkgutil

    import auditor.cli.commands as commands

    for module in pkgutil.iter_modules(commands.__path__):
        if module.name.startswith("_"):
            continue
        importlib.import_module(f"auditor.cli.commands.{module.name}").register(cli)


_register_commands()
main = cli
