"""What every report of a ``check`` run says besides the findings: the database, the counts,
the baseline, the exit code.  The renderers (``report_table``, ``report_json``,
``report_prometheus``) stream the findings and ask :class:`Report` for the rest.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg

from auditor.audit.baseline import Baseline, Improved
from auditor.audit.streamed import StreamedFinding
from auditor.core.connection import Target
from auditor.core.detect import Generation
from auditor.core.errors import EXIT_CRITICAL, EXIT_OK, EXIT_WARNING
from auditor.core.fileio import PRIVATE, SHARED
from auditor.core.findings import SEVERITIES, Finding, at_least
from auditor.core.info import system_identifier

#: A finding as a report streams it: read on the client, or rendered by the server.
F = TypeVar("F", Finding, StreamedFinding)

REPORT_VERSION = 1
#: How many stale baseline entries a report lists (the count is always complete).
STALE_LISTED = 50
STALE_HINT = "remove them with `controller-audit baseline create` again"
IMPROVED_HINT = "record their new severity with `controller-audit baseline create` again"


def report_file_mode(fmt: str) -> int:
    """The mode of a report file: owner-only (0600) for every format that can hold data values
    (the JSON report's evidence quotes config values); 0644 for the Prometheus textfile, which
    holds counts only and is read by node_exporter."""
    return SHARED if fmt == "prometheus" else PRIVATE


def exit_code_for(by_severity: Counter[str] | dict[str, int], fail_on: str) -> int:
    """2 if a critical finding counts, else 1 if any finding at or above ``fail_on`` counts, else 0."""
    if fail_on == "never":
        return EXIT_OK
    counted = [s for s in SEVERITIES if at_least(s, fail_on) and by_severity.get(s, 0)]
    if "critical" in counted:
        return EXIT_CRITICAL
    return EXIT_WARNING if counted else EXIT_OK


def database_facts(conn: psycopg.Connection, generation: Generation, target: Target) -> dict[str, Any]:
    """The ``database`` object of a report (inside the audit's transaction)."""
    row = conn.execute(
        "SELECT current_database(), current_setting('server_version'), pg_is_in_recovery()"
    ).fetchone()
    assert row is not None
    return {
        "name": row[0],
        "server_version": row[1],
        "system_identifier": system_identifier(conn),
        "in_recovery": row[2],
        "migration": generation.migration,
        "migration_name": generation.migration_name,
        "target": target.describe(),
    }


@dataclass
class Report:
    """The counts of one run, filled in while its findings stream past."""

    checks: list[str]
    database: dict[str, Any]
    generation: str
    fail_on: str = "warning"
    baseline: Baseline | None = None
    apps_in_scope: tuple[str, ...] = ()
    #: Labels of every Prometheus series (``database`` and ``--label`` pairs).
    metric_labels: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    by_severity: Counter[str] = field(default_factory=Counter)
    by_check: dict[str, Counter[str]] = field(default_factory=dict)
    apps: set[str] = field(default_factory=set)
    suppressed: int = 0
    worse: int = 0  # findings the baseline accepted at a lower severity (reported as new)
    finished: float | None = None

    def screen(self, findings: Iterable[F]) -> Iterator[F]:
        """The findings not accepted by the baseline, counted as they pass; one that got worse
        since it was accepted is passed on marked with the severity it was accepted at."""
        for finding in findings:
            if self.baseline is not None:
                verdict, entry = self.baseline.judge(finding)
                if verdict in ("accepted", "improved"):
                    self.suppressed += 1
                    continue
                if verdict == "worse" and entry is not None and entry.severity is not None:
                    self.worse += 1
                    finding = finding.with_baseline(entry.severity, entry.first_seen)
            self.by_severity[finding.severity] += 1
            self.by_check.setdefault(finding.check, Counter())[finding.severity] += 1
            self.apps.add(finding.app_name or "")
            yield finding
        self.finished = time.monotonic()

    @property
    def total(self) -> int:
        return sum(self.by_severity.values())

    @property
    def duration(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.by_severity, self.fail_on)

    @property
    def apps_with_findings(self) -> int:
        return len(self.apps - {""})

    def stale_entries(self) -> list:
        """Baseline entries that matched nothing although their check ran."""
        if self.baseline is None:
            return []
        return self.baseline.stale(self.checks, self.apps_in_scope)

    def summary_line(self) -> str:
        """``3 critical, 2 warning, 5 info in 4 apps (13 checks, 0.21 s)``, or ``no findings (15 checks, 0.04 s)``."""
        ran = f"({len(self.checks)} check{'s' if len(self.checks) != 1 else ''}, {self.duration:.2f} s)"
        if not any(self.by_severity.get(s, 0) for s in SEVERITIES):
            return f"no {'new ' if self.baseline is not None else ''}findings {ran}"
        counts = ", ".join(f"{self.by_severity.get(s, 0)} {s}" for s in SEVERITIES)
        apps = self.apps_with_findings
        return f"{counts} in {apps} app{'s' if apps != 1 else ''} {ran}"

    def improved_entries(self) -> list[Improved]:
        """Accepted findings whose severity fell since they were accepted."""
        return [] if self.baseline is None else self.baseline.improved

    def baseline_lines(self) -> list[str]:
        """What the baseline did: suppressed, worse and improved findings, stale entries."""
        if self.baseline is None:
            return []
        lines = [f"{self.suppressed} known finding{'s' if self.suppressed != 1 else ''} suppressed by baseline "
                 f"{self.baseline.path}"]
        if self.worse:
            lines.append(f"{self.worse} accepted finding{'s' if self.worse != 1 else ''} got worse since accepted "
                         f"and {'are' if self.worse != 1 else 'is'} reported above (\"was ... when accepted\")")
        improved = self.improved_entries()
        if improved:
            verb = "finding is" if len(improved) == 1 else "findings are"
            lines.append(f"{len(improved)} accepted {verb} less severe than when accepted (improved); "
                         f"{IMPROVED_HINT}")
            lines += [f"  improved: {i.entry.check} {i.entry.app or '(database)'} {i.entry.object_label}: "
                      f"{i.entry.severity} when accepted, {i.severity} now" for i in improved[:STALE_LISTED]]
        stale = self.stale_entries()
        if stale:
            verb = "entry no longer matches" if len(stale) == 1 else "entries no longer match"
            lines.append(f"{len(stale)} baseline {verb}; {STALE_HINT}")
            lines += [f"  stale: {e.check} {e.app or '(database)'} {e.object_label}" for e in stale[:STALE_LISTED]]
        return lines

    def summary(self) -> dict[str, Any]:
        """The ``summary`` object of the JSON report."""
        data: dict[str, Any] = {
            "total": self.total,
            "by_severity": {s: self.by_severity.get(s, 0) for s in SEVERITIES},
            "by_check": {c: sum(self.by_check.get(c, Counter()).values()) for c in self.checks},
            "checks_run": list(self.checks),
            "apps_with_findings": self.apps_with_findings,
            "duration_seconds": round(self.duration, 3),
            "fail_on": self.fail_on,
            "exit_code": self.exit_code,
            "baseline": None,
        }
        if self.baseline is not None:
            stale = self.stale_entries()
            improved = self.improved_entries()
            data["baseline"] = {
                "file": self.baseline.path,
                "entries": len(self.baseline.entries),
                "suppressed": self.suppressed,
                "stale": len(stale),
                "stale_entries": [
                    {"check": e.check, "app": e.app, "object": e.object_label, "first_seen": e.first_seen}
                    for e in stale[:STALE_LISTED]
                ],
                "worse": self.worse,
                "improved": len(improved),
                "improved_entries": [
                    {"check": i.entry.check, "app": i.entry.app, "object": i.entry.object_label,
                     "first_seen": i.entry.first_seen, "accepted_severity": i.entry.severity, "severity": i.severity}
                    for i in improved[:STALE_LISTED]
                ],
            }
        return data
