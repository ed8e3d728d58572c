"""Options shared by the commands, and the validated types of their numbers.

Every numeric option is checked here before anything connects: finite, in range, one line
of error (``controller-audit: bad usage: Invalid value for '--grace': ...``, exit 3).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import click

from auditor.core.connection import DEFAULT_LOCK_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT

#: The longest grace period (ten years): more means "never damage", and no interval is longer.
MAX_GRACE_SECONDS = 315_360_000
#: PostgreSQL's limit for statement_timeout and lock_timeout (INT_MAX milliseconds, ~24.8 days).
MAX_TIMEOUT_MS = 2_147_483_647
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "min": 60_000.0, "h": 3_600_000.0, "d": 86_400_000.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*$")


class Seconds(click.ParamType):
    """A finite number of seconds from 0 to ``maximum`` (``nan``, ``inf`` and ``-1`` refused)."""

    name = "seconds"

    def __init__(self, maximum: float) -> None:
        self.maximum = maximum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, bool):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(number) or not 0 <= number <= self.maximum:
            self.fail(f"{value!r} is not a number of seconds from 0 to {self.maximum:.0f}", param, ctx)
        return number


class Duration(click.ParamType):
    """A PostgreSQL duration for ``statement_timeout`` / ``lock_timeout``: ``60s``, ``500ms``,
    ``5min``, a bare number of milliseconds; at most PostgreSQL's limit."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        match = _DURATION.match(str(value))
        if match is None:
            self.fail(f"bad timeout value {value!r} (a PostgreSQL duration such as 60s, 500ms or 5min)", param, ctx)
        milliseconds = float(match.group(1)) * _UNIT_MS[match.group(2) or "ms"]
        if milliseconds > MAX_TIMEOUT_MS:
            self.fail(f"bad timeout value {value!r} (at most {MAX_TIMEOUT_MS} ms, about 24 days)", param, ctx)
        return f"{match.group(1)}{match.group(2) or 'ms'}"


#: ``--grace``: a deploy in flight, not damage (seconds).
GRACE = Seconds(MAX_GRACE_SECONDS)
#: ``--statement-timeout`` / ``--lock-timeout``.
DURATION = Duration()


def target_options(func: Callable) -> Callable:
    """``--dsn``, ``--statement-timeout`` and ``--lock-timeout`` for a command."""
    func = click.option("--lock-timeout", type=DURATION, default=DEFAULT_LOCK_TIMEOUT, show_default=True,
                        help="lock_timeout for the session (PostgreSQL duration).")(func)
    func = click.option("--statement-timeout", type=DURATION, default=DEFAULT_STATEMENT_TIMEOUT, show_default=True,
                        help="statement_timeout for each query (PostgreSQL duration).")(func)
    func = click.option("--dsn", metavar="DSN", default=None,
                        help="libpq connection string or postgresql:// URL (default: DATABASE_URL, "
                             "DEIS_DATABASE_*, then PG* variables).")(func)
    return func

#: ``blast-radius --limit``: at most this many releases listed (the counts are always complete).
MAX_LIMIT = 1_000_000
