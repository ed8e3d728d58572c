"""Findings: what a check reports about one object, with the evidence to verify it by hand."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

SEVERITIES: tuple[str, ...] = ("critical", "warning", "info")
SEVERITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(SEVERITIES)}


def at_least(severity: str, threshold: str) -> bool:
    """Whether ``severity`` is as serious as ``threshold`` or more."""
    return SEVERITY_RANK[severity] <= SEVERITY_RANK[threshold]


def lowest(*severities: str) -> str:
    """The least serious of ``severities``."""
    return max(severities, key=lambda s: SEVERITY_RANK[s])


class Counted(NamedTuple):
    """Findings a report counts but does not list (below its ``--min-severity``): how many findings
    of one check at one severity one app has (``app_name`` None: database-level findings)."""

    check: str
    severity: str
    app_name: str | None
    findings: int


def _looks_like_uuid(value: str) -> bool:
    return len(value) == 36 and value.count("-") == 4


@dataclass(frozen=True)
class Finding:
    """One piece of damage (or hazard) in one object.

    ``object_id`` is a row uuid, or a name where the object has none (a constraint, an app).
    ``related`` lists the rows that make the finding (e.g. the releases sharing a config);
    ``evidence`` holds the timestamps and versions that make it checkable by hand.
    """

    check: str
    severity: str
    app_uuid: str | None
    app_name: str | None
    object_table: str
    object_id: str
    message: str
    related: list[dict[str, Any]] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    #: Set when a baseline accepted this finding at a lower severity: ``{"accepted_severity",
    #: "first_seen"}`` (the finding got worse, so it is reported as new).
    baseline: dict[str, str] | None = field(default=None, compare=False)
    #: The repair that fixes this finding (``plan --repair ID``): its check's, unless ``manual``.
    repair: str | None = field(default=None, compare=False)
    #: Why this finding must be fixed by hand although its check has a repair (None: it need not).
    manual: str | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        """Identity that survives re-runs and reordering: check, app, object."""
        raw = "\x1f".join((self.check, self.app_name or "", self.object_table, self.object_id))
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def object_json(self) -> dict[str, Any]:
        """``{"table", "uuid"}`` for a row; ``{"table", "name"}`` for a constraint or the like."""
        if _looks_like_uuid(self.object_id):
            return {"table": self.object_table, "uuid": self.object_id}
        return {"table": self.object_table, "name": self.object_id}

    def with_baseline(self, accepted_severity: str, first_seen: str) -> Finding:
        """This finding, marked as accepted at ``accepted_severity`` (it is worse now)."""
        return replace(self, baseline={"accepted_severity": accepted_severity, "first_seen": first_seen})

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape of a finding (report format version 1)."""
        data = {
            "check": self.check,
            "severity": self.severity,
            "app": {"id": self.app_uuid, "name": self.app_name} if self.app_uuid or self.app_name else None,
            "object": self.object_json(),
            "related": self.related,
            "message": self.message,
            "evidence": self.evidence,
            "key": self.key,
        }
        if self.baseline is not None:
            data["baseline"] = self.baseline
        return data

    def json_text(self) -> str:
        """:meth:`to_json` as one line of text."""
        return json.dumps(self.to_json(), default=str)
