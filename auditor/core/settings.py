"""One settings object for every command: command line > environment > config file > defaults.

As dbt's flags do: every setting is declared once (:data:`auditor.core.options.OPTIONS`: its
environment variable, its config-file key, its default and its validation), :func:`resolve` merges the four layers into one
frozen :class:`Settings`, and every command receives that object, so no command can resolve
another database, app allow-list, grace, skew or timeout than another.

The target database is a setting too: ``--dsn``, else the config file's ``dsn_env`` / ``dsn``,
else the conventions of the environment it runs in (``DATABASE_URL``, the controller's own
``DEIS_DATABASE_*`` variables, then libpq's ``PG*`` variables and ``~/.pgpass``): those are its
defaults; psql's ``-h``, ``-p``, ``-U`` and ``-d`` then replace their part of it.  It is resolved when first used, so commands that do not connect (``plan sql``) never
need one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import psycopg

from auditor.core.catalogue import Check
from auditor.core.configfile import ConfigFile, load_config
from auditor.core.connection import Target, looks_like_conninfo, resolve_target, with_parts
from auditor.core.errors import BadInput
from auditor.core.options import (
    COMMAND_LINE,
    DEFAULT,
    DEFAULT_COMMIT_TIMEOUT,
    DEFAULT_GRACE_SECONDS,
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_SKEW_SECONDS,
    DEFAULT_STATEMENT_TIMEOUT,
    ENV_PREFIX,
    OPTION_BY_NAME,
    OPTIONS,
    Option,
)
from auditor.core.suggest import unknown_check, with_hint

__all__ = [  # declared in auditor.core.options, imported from here by the commands
    "DEFAULT_COMMIT_TIMEOUT", "DEFAULT_GRACE_SECONDS", "DEFAULT_LOCK_TIMEOUT", "DEFAULT_SKEW_SECONDS",
    "DEFAULT_STATEMENT_TIMEOUT", "OPTIONS", "OPTION_BY_NAME", "Option", "Selection", "Settings", "resolve",
]

#: ``--config FILE``'s environment variable.
CONFIG_ENV = ENV_PREFIX + "CONFIG"


@dataclass
class Selection:
    """Which checks run, with the per-check severity overrides of the config file.

    An override is a level map (``{"info": "info", "warning": "critical"}``), a table with
    ``floor`` / ``ceiling``, or a severity for every level (see :mod:`auditor.core.overrides`).
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    severity_overrides: Mapping[str, Any] = field(default_factory=dict)


#: Told the database a command works on, once it is connected (the command line prints it on stderr).
Announce = Callable[[str], None]


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know besides its own arguments, resolved once."""

    #: ``--dsn`` (None: the config file's, else the environment's; see :attr:`target`).
    dsn: str | None = None
    #: ``-h``, ``-p``, ``-U``, ``-d`` (psql's flags): each replaces its part of the target.
    host: str | None = None
    port: int | None = None
    username: str | None = None
    dbname: str | None = None
    #: The config file as read (empty when there is none).
    config: ConfigFile = field(default_factory=ConfigFile)
    #: ``--app``: the apps named on the command line (each inside the allow-list).
    apps: tuple[str, ...] = ()
    #: ``--check`` and ``--exclude`` (the file's ``exclude`` merged in).
    checks: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    skew_seconds: float = DEFAULT_SKEW_SECONDS
    statement_timeout: str = DEFAULT_STATEMENT_TIMEOUT
    lock_timeout: str = DEFAULT_LOCK_TIMEOUT
    commit_timeout: float = DEFAULT_COMMIT_TIMEOUT
    format: str = "table"
    fail_on: str = "warning"
    #: The lowest severity a report lists; findings below it are counted, not listed.
    min_severity: str = "warning"
    #: How many connections ``check --format json`` listing every info finding of a whole database may
    #: read with (2: a second one on the first one's exported snapshot, :mod:`auditor.audit.split`).
    connections: int = 2
    #: setting name -> where its value came from: ``command line``, ``CONTROLLER_AUDIT_...``, the
    #: config file's name, or ``default``.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False, compare=False)
    #: Called with the database line once a command is connected (see :meth:`announce_database`).
    announce: Announce | None = field(default=None, repr=False, compare=False)

    # -- the target -------------------------------------------------------------------------
    @cached_property
    def target(self) -> Target:
        """Where to connect: ``--dsn``, else the config file's ``dsn_env`` / ``dsn``, else
        ``DATABASE_URL``, ``DEIS_DATABASE_*``, then libpq's defaults; ``-h``, ``-p``, ``-U`` and
        ``-d`` replace their part of it (a ``-d`` holding a whole connection string, as psql
        allows, is taken as ``--dsn``)."""
        parts: dict[str, str | int | None] = {"host": self.host, "port": self.port, "user": self.username,
                                              "dbname": self.dbname}
        if self.dbname and looks_like_conninfo(self.dbname):
            if self.dsn:
                raise BadInput("-d holds a connection string and --dsn another: give one of them", kind="bad usage")
            parts["dbname"] = None
            return with_parts(replace(resolve_target(self.dbname, self.environ), source="-d"), parts)
        return with_parts(self._base_target(), parts)

    def _base_target(self) -> Target:
        """The target before the psql-style flags: ``--dsn``, the config file's, the environment's."""
        config, env = self.config, self.environ
        if self.dsn or not (config.dsn_env or config.dsn):
            return resolve_target(self.dsn, env)
        pgpassword = (env["PGPASSWORD"],) if env.get("PGPASSWORD") else ()
        if config.dsn_env:
            value = env.get(config.dsn_env)
            if not value:
                raise BadInput(f"{config.source}: dsn_env names {config.dsn_env}, which is not set in the environment",
                               kind="bad config file")
            found = resolve_target(value, env)
            return Target(value, f"${config.dsn_env} (dsn_env in {config.source})", found.secrets + pgpassword)
        return Target(str(config.dsn), f"dsn in {config.source}", pgpassword)

    # -- the apps -----------------------------------------------------------------------------
    @property
    def allowed_apps(self) -> tuple[str, ...]:
        """The config file's ``apps`` allow-list (empty: every app)."""
        return tuple(self.config.apps)

    @property
    def scope(self) -> tuple[str, ...]:
        """The apps an audit or a plan looks at: ``--app``, else the allow-list, else every app (empty)."""
        return self.apps or self.allowed_apps

    def require_allowed(self, names: tuple[str, ...] | list[str], what: str = "app") -> None:
        """:class:`BadInput` for the first of ``names`` outside the allow-list (exit 3)."""
        if not self.allowed_apps:
            return
        outside = [n for n in names if n not in self.allowed_apps]
        if outside:
            raise BadInput(with_hint(f"{what} {outside[0]!r} is not in the apps allow-list of {self.config.source}",
                                     outside[0], self.allowed_apps), kind="unknown app")

    def outside_allowed(self, names: list[str | None]) -> list[str]:
        """Those of ``names`` the allow-list leaves out (a name of None counts as outside)."""
        if not self.allowed_apps:
            return []
        return sorted({str(n) for n in names if n not in self.allowed_apps})

    # -- the checks ----------------------------------------------------------------------------
    @property
    def selection(self) -> Selection:
        """The checks ``check`` and ``baseline create`` run, with the file's severity overrides."""
        return Selection(include=self.checks, exclude=self.exclude, severity_overrides=dict(self.config.severity))

    @property
    def overrides_only(self) -> Selection:
        """Every check, with the file's severity overrides (``explain``)."""
        return Selection(severity_overrides=dict(self.config.severity))

    # -- the database line ------------------------------------------------------------------------
    def announce_database(self, conn: psycopg.Connection, generation_label: str) -> None:
        """Tell :attr:`announce` which database this command works on (never a password)."""
        if self.announce is not None:
            self.announce(database_line(conn, generation_label))


