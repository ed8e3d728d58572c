"""The kinds of values settings take, validated the same way wherever they come from (the command
line, the environment, the config file): each parser returns the value or raises ValueError
saying why, in words the user can act on."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from auditor.core.findings import SEVERITIES

#: The longest grace period or skew (ten years): more means "never damage", and no interval is longer.
MAX_GRACE_SECONDS = 315_360_000
#: PostgreSQL's limit for statement_timeout and lock_timeout (INT_MAX milliseconds, ~24.8 days).
MAX_TIMEOUT_MS = 2_147_483_647
#: The longest wait for COMMIT's answer.
MAX_COMMIT_TIMEOUT = 86_400
#: ``blast-radius --limit``'s default: how many releases the text lists.
DEFAULT_LIMIT = 20
#: ``check --format`` choices, and ``--fail-on``.
FORMATS: tuple[str, ...] = ("table", "json", "prometheus", "nagios", "html")
FAIL_ON: tuple[str, ...] = (*SEVERITIES, "never")
#: ``--min-severity`` choices: the lowest severity a report lists.
MIN_SEVERITY: tuple[str, ...] = SEVERITIES
#: ``check --connections`` choices: how many connections a whole audit may read with.
CONNECTIONS: tuple[int, ...] = (1, 2)

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "min": 60_000.0, "h": 3_600_000.0, "d": 86_400_000.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*$")


def parse_seconds(value: Any, maximum: float = MAX_GRACE_SECONDS) -> float:
    """A finite number of seconds from 0 to ``maximum`` (``nan``, ``inf``, ``-1`` and booleans refused);
    ValueError says why."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number of seconds")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number of seconds") from None
    if not math.isfinite(number) or not 0 <= number <= maximum:
        raise ValueError(f"{value!r} is not a number of seconds from 0 to {maximum:.0f}")
    return number


#: What a bare number is refused with: ``--statement-timeout 5`` used to mean 5 ms, silently.
_ADD_A_UNIT = "add a unit: {n}s, {n}ms or {n}min (us, ms, s, min, h and d are understood)"


def _duration_ms(value: Any) -> tuple[float, str, str]:
    """``(milliseconds, number, unit)`` of a duration with its unit; ValueError (one line) otherwise."""
    text = str(value).strip() if not isinstance(value, bool) else ""
    match = _DURATION.match(text)
    if match is None:
        bare = re.fullmatch(r"(\d+(?:\.\d+)?)\s*m", text)
        hint = f" (minutes are {bare.group(1)}min)" if bare else " (a PostgreSQL duration such as 60s, 500ms or 5min)"
        raise ValueError(f"bad timeout value {value!r}{hint}")
    number, unit = match.group(1), match.group(2)
    if unit is None:
        raise ValueError(f"bad timeout value {value!r}: {_ADD_A_UNIT.format(n=number)}")
    return float(number) * _UNIT_MS[unit], number, unit


def parse_wait(value: Any) -> float:
    """``--commit-timeout``: a duration with its unit (``60s``, ``2min``), more than 0 and at most a
    day, in seconds."""
    milliseconds, _, _ = _duration_ms(value)
    if not 0 < milliseconds <= MAX_COMMIT_TIMEOUT * 1000:
        raise ValueError(f"bad timeout value {value!r} (more than 0 and at most {MAX_COMMIT_TIMEOUT}s, a day)")
    return milliseconds / 1000


def parse_duration(value: Any) -> str:
    """A PostgreSQL duration for ``statement_timeout`` / ``lock_timeout`` with its unit (``60s``,
    ``500ms``, ``5min``; a bare number is refused), at most PostgreSQL's limit; normalised (``500ms``)."""
    milliseconds, number, unit = _duration_ms(value)
    if milliseconds < 1:  # PostgreSQL rounds to whole milliseconds, and 0 turns the timeout off
        raise ValueError(f"bad timeout value {value!r} (at least 1ms: PostgreSQL takes 0 as no timeout at all)")
    if milliseconds > MAX_TIMEOUT_MS:
        raise ValueError(f"bad timeout value {value!r} (at most {MAX_TIMEOUT_MS} ms, about 24 days)")
    return f"{number}{unit}"


def parse_connections(value: Any) -> int:
    """``--connections``: 1 or 2 (a whole number, or its digit as text; a list or table is refused too)."""
    if isinstance(value, (int, str)) and not isinstance(value, bool) and str(value) in {str(n) for n in CONNECTIONS}:
        return int(value)
    raise ValueError(f"must be one of {', '.join(map(str, CONNECTIONS))} (got {value!r})")


def parse_choice(allowed: tuple[str, ...]) -> Callable[[Any], str]:
    """A validator accepting one of ``allowed``."""
    def parse(value: Any) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)} (got {value!r})")
        return str(value)
    return parse


