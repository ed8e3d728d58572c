"""The optional config file: defaults for every command, never a password.

Looked up in this order: ``--config FILE`` (or ``CONTROLLER_AUDIT_CONFIG``); ``controller-audit.toml``
in the working directory; the ``[tool.controller-audit]`` table of ``./pyproject.toml``.  The
command line and the environment override it (:mod:`auditor.core.settings`).  Unknown keys and
bad values are :class:`BadInput` naming the file and the key.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from auditor.core.catalogue import Check
from auditor.core.connection import UnparsableConnectionString, parse_conninfo, resolve_target
from auditor.core.errors import BadInput
from auditor.core.options import OPTION_BY_KEY
from auditor.core.suggest import unknown_check, with_hint

CONFIG_FILENAME = "controller-audit.toml"
PYPROJECT_TABLE = "controller-audit"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ConfigFile:
    """What the config file says (``None`` / empty: not set)."""

    source: str | None = None
    dsn_env: str | None = None
    dsn: str | None = None
    apps: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    #: check id -> {level it emits -> severity reported} (:mod:`auditor.core.overrides`)
    severity: dict[str, dict[str, str]] = field(default_factory=dict)
    #: The single-valued settings it sets, by key (``grace``, ``skew``, ``statement_timeout``,
    #: ``lock_timeout``, ``commit_timeout``, ``format``, ``fail_on``, ``min_severity``, ``connections``), validated.
    values: Mapping[str, Any] = field(default_factory=dict)


def _bad(source: str, key: str, problem: str) -> BadInput:
    return BadInput(f"{source}: {key}: {problem}", kind="bad config file")


def _string_list(source: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _bad(source, key, "must be a list of strings")
    return tuple(value)


def _check_ids(source: str, key: str, ids: tuple[str, ...] | list[str], catalogue: Mapping[str, Check] | None) -> None:
    for cid in ids:
        if catalogue is not None and cid not in catalogue:
            raise _bad(source, key, unknown_check(cid, catalogue))


def _severity_overrides(source: str, key: str, value: Any,
                        catalogue: Mapping[str, Check] | None) -> dict[str, dict[str, str]]:
    """``[severity]``: each check's override resolved against the levels it emits."""
    from auditor.core.overrides import BadOverride, resolve

    if not isinstance(value, dict):
        raise _bad(source, key, "must be a table of check id = severity, or = {level = severity, floor, ceiling}")
    _check_ids(source, key, list(value), catalogue)
    if catalogue is None:
        return dict(value)
    resolved = {}
    for cid, spec in value.items():
        try:
            resolved[cid] = resolve(catalogue[cid], spec, strict=True)
        except BadOverride as exc:
            raise _bad(source, f"{key}.{cid}", str(exc)) from None
    return resolved


#: Every key the file may hold: its own, then the single-valued settings' (:data:`auditor.core.options.OPTIONS`).
KNOWN_KEYS = ("dsn_env", "dsn", "apps", "exclude", "severity", *OPTION_BY_KEY)


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


def parse_config(data: dict[str, Any], source: str, catalogue: Mapping[str, Check] | None = None) -> ConfigFile:
    """Validate one config table into a :class:`ConfigFile` (check ids against ``catalogue``)."""
    fields: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = raw_key.replace("-", "_")
        if key == "dsn_env":
            if not isinstance(value, str) or not _ENV_NAME.match(value):
                raise _bad(source, raw_key, "must be the name of an environment variable")
            fields[key] = value
        elif key == "dsn":
            fields[key] = _dsn(source, value)
        elif key in ("apps", "exclude"):
            fields[key] = _string_list(source, raw_key, value)
            if key == "apps" and not fields[key]:  # an allow-list of nothing must not read as "every app"
                raise _bad(source, raw_key, "is an empty list, which would allow no app: name the apps, or remove "
                                            "the key to audit every app")
            if key == "exclude":
                _check_ids(source, raw_key, fields[key], catalogue)
        elif key == "severity":
            fields[key] = _severity_overrides(source, raw_key, value, catalogue)
        elif key in OPTION_BY_KEY:
            try:
                values[key] = OPTION_BY_KEY[key].parse_file_value(value)
            except ValueError as exc:
                raise _bad(source, raw_key, str(exc)) from None
        else:
            raise _bad(source, raw_key, with_hint("unknown key", key, KNOWN_KEYS) + f" (known: {', '.join(KNOWN_KEYS)})")
    return ConfigFile(source=source, values=values, **fields)


def _tomllib() -> ModuleType:
    """The TOML parser, imported when a file is read (most runs read none)."""
    return importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")  # tomli: Python 3.10


def _toml_text(raw: bytes) -> str:
    """The file's text: strict UTF-8, a leading byte-order mark (what some Windows editors write)
    dropped, as TOML parsers commonly do."""
    return raw.decode("utf-8").removeprefix("\ufeff")


def _read_toml(path: Path) -> dict[str, Any]:
    tomllib = _tomllib()
    try:
        data: dict[str, Any] = tomllib.loads(_toml_text(path.read_bytes()))
        return data
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: not valid TOML: {exc}", kind="bad config file") from None
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not valid TOML: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                       f"{exc.start})", kind="bad config file") from None
    except RecursionError:
        raise BadInput(f"{path}: not valid TOML: nested too deeply", kind="bad config file") from None
    except OSError as exc:
        raise BadInput(f"cannot read config file {path}: {exc.strerror}", kind="bad config file") from None


def load_config(path: str | os.PathLike[str] | None = None, *, catalogue: Mapping[str, Check] | None = None,
                cwd: Path | None = None) -> ConfigFile:
    """The config file at ``path``, else the working directory's, else an empty one."""
    if path is not None:
        return parse_config(_read_toml(Path(path)), str(path), catalogue)
    here = cwd or Path.cwd()
    own = here / CONFIG_FILENAME
    if own.is_file():
        return parse_config(_read_toml(own), CONFIG_FILENAME, catalogue)
    pyproject = here / "pyproject.toml"
    if pyproject.is_file():
        tomllib = _tomllib()
        try:
            data = tomllib.loads(_toml_text(pyproject.read_bytes()))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError, OSError):
            if f"[tool.{PYPROJECT_TABLE}]" in pyproject.read_text(encoding="utf-8", errors="replace"):
                raise BadInput("pyproject.toml: not valid TOML", kind="bad config file") from None
            return ConfigFile()
        table = data.get("tool", {}).get(PYPROJECT_TABLE)
        if table is not None:
            if not isinstance(table, dict):
                raise BadInput(f"pyproject.toml: tool.{PYPROJECT_TABLE} must be a table", kind="bad config file")
            return parse_config(table, f"pyproject.toml [tool.{PYPROJECT_TABLE}]", catalogue)
    return ConfigFile()
