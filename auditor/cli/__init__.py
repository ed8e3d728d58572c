"""The ``controller-audit`` command line (click): the top layer, on everything else.

One convention for every command (docs/cli.md, "Conventions"):

* it is registered here, explicitly, in :data:`COMMANDS` (no package scan), by the module that
  defines it: the module is imported only when the command runs (:mod:`auditor.cli.lazy_group`);
* its options are defined once, in :mod:`auditor.cli.params`; the ones that are settings reach it
  as one :class:`~auditor.core.settings.Settings` object, its first parameter;
* it returns its exit code (an ``int``, the constants of :mod:`auditor.core.errors`) and never
  calls ``sys.exit`` or ``ctx.exit``; an expected failure is raised as an
  :class:`~auditor.core.errors.AuditorError`, which :class:`AuditorGroup` turns into one line on
  stderr and its documented exit code (README "Exit codes"); a password never reaches the terminal;
* a command that connects prints, first, the database it works on, on stderr.
"""

from __future__ import annotations

from contextlib import ExitStack

from auditor.core.collector import kept_imports

# The imports below (click, psycopg, ours: ~100,000 objects that live as long as the process) are
# made with the cyclic collector paused and then frozen (at the end of this module): its collections
# rescanned them again and again, ~35 ms of CPU of every command's start.  The same helper imports a
# command's own module (auditor.cli.lazy_group).
_START_UP = ExitStack()
_START_UP.enter_context(kept_imports())

import os
import sys
from typing import Any

import click
import psycopg

from auditor import __version__
from auditor.cli.default_group import DefaultCommand
from auditor.cli.lazy_group import LazyCommand, LazyGroup
from auditor.cli.reader_gone import guard_stdout, open_closed_standard_streams
from auditor.cli.signals import interrupt_on_signals
from auditor.core.errors import EXIT_INTERRUPTED, EXIT_UNKNOWN, AuditorError, interrupt_name
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


class AuditorGroup(LazyGroup):
    """The root group: runs a command, exits with the code it returns, and maps every expected
    failure to one redacted line and its exit code."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        open_closed_standard_streams()
        guard_stdout()
        try:
            with interrupt_on_signals():
                rv = super().main(args, prog_name or "controller-audit", complete_var, standalone_mode=False, **extra)
        except click.exceptions.Abort:
            by = interrupt_name()
            click.echo("controller-audit: interrupted" + ("" if by == "Ctrl-C" else f" ({by})"), err=True)
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


def _command(name: str, summary: str) -> tuple[str, LazyCommand]:
    module = name.replace("-", "_")
    return name, LazyCommand(f"auditor.cli.commands.{module}", module, summary)


#: Every command the tool has, by name (``--help`` lists them from these summaries, the first
#: paragraph of each command's help; a command's module is imported when it runs).
COMMANDS: dict[str, LazyCommand] = dict((
    _command("info", "Show the server, the schema generation and the table sizes."),
    _command("checks", "List the checks (id, severity, title, repair); with ID, explain that check in full."),
    _command("check", "Audit the database and report the findings."),
    _command("baseline", "Accept known damage so that `check --baseline FILE` reports only new findings."),
    _command("explain", "Explain one app: releases, shared and orphan rows, latest(), findings, and the fix."),
    _command("blast-radius", "What deleting a config, build (by uuid) or app (by name) through the controller "
                             "would delete."),
    _command("plan", "Plan repairs into a file: read-only, writes nothing to the database."),
    _command("apply", "Apply a plan in one verified transaction, writing an undo file before COMMIT."),
    _command("undo", "Take an applied plan back from the undo file apply wrote."),
    _command("demo", "Build a damaged controller database and walk through audit and repair."),
))
cli.lazy = COMMANDS

main = cli

_START_UP.close()  # freezes what the module made, then resumes the collector
