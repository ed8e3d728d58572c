"""Baselines: accepted findings, so that a check reports only new damage.

A baseline file is JSON (``{"version": 1, "created": ..., "entries": [...]}``); each entry
is one accepted finding, identified by :attr:`auditor.core.findings.Finding.key`, with the
severity it had when accepted.  A finding whose severity rose above that is not accepted: it
is reported as new ("was info when accepted"); one whose severity fell is accepted and
reported as improved.  Entries of older files have no severity and accept the finding at any
severity.  Entries that no longer match any finding (the damage was repaired) are reported as
stale, so the file does not rot.

A report that lists only from ``--min-severity`` up judges the findings it lists by key; the
others are counted by the server, without keys, and the report accepts them by number per check
and app (:meth:`auditor.reports.report.Report.screen`).  An entry that matches no listed finding
is stale only when no finding of its check and app was counted below the listing floor.
Run with ``--min-severity info`` to judge every entry.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any, Literal

from auditor.audit.streamed import StreamedFinding
from auditor.core.errors import BadInput
from auditor.core.fileio import atomic_open
from auditor.core.findings import SEVERITIES, SEVERITY_RANK, Finding

BASELINE_VERSION = 1


@dataclass(frozen=True)
class Entry:
    """What a report needs to say about one accepted finding."""

    check: str
    app: str | None
    object_label: str
    first_seen: str
    severity: str | None = None  # when accepted; None in files written before severities were kept


@dataclass(frozen=True)
class Improved:
    """An accepted finding whose severity fell since it was accepted."""

    entry: Entry
    severity: str  # today's


#: What the baseline says about one finding.
Verdict = Literal["new", "accepted", "improved", "worse"]


@dataclass
class Baseline:
    """The accepted findings of a baseline file, and which of them matched this run."""

    path: str
    entries: dict[str, Entry]
    matched: set[str] = field(default_factory=set)
    improved: list[Improved] = field(default_factory=list)

    def judge(self, finding: Finding | StreamedFinding) -> tuple[Verdict, Entry | None]:
        """Whether ``finding`` is new, accepted, accepted but less severe than when accepted
        (``improved``), or more severe (``worse``: reported as new); remembers the match."""
        entry = self.entries.get(finding.key)
        if entry is None:
            return "new", None
        self.matched.add(finding.key)
        if entry.severity is None or entry.severity == finding.severity:
            return "accepted", entry
        if SEVERITY_RANK[finding.severity] < SEVERITY_RANK[entry.severity]:
            return "worse", entry
        self.improved.append(Improved(entry, finding.severity))
        return "improved", entry

    def accepts(self, finding: Finding | StreamedFinding) -> bool:
        """Whether ``finding`` is accepted (and remember that its entry still matches)."""
        return self.judge(finding)[0] in ("accepted", "improved")

    def unmatched(self, checks_run: Iterable[str], apps: Iterable[str] = ()) -> list[Entry]:
        """Entries that matched no listed finding although their check ran on their app."""
        ran = set(checks_run)
        scope = set(apps)
        return [
            entry for key, entry in self.entries.items()
            if key not in self.matched and entry.check in ran and (not scope or entry.app in scope)
        ]

    def stale(self, checks_run: Iterable[str], apps: Iterable[str] = (),
              unlisted: Collection[tuple[str, str | None]] = ()) -> list[Entry]:
        """Entries that matched nothing although their check ran on their app.  ``unlisted``: the
        (check, app) pairs with findings counted but not listed (below ``--min-severity``): an entry of
        such a pair may match one of them, so it is not judged stale (see :meth:`unjudged`)."""
        hidden = set(unlisted)
        return [e for e in self.unmatched(checks_run, apps) if (e.check, e.app) not in hidden]

    def unjudged(self, checks_run: Iterable[str], apps: Iterable[str] = (),
                 unlisted: Collection[tuple[str, str | None]] = ()) -> list[Entry]:
        """Unmatched entries that may match a finding counted but not listed: neither matched nor stale."""
        hidden = set(unlisted)
        return [e for e in self.unmatched(checks_run, apps) if (e.check, e.app) in hidden]


def _malformed(path: str, problem: str) -> BadInput:
    return BadInput(f"baseline file {path} is malformed: {problem}", kind="bad baseline")


def _object_label(obj: Any) -> str:
    if isinstance(obj, dict):
        return f"{obj.get('table', '?')} {obj.get('uuid') or obj.get('name') or '?'}"
    return str(obj)


def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    """Read a baseline file; a missing or malformed one is :class:`BadInput`."""
    name = str(path)
    if not name:  # `--baseline "$UNSET"`: refused, never an audit without the baseline
        raise BadInput("the baseline path is empty; give the file baseline create wrote", kind="bad baseline")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise BadInput(f"baseline file {name} does not exist (create it with: controller-audit baseline create "
                       f"{name})", kind="bad baseline") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _malformed(name, f"not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("version") != BASELINE_VERSION:
        raise _malformed(name, f"expected an object with \"version\": {BASELINE_VERSION}")
    raw = data.get("entries")
    if not isinstance(raw, list):
        raise _malformed(name, "\"entries\" must be a list")
    entries: dict[str, Entry] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str) or not isinstance(item.get("check"), str):
            raise _malformed(name, f"entry {i} needs a string \"key\" and \"check\"")
        app = item.get("app")
        app_name = app.get("name") if isinstance(app, dict) else app
        severity = item.get("severity")
        if severity is not None and severity not in SEVERITIES:
            raise _malformed(name, f"entry {i} has severity {severity!r}, not one of {', '.join(SEVERITIES)}")
        entries[item["key"]] = Entry(item["check"], app_name, _object_label(item.get("object")),
                                     str(item.get("first_seen", "")), severity)
    return Baseline(name, entries)


def _entry(finding: Finding, first_seen: str) -> dict[str, Any]:
    data = finding.to_json()
    return {"key": finding.key, "check": finding.check, "severity": finding.severity, "app": data["app"],
            "object": data["object"], "message": finding.message, "first_seen": first_seen}


def write_baseline(
    path: str | os.PathLike[str],
    findings: Iterable[Finding],
    previous: Baseline | None = None,
    now: datetime | None = None,
) -> tuple[int, int]:
    """Write every finding as accepted, atomically and streaming.

    Entries already in ``previous`` keep their first-seen time.  Returns (entries, kept).
    """
    stamp = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    count = kept = 0
    with atomic_open(path) as out:
        out.write(f'{{"version": {BASELINE_VERSION}, "created": {json.dumps(stamp)}, "entries": [\n')
        seen: set[str] = set()
        for finding in findings:
            if finding.key in seen:
                continue
            seen.add(finding.key)
            first_seen = stamp
            if previous is not None and finding.key in previous.entries:
                first_seen = previous.entries[finding.key].first_seen or stamp
                kept += 1
            _write_entry(out, _entry(finding, first_seen), first=count == 0)
            count += 1
        out.write("\n]}\n")
    return count, kept


def _write_entry(out: IO[str], entry: dict[str, Any], first: bool) -> None:
    if not first:
        out.write(",\n")
    out.write(json.dumps(entry, sort_keys=False, default=str))