def database_line(conn: psycopg.Connection, generation_label: str) -> str:
    """``db.internal:5432/deis (hephy 0028)``: host, port, database name and schema generation of
    the connection as libpq made it (the connection's own parameters: never a user or a password)."""
    info = conn.info
    return f"{info.host}:{info.port}/{info.dbname} ({generation_label})"


def _environment(option: Option, environ: Mapping[str, str]) -> Any | None:
    raw = environ.get(option.env)
    if raw is None or not raw.strip():
        return None
    try:
        return option.parse(raw)
    except ValueError as exc:
        raise BadInput(f"{option.env}: {exc}", kind="bad usage") from None


def resolve(given: Mapping[str, Any] | None = None, *, catalogue: Mapping[str, Check] | None = None,
            environ: Mapping[str, str] | None = None, cwd: Path | None = None,
            announce: Announce | None = None) -> Settings:
    """The settings from the command line's ``given`` values (None or empty: not given; numbers and
    durations already validated), the environment, the config file and the defaults, in that order.

    ``catalogue`` validates the check ids of the command line and of the file (without it, check ids
    are validated when the checks are selected).
    """
    given = {k: v for k, v in (given or {}).items() if v is not None and v != ()}
    for name, instead in (("dsn", "the config file's dsn_env or dsn, DATABASE_URL, DEIS_DATABASE_* or PG*"),
                          ("config", "./controller-audit.toml or ./pyproject.toml")):
        if given.get(name) == "":  # `--dsn "$UNSET"` must not fall back to another database or file
            raise BadInput(f"--{name} is empty (an unset variable?): give one, or leave the option out to use "
                           f"{instead}", kind="bad usage")
    env = dict(os.environ) if environ is None else dict(environ)
    config_path = given.get("config") or (env.get(CONFIG_ENV) or None)
    config = load_config(config_path, catalogue=catalogue, cwd=cwd)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        from_env = _environment(option, env)
        from_file = config.values.get(option.key) if option.key else None
        if option.name in given:
            values[option.name], sources[option.name] = given[option.name], COMMAND_LINE
        elif from_env is not None:
            values[option.name], sources[option.name] = from_env, option.env
        elif from_file is not None:
            values[option.name], sources[option.name] = from_file, str(config.source)
        else:
            values[option.name], sources[option.name] = option.default, DEFAULT
    apps = tuple(dict.fromkeys(given.get("apps", ())))
    checks = tuple(dict.fromkeys(given.get("checks", ())))
    if catalogue is not None:
        for cid in (*checks, *given.get("exclude", ())):
            if cid not in catalogue:
                raise BadInput(unknown_check(cid, catalogue), kind="unknown check")
    exclude = tuple(dict.fromkeys((*given.get("exclude", ()), *(c for c in config.exclude if c not in checks))))
    settings = Settings(dsn=given.get("dsn"), host=given.get("host"), port=given.get("port"),
                        username=given.get("username"), dbname=given.get("dbname"),
                        config=config, apps=apps, checks=checks, exclude=exclude,
                        sources=sources, environ=env, announce=announce, **values)
    settings.require_allowed(apps)
    return settings
