"""Every single-valued setting, declared once: its flag, environment variable, config-file key,
default and validation (as dbt's flags are).  :mod:`auditor.core.settings` merges the layers,
:mod:`auditor.core.configfile` validates the file's keys from the same declarations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from auditor.core.values import (
    FAIL_ON,
    FORMATS,
    MAX_GRACE_SECONDS,
    MIN_SEVERITY,
    parse_choice,
    parse_connections,
    parse_duration,
    parse_seconds,
    parse_wait,
)

#: A deploy in flight, not damage: rows younger than this are never reported or repaired (seconds).
DEFAULT_GRACE_SECONDS = 300
#: How far ahead of the database's clock a controller host's clock may run: rows created up to
#: this long after ``now()`` are in flight; later ones are future-dated.
DEFAULT_SKEW_SECONDS = 60
DEFAULT_STATEMENT_TIMEOUT = "60s"
DEFAULT_LOCK_TIMEOUT = "5s"
#: Seconds ``apply`` / ``undo`` wait for COMMIT's answer (``--commit-timeout``).
DEFAULT_COMMIT_TIMEOUT = 60.0
#: Every setting's environment variable is this prefix and its name in capitals.
ENV_PREFIX = "CONTROLLER_AUDIT_"
#: Where each value came from (:attr:`Settings.sources`).
COMMAND_LINE, DEFAULT = "command line", "default"


@dataclass(frozen=True)
class Option:
    """A setting that can come from the command line, the environment or the config file."""

    name: str  # the Settings field
    flag: str  # its command-line option
    default: Any
    parse: Callable[[Any], Any]
    #: The config-file key (None: the file cannot set it).
    key: str | None = None
    #: How the file's value is validated, when not as ``parse`` (a TOML value is typed already).
    file_parse: Callable[[Any], Any] | None = None
    #: What the file's value must be, when the parser's own message does not say it.
    file_problem: str = ""

    def parse_file_value(self, value: Any) -> Any:
        """The config file's ``value`` validated (``ValueError``: :attr:`file_problem` or why)."""
        try:
            return (self.file_parse or self.parse)(value)
        except ValueError as exc:
            raise ValueError(self.file_problem or str(exc)) from None

    @property
    def env(self) -> str:
        """``CONTROLLER_AUDIT_GRACE`` for ``grace_seconds`` (named after the flag)."""
        return ENV_PREFIX + self.flag.removeprefix("--").replace("-", "_").upper()


_SECONDS_PROBLEM = f"must be a number of seconds >= 0 (and at most {MAX_GRACE_SECONDS})"


def _file_seconds(value: Any) -> float:
    """A number of seconds from the file: a TOML number, never a string."""
    if not isinstance(value, (int, float)):
        raise ValueError("not a number")
    return parse_seconds(value)


#: The settings with a single value, each declared once.  ``--app``, ``--check`` and ``--exclude``
#: (lists), ``--dsn`` (the target: see the module docstring) and ``--config`` are resolved apart.
OPTIONS: tuple[Option, ...] = (
    Option("grace_seconds", "--grace", DEFAULT_GRACE_SECONDS, parse_seconds, key="grace",
           file_parse=_file_seconds, file_problem=_SECONDS_PROBLEM),
    Option("skew_seconds", "--skew", DEFAULT_SKEW_SECONDS, parse_seconds, key="skew",
           file_parse=_file_seconds, file_problem=_SECONDS_PROBLEM),
    Option("statement_timeout", "--statement-timeout", DEFAULT_STATEMENT_TIMEOUT, parse_duration,
           key="statement_timeout"),
    Option("lock_timeout", "--lock-timeout", DEFAULT_LOCK_TIMEOUT, parse_duration, key="lock_timeout"),
    Option("commit_timeout", "--commit-timeout", DEFAULT_COMMIT_TIMEOUT, parse_wait, key="commit_timeout"),
    Option("format", "--format", "table", parse_choice(FORMATS), key="format"),
    Option("fail_on", "--fail-on", "warning", parse_choice(FAIL_ON), key="fail_on"),
    Option("min_severity", "--min-severity", "warning", parse_choice(MIN_SEVERITY), key="min_severity"),
    Option("connections", "--connections", 2, parse_connections, key="connections"),
)
OPTION_BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}
#: The same, by config-file key.
OPTION_BY_KEY: dict[str, Option] = {o.key: o for o in OPTIONS if o.key is not None}
