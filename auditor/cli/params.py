"""Every option of every command, defined once; and :func:`settings`, which turns the options that
are settings into the one :class:`~auditor.core.settings.Settings` object a command receives.

A setting's option has no click default: a value is "given" only when it is on the command line,
and :func:`auditor.core.settings.resolve` fills the rest from the environment, the config file
and the defaults.  Every number is validated by the core's parsers before anything connects
(``controller-audit: bad usage: Invalid value for '--grace': ...``, exit 3).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import click

from auditor.core.catalogue import REPAIRS
from auditor.core.errors import AuditorError
from auditor.core.settings import OPTION_BY_NAME, resolve
from auditor.core.suggest import did_you_mean
from auditor.core.text import escape
from auditor.core.values import (
    CONNECTIONS,
    DEFAULT_LIMIT,
    FAIL_ON,
    FORMATS,
    MIN_SEVERITY,
    parse_duration,
    parse_seconds,
    parse_wait,
)
from checks import CATALOGUE

#: ``blast-radius --limit``: at most this many releases listed (the counts are always complete).
MAX_LIMIT = 1_000_000


class Validated(click.ParamType):
    """A value checked by one of the core's parsers (:mod:`auditor.core.values`)."""

    def __init__(self, name: str, parse: Callable[[Any], Any]) -> None:
        self.name = name
        self.parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return self.parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Choice(click.Choice):
    """click's Choice, offering the closest choices for a near miss (``--repair unshar``)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as exc:
            hint = did_you_mean(str(value), [str(c) for c in self.choices])
            if not hint:
                raise
            self.fail(f"{exc.message.rstrip('.')}; {hint}", param, ctx)


SECONDS = Validated("seconds", parse_seconds)
DURATION = Validated("duration", parse_duration)
WAIT = Validated("duration", parse_wait)


def _layered(name: str, text: str) -> str:
    """``text`` with where else the setting comes from: its variable, the config file, its default."""
    option = OPTION_BY_NAME[name]
    key = f", config file {option.key}" if option.key else ""
    default = f"{option.default:g}s" if name == "commit_timeout" else option.default
    return f"{text} [env {option.env}{key}; default: {default}]"


#: The options that are settings, by the Settings field (or ``resolve`` key) they fill.
SETTING_OPTIONS: dict[str, Callable[..., Callable]] = {
    "dsn": lambda help=None: click.option(
        "--dsn", metavar="DSN", default=None,
        help=help or "libpq connection string or postgresql:// URL [default: the config file's dsn_env or dsn, "
                     "else DATABASE_URL, DEIS_DATABASE_*, then PG* variables and ~/.pgpass]."),
    "host": lambda help=None: click.option(
        "-h", "--host", "host", metavar="HOST", default=None,
        help=help or "Database server host or socket directory, as psql -h: replaces the host of the target "
                     "(--dsn, DATABASE_URL, ..., PGHOST)."),
    "port": lambda help=None: click.option(
        "-p", "--port", "port", type=click.IntRange(1, 65535), metavar="PORT", default=None,
        help=help or "Database server port, as psql -p: replaces the port of the target."),
    "username": lambda help=None: click.option(
        "-U", "--username", "username", metavar="USER", default=None,
        help=help or "Database user, as psql -U: replaces the user of the target (the password comes from "
                     "PGPASSWORD or ~/.pgpass, never from the command line)."),
    "dbname": lambda help=None: click.option(
        "-d", "--dbname", "dbname", metavar="DBNAME", default=None,
        help=help or "Database name, as psql -d: replaces the database of the target (a whole connection "
                     "string here is taken as --dsn)."),
    "config": lambda help=None: click.option(
        "--config", "config", type=click.Path(dir_okay=False), default=None, metavar="FILE",
        help=help or "Config file [env CONTROLLER_AUDIT_CONFIG; default: ./controller-audit.toml, else "
                     "[tool.controller-audit] in ./pyproject.toml]."),
    "apps": lambda help=None: click.option(
        "--app", "apps", multiple=True, metavar="NAME",
        help=help or "Only this app (repeatable; inside the config file's apps allow-list)."),
    "checks": lambda help=None: click.option(
        "--check", "checks", multiple=True, metavar="ID",
        help=help or "Run only this check (repeatable; see: controller-audit checks)."),
    "exclude": lambda help=None: click.option(
        "--exclude", "exclude", multiple=True, metavar="ID",
        help=help or "Skip this check (repeatable; added to the config file's exclude)."),
    "grace_seconds": lambda help=None: click.option(
        "--grace", "grace_seconds", type=SECONDS, default=None, metavar="SECONDS",
        help=_layered("grace_seconds", help or "Configs/builds younger than this are a deploy in flight, not "
                                               "damage: never reported, pruned or re-dated around.")),
    "skew_seconds": lambda help=None: click.option(
        "--skew", "skew_seconds", type=SECONDS, default=None, metavar="SECONDS",
        help=_layered("skew_seconds", help or "Rows created up to this long after the database's now() are in "
                                              "flight; later ones are future-dated (a controller clock ahead of "
                                              "the database's).")),
    "statement_timeout": lambda help=None: click.option(
        "--statement-timeout", "statement_timeout", type=DURATION, default=None,
        help=_layered("statement_timeout", help or "statement_timeout for each query, with its unit (60s, 500ms, 5min).")),
    "lock_timeout": lambda help=None: click.option(
        "--lock-timeout", "lock_timeout", type=DURATION, default=None,
        help=_layered("lock_timeout", help or "lock_timeout for the session, with its unit (5s, 500ms).")),
    "commit_timeout": lambda help=None: click.option(
        "--commit-timeout", "commit_timeout", type=WAIT, default=None, metavar="DURATION",
        help=_layered("commit_timeout", help or "How long to wait for COMMIT's answer, with its unit (60s, 2min; e.g. from a synchronous "
                                                "standby) before giving the wait up and finding out what "
                                                "happened.")),
    "format": lambda help=None: click.option(
        "--format", "format", type=Choice(FORMATS), default=None,
        help=_layered("format", help or "Report format.")),
    "fail_on": lambda help=None: click.option(
        "--fail-on", "fail_on", type=Choice(FAIL_ON), default=None,
        help=_layered("fail_on", help or "Lowest severity that makes the exit code non-zero.")),
    "min_severity": lambda help=None: click.option(
        "--min-severity", "min_severity", type=click.Choice(MIN_SEVERITY), default=None,
        help=_layered("min_severity", help or "Lowest severity to list; the findings below it are counted in the "
                                              "summary, not listed (those at --fail-on and above are always "
                                              "listed).")),
    "connections": lambda help=None: click.option(
        "--connections", "connections", type=click.IntRange(min(CONNECTIONS), max(CONNECTIONS)), default=None, metavar="N",
        help=_layered("connections", help or "How many connections --format json may read a whole database's every "
                                             "finding with (2: a second one on the first one's exported snapshot; "
                                             "1: never a second).")),
}
#: Where to connect: ``--dsn`` and psql's ``-h``, ``-p``, ``-U``, ``-d``.
TARGET = ("dsn", "host", "port", "username", "dbname")
#: What a command that connects takes: the target and its timeouts.
CONNECTS = (*TARGET, "config", "statement_timeout", "lock_timeout")
#: What an audit takes on top: which apps and checks, the clock.
AUDITS = (*CONNECTS, "apps", "checks", "exclude", "grace_seconds", "skew_seconds")


def _refuse_password(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        raise click.UsageError("controller-audit takes no password on its command line and never prompts for one: "
                               "set PGPASSWORD or add a line to ~/.pgpass", ctx)


#: psql's ``-W`` / ``--password``, refused with where a password goes instead (never "did you mean --port").
NO_PASSWORD = click.option("-W", "--password", is_flag=True, hidden=True, expose_value=False, is_eager=True,
                           callback=_refuse_password)


def say_database(line: str) -> None:
    """The first thing a command that connects prints: the database it works on (on stderr, so that
    stdout stays machine-readable)."""
    click.echo(f"controller-audit: database {escape(line)}", err=True)


#: Called when the settings cannot be resolved (a bad config file, a bad variable), with the error,
#: the values given on the command line and the command's own arguments, before the error is raised.
OnFailure = Callable[[AuditorError, dict[str, Any], dict[str, Any]], None]


def settings(*names: str, help: dict[str, str] | None = None,
             on_failure: OnFailure | None = None) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Add the setting options ``names`` to a command and give its callback ``settings`` instead.

    The callback's first parameter is the resolved :class:`Settings` (command line > environment
    > config file > defaults); its other parameters are the command's own arguments.
    """
    helps = help or {}

    def decorate(func: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> int:
            given = {name: kwargs.pop(name) for name in names}
            try:
                resolved = resolve(given, catalogue=CATALOGUE, environ=os.environ, announce=say_database)
            except AuditorError as exc:
                if on_failure is not None:
                    on_failure(exc, given, kwargs)
                raise
            return func(resolved, *args, **kwargs)

        for name in reversed(names):
            command = SETTING_OPTIONS[name](helps.get(name))(command)
        if "username" in names:
            command = NO_PASSWORD(command)
        return command

    return decorate


# -- the commands' own options --------------------------------------------------------------------

def output(help: str = "Write to FILE (atomically) instead of stdout.", metavar: str = "FILE") -> Callable:
    """``-o FILE``: where a command writes what it would print (:mod:`auditor.core.fileio`)."""
    return click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, metavar=metavar, help=help)


