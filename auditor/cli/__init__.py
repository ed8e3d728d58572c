"""The ``controller-audit`` command line (click): the top layer, on everything else.

One convention for every command (docs/cli.md, "Conventions"):

* it is registered here, explicitly, in :data:`COMMANDS` (no package scan);
* its options are defined once, in :mod:`auditor.cli.params`; the ones that are settings reach it
  as one :class:`~auditor.core.settings.Settings` object, its first parameter;
* it returns its exit code (an ``int``, the constants of :mod:`auditor.core.errors`) and never
  calls ``sys.exit`` or ``ctx.exit``; an expected failure is raised as an
  :class:`~auditor.core.errors.AuditorError`, which :class:`AuditorGroup` turns into one line on
  stderr and its documented exit code (README "Exit codes"); a password never reaches the terminal;
* a command that connects prints, first, the database it works on, on stderr.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
import psycopg

from auditor import __version__
from auditor.cli.commands import apply, baseline, blast_radius, check, checks, demo, explain, info, plan, undo
from auditor.cli.default_group import DefaultCommand
from auditor.core.errors import EXIT_INTERRUPTED, EXIT_UNKNOWN, AuditorError
from auditor.core.messages import error_line, failure_line
from auditor.core.text import escape_block

_DEBUG_ENV = "CONTROLLER_AUDIT_DEBUG"


def _show_click_error(exc: click.ClickException) -> None:
    """One line for a bad option or argument (where to find help included); click's own
    display for the rest (help for a bare group).  Control characters are shown."""
    if isinstance(exc, click.UsageError) and not isinstance(exc, click.exceptions.NoArgsIsHelpError):
        ctx = exc.ctx
        if ctx is not None and isinstance(ctx.command, DefaultCommand) and ctx.parent is not None:
            ctx = ctx.parent  # `plan --grace nan`: the help to read is `plan --help`, not its hidden default's
        where = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        message = exc.format_message()
        if "'-h'" in message:
            message = message.rstrip(".") + ": -h is the database host, as in psql; help is --help"
        click.echo(error_line(f"bad usage: {message}{where}"), err=True)
        return
    original = exc.format_message
    exc.format_message = lambda: escape_block(original())  # type: ignore[method-assign]
    exc.show()


class AuditorGroup(click.Group):
    """The root group: runs a command, exits with the code it returns, and maps every expected
    failure to one redacted line and its exit code."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            rv = super().main(args, prog_name or "controller-audit", complete_var, standalone_mode=False, **extra)
        except click.exceptions.Abort:
            click.echo("controller-audit: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except click.UsageError as exc:
            _show_click_error(exc)
            sys.exit(EXIT_UNKNOWN)
        except click.ClickException as exc:
            _show_click_error(exc)
            sys.exit(exc.exit_code)
        except (AuditorError, psycopg.Error, OSError) as exc:
            click.echo(failure_line(exc), err=True)
            sys.exit(exc.exit_code if isinstance(exc, AuditorError) else EXIT_UNKNOWN)
        except Exception as exc:
            if os.environ.get(_DEBUG_ENV):
                raise
            click.echo(
                error_line(f"internal error: {type(exc).__name__}: {exc} (set {_DEBUG_ENV}=1 for a traceback)"),
                err=True,
            )
            sys.exit(EXIT_UNKNOWN)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=AuditorGroup, context_settings={"help_option_names": ["--help"]})
@click.version_option(__version__, prog_name="controller-audit")
def cli() -> None:
    """Audit and repair the database of the Deis / Hephy Workflow controller.

    The target database is chosen by --dsn, else the config file's dsn_env or dsn, else
    DATABASE_URL, else the controller's DEIS_DATABASE_* variables, else libpq's PG* variables
    and ~/.pgpass; psql's -h HOST, -p PORT, -U USER and -d DBNAME replace their part of it
    (help is --help).  Every other setting: the command line, else its CONTROLLER_AUDIT_*
    variable, else the config file, else its default.
    """


#: Every command the tool has (``--help`` lists them by name).
COMMANDS: tuple[click.Command, ...] = (
    info.info, checks.checks, check.check, baseline.baseline, explain.explain, blast_radius.blast_radius,
    plan.plan, apply.apply, undo.undo, demo.demo,
)
for _command in COMMANDS:
    cli.add_command(_command)

main = cli
