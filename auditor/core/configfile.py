"""The optional config file: defaults for the audit commands, never a password.

Looked up in this order: ``--config FILE``; ``controller-audit.toml`` in the working
directory; the ``[tool.controller-audit]`` table of ``./pyproject.toml``.  Command-line
options override it.  Unknown keys and bad values are :class:`BadInput` naming the key.
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.cli.params import MAX_GRACE_SECONDS
from auditor.core.connection import Target, UnparsableConnectionString, parse_conninfo, resolve_target
from auditor.core.errors import BadInput
from auditor.core.findings import SEVERITIES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_FILENAME = "controller-audit.toml"
PYPROJECT_TABLE = "controller-audit"
FORMATS: tuple[str, ...] = ("table", "json", "prometheus", "nagios", "html")
FAIL_ON: tuple[str, ...] = (*SEVERITIES, "never")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Settings:
    """What the config file says (``None`` / empty: not set)."""

    source: str | None = None
    dsn_env: str | None = None
    dsn: str | None = None
    apps: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    #: check id -> {level it emits -> severity reported} (:mod:`auditor.core.overrides`)
    severity: dict[str, dict[str, str]] = field(default_factory=dict)
    format: str | None = None
    fail_on: str | None = None
    grace: float | None = None


def _bad(source: str, key: str, problem: str) -> BadInput:
    return BadInput(f"{source}: {key}: {problem}", kind="bad config file")


def _string_list(source: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _bad(source, key, "must be a list of strings")
    return tuple(value)


def _choice(source: str, key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise _bad(source, key, f"must be one of {', '.join(allowed)} (got {value!r})")
    return value


def _check_ids(source: str, key: str, ids: tuple[str, ...] | list[str]) -> None:
    from auditor.core.catalogue import load_catalogue

    catalogue = load_catalogue()
    for cid in ids:
        if cid not in catalogue:
            raise _bad(source, key, f"unknown check id {cid!r} (see: controller-audit checks)")


def _severity_overrides(source: str, key: str, value: Any) -> dict[str, dict[str, str]]:
    """``[severity]``: each check's override resolved against the levels it emits."""
    from auditor.core.catalogue import load_catalogue
    from auditor.core.overrides import BadOverride, resolve

    if not isinstance(value, dict):
        raise _bad(source, key, "must be a table of check id = severity, or = {level = severity, floor, ceiling}")
    _check_ids(source, key, list(value))
    catalogue = load_catalogue()
    resolved = {}
    for cid, spec in value.items():
        try:
            resolved[cid] = resolve(catalogue[cid], spec, strict=True)
        except BadOverride as exc:
            raise _bad(source, f"{key}.{cid}", str(exc)) from None
    return resolved


def _grace(source: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 <= value <= MAX_GRACE_SECONDS:
        raise _bad(source, key, f"must be a number of seconds >= 0 (and at most {MAX_GRACE_SECONDS})")
    return float(value)


def _dsn(source: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _bad(source, "dsn", "must be a connection string")
    try:
        parse_conninfo(value)
    except UnparsableConnectionString as exc:
        raise _bad(source, "dsn", f"cannot be used: {exc} (it is not shown: it may hold a password)") from None
    if resolve_target(value).secrets:
        raise _bad(source, "dsn", "holds a password; keep it out of the file (use dsn_env, PGPASSWORD or ~/.pgpass)")
    return value


def parse_settings(data: dict[str, Any], source: str) -> Settings:
    """Validate one config table into :class:`Settings`."""
    values: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = raw_key.replace("-", "_")
        if key == "dsn_env":
            if not isinstance(value, str) or not _ENV_NAME.match(value):
                raise _bad(source, raw_key, "must be the name of an environment variable")
            values[key] = value
        elif key == "dsn":
            values[key] = _dsn(source, value)
        elif key in ("apps", "exclude"):
            values[key] = _string_list(source, raw_key, value)
            if key == "exclude":
                _check_ids(source, raw_key, values[key])
        elif key == "severity":
            values[key] = _severity_overrides(source, raw_key, value)
        elif key == "format":
            values[key] = _choice(source, raw_key, value, FORMATS)
        elif key == "fail_on":
            values[key] = _choice(source, raw_key, value, FAIL_ON)
        elif key == "grace":
            values[key] = _grace(source, raw_key, value)
        else:
            known = "dsn_env, dsn, apps, exclude, severity, format, fail_on, grace"
            raise _bad(source, raw_key, f"unknown key (known: {known})")
    return Settings(source=source, **values)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: not valid TOML: {exc}", kind="bad config file") from None
    except OSError as exc:
        raise BadInput(f"cannot read config file {path}: {exc.strerror}", kind="bad config file") from None


def load_settings(path: str | os.PathLike[str] | None = None, cwd: Path | None = None) -> Settings:
    """The settings from ``path``, else from the working directory's files, else none."""
    if path is not None:
        return parse_settings(_read_toml(Path(path)), str(path))
    here = cwd or Path.cwd()
    own = here / CONFIG_FILENAME
    if own.is_file():
        return parse_settings(_read_toml(own), CONFIG_FILENAME)
    pyproject = here / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
            if f"[tool.{PYPROJECT_TABLE}]" in pyproject.read_text(encoding="utf-8", errors="replace"):
                raise BadInput("pyproject.toml: not valid TOML", kind="bad config file") from None
            return Settings()
        table = data.get("tool", {}).get(PYPROJECT_TABLE)
        if table is not None:
            if not isinstance(table, dict):
                raise BadInput(f"pyproject.toml: tool.{PYPROJECT_TABLE} must be a table", kind="bad config file")
            return parse_settings(table, f"pyproject.toml [tool.{PYPROJECT_TABLE}]")
    return Settings()


def target_for(dsn: str | None, settings: Settings, environ: dict[str, str] | None = None) -> Target:
    """The target: ``--dsn``, else the config file's ``dsn_env`` / ``dsn``, else the usual order."""
    env = os.environ if environ is None else environ
    if dsn or not (settings.dsn_env or settings.dsn):
        return resolve_target(dsn, env)
    pgpassword = (env["PGPASSWORD"],) if env.get("PGPASSWORD") else ()
    if settings.dsn_env:
        value = env.get(settings.dsn_env)
        if not value:
            raise BadInput(
                f"{settings.source}: dsn_env names {settings.dsn_env}, which is not set in the environment",
                kind="bad config file",
            )
        found = resolve_target(value, env)
        return Target(value, f"${settings.dsn_env} (dsn_env in {settings.source})", found.secrets + pgpassword)
    assert settings.dsn is not None
    return Target(settings.dsn, f"dsn in {settings.source}", pgpassword)