def file_argument(name: str, metavar: str) -> Callable:
    """A file the command reads (a plan, an undo file)."""
    return click.argument(name, metavar=metavar, type=click.Path(dir_okay=False))


def detailed_exitcode(help: str) -> Callable:
    """``--detailed-exitcode``: 2 when something changed or would (Terraform's convention)."""
    return click.option("--detailed-exitcode", is_flag=True, help=help)


YES = click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
REHEARSE = click.option("--rehearse", is_flag=True,
                        help="Do everything, verify every invariant, then roll back (asks nothing).")
EVERYTHING = click.option(
    "--all", "everything", is_flag=True,
    help="Text: list every release of the history and every finding (by default runs of releases with "
         "nothing to report are collapsed to one line, and the findings below --min-severity are counted).")
LIMIT = click.option("--limit", type=click.IntRange(min=1, max=MAX_LIMIT), default=DEFAULT_LIMIT, show_default=True,
                     help="How many of the releases to list (the counts are always complete).")


def choice(*values: str, default: str, help: str) -> Callable:
    """``--format`` of a command whose formats are its own (explain, blast-radius, plan show)."""
    return click.option("--format", "fmt", type=Choice(values), default=default, show_default=True, help=help)


def label_values(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """``--label KEY=VALUE`` (repeatable) as a dict; a malformed pair is a usage error."""
    from auditor.reports.report_prometheus import parse_labels

    try:
        return parse_labels(values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


LABEL = click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", callback=label_values,
                     help="Add this label to every Prometheus series (repeatable; database=NAME replaces the "
                          "default host:port/dbname).")
BASELINE = click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False), default=None,
                        help="Report only findings not accepted in this baseline file.")
UNDO_FILE = click.option("--undo-file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
                         help="Where to write the undo file; refused if it exists [default: PLAN.undo.json, or "
                              "PLAN.undo-2.json ... when that exists].")
REPAIR = click.option("--repair", "repairs", multiple=True, type=Choice(REPAIRS),
                      help="Only this repair (repeatable) [default: prune-orphans, unshare, restore-latest, in that "
                           "order; release-order only when asked, since it can change which release is live].")
MARKDOWN = click.option("--markdown", is_flag=True, hidden=True,
                        help="Render the catalogue as Markdown (generates docs/catalogue.md).")
DEMO_SERVER = click.option("--dsn", metavar="DSN", default=None,
                           help="Use this server (the role must be allowed to create databases) instead of an "
                                "embedded one; the demo creates and drops its own database there.")
GENERATION = click.option("--generation", default="hephy", show_default=True, metavar="GEN",
                          help="Schema generation: hephy (0028), deis (0023), deis-old (0019) or a migration "
                               "number 19..28.")
KEEP = click.option("--keep", is_flag=True,
                    help="Afterwards leave a damaged copy of the story running to practise on, and print how to "
                         "point the tool at it and how to stop and remove it.")
