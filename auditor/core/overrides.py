"""Severity overrides of the config file's ``[severity]`` table, resolved per level.

A graded check emits several severities (``shared-config``: ``info`` for the sharing every
push creates, ``warning`` for a rollback reuse, ``critical`` when the live release is in an
old row's blast radius), so one replacement severity would flatten it.  An override is
therefore either

* a string, for a check with one level only (``orphan-build = "critical"``), or
* a table: each level the check emits mapped to a severity (``shared-config = {warning =
  "critical"}``; unlisted levels keep theirs), and/or ``floor`` / ``ceiling``, the lowest /
  highest severity any of its findings may have (``missing-constraint = {floor =
  "warning"}``).  The level map applies first, then the floor and the ceiling.

Resolved, an override is a complete map from every level the check emits to the severity
its findings get (:data:`Resolved`), which the runner applies in SQL and in Python alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor.core.catalogue import Check
from auditor.core.findings import SEVERITIES, SEVERITY_RANK

#: check id -> {level the check emits -> severity reported}
Resolved = dict[str, dict[str, str]]

_BOUNDS = ("floor", "ceiling")


class BadOverride(ValueError):
    """An override that does not fit its check; the message says what to write instead."""


def _severity(key: str | None, value: Any) -> str:
    if value not in SEVERITIES:
        what = f"{key} must be" if key else "must be"
        raise BadOverride(f"{what} one of {', '.join(SEVERITIES)} (got {value!r})")
    return str(value)


def _levels_text(check: Check) -> str:
    return ", ".join(check.levels)


def resolve(check: Check, spec: Any, *, strict: bool = True) -> dict[str, str]:
    """The complete level map of ``spec`` for ``check``; :class:`BadOverride` if it does not fit.

    ``strict``: a plain string is refused for a check with several levels (the config file);
    otherwise it maps every level (the library's historical meaning).
    """
    if isinstance(spec, str):
        target = _severity(None, spec)
        if strict and len(check.levels) > 1:
            example = ", ".join(f'{level} = "{level}"' for level in check.levels)
            raise BadOverride(
                f"{check.id} reports {_levels_text(check)} findings, so one severity would flatten them: map "
                f"each level ({check.id} = {{{example}}}) or set a floor or ceiling ({check.id} = "
                f'{{floor = "{spec}"}})')
        return {level: target for level in check.levels}
    if not isinstance(spec, Mapping) or not spec:
        raise BadOverride("must be a severity or a table of level = severity, floor, ceiling")
    mapping = {level: level for level in check.levels}
    for key, value in spec.items():
        if key in _BOUNDS:
            _severity(key, value)
        elif key in SEVERITIES:
            if key not in check.levels:
                raise BadOverride(f"{check.id} never reports {key} findings (it reports {_levels_text(check)})")
            mapping[key] = _severity(key, value)
        else:
            raise BadOverride(f"unknown key {key!r} (a level: {_levels_text(check)}; or floor, ceiling)")
    floor, ceiling = spec.get("floor"), spec.get("ceiling")
    if floor and ceiling and SEVERITY_RANK[floor] < SEVERITY_RANK[ceiling]:
        raise BadOverride(f"floor {floor} is above ceiling {ceiling}")
    for level, severity in mapping.items():
        if floor and SEVERITY_RANK[severity] > SEVERITY_RANK[floor]:
            severity = floor
        if ceiling and SEVERITY_RANK[severity] < SEVERITY_RANK[ceiling]:
            severity = ceiling
        mapping[level] = severity
    return mapping


def resolve_all(catalogue: Mapping[str, Check], overrides: Mapping[str, Any], *, strict: bool = False) -> Resolved:
    """Every override resolved (unknown check ids are left to the caller)."""
    return {cid: resolve(catalogue[cid], spec, strict=strict) for cid, spec in overrides.items() if cid in catalogue}


def apply(overrides: Resolved, check: str, severity: str) -> str:
    """The severity a finding of ``check`` at ``severity`` is reported with."""
    return overrides.get(check, {}).get(severity, severity)
