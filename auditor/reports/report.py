"""What every report of a ``check`` run says besides the findings: the database, the counts,
the baseline, the exit code.  The renderers (``report_table``, ``report_json``,
``report_prometheus``) stream the findings and ask :class:`Report` for the rest.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg

from auditor.audit.baseline import Baseline, Entry, Improved
from auditor.audit.spools import Spooled
from auditor.audit.streamed import StreamedFinding
from auditor.core.connection import Target
from auditor.core.detect import Generation
from auditor.core.errors import EXIT_CRITICAL, EXIT_OK, EXIT_WARNING
from auditor.core.fileio import PRIVATE, SHARED
from auditor.core.findings import SEVERITIES, Counted, Finding, at_least
from auditor.core.info import system_identifier

#: A finding as a report streams it: read on the client, or rendered by the server.
F = TypeVar("F", Finding, StreamedFinding)

REPORT_VERSION = 1
#: How many stale baseline entries a report lists (the count is always complete).
STALE_LISTED = 50
STALE_HINT = "remove them with `controller-audit baseline create` again"
IMPROVED_HINT = "record their new severity with `controller-audit baseline create` again"
#: How many apps ``summary.top_hazard_apps`` (and the table's footer) name.
TOP_HAZARD_APPS = 10
#: The severity of hazards (normal sharing inside an app and other findings that break nothing now).
HAZARD = "info"


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
    #: ``--min-severity`` as asked, and the lowest severity listed (lower when ``--fail-on`` is).
    min_severity: str = "info"
    listed_from: str = "info"
    #: What the server counted but did not list (below ``listed_from``), per check, severity and app;
    #: appended while the findings stream, folded into the counts when they end.
    hidden: list[Counted] = field(default_factory=list)
    listed_by_severity: Counter[str] = field(default_factory=Counter)
    #: (app name, check) -> hazards (``info`` findings, listed or not).
    hazards: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: Filled when the findings end (:meth:`_accept_unlisted`): the (check, app) pairs with findings
    #: not listed, and the baseline entries that may match one of them but were not needed.
    unlisted: set[tuple[str, str | None]] = field(default_factory=set)
    unjudged: list[Entry] = field(default_factory=list)
    #: Findings listed without passing through :meth:`screen` (no baseline to judge them): their lines
    #: spooled by the audit's second backend, appended while the findings stream, counted when they end.
    spooled: list[Spooled] = field(default_factory=list)

    def screen(self, findings: Iterable[F]) -> Iterator[F]:
        """The findings not accepted by the baseline, counted as they pass; one that got worse
        since it was accepted is passed on marked with the severity it was accepted at."""
        # Tallied per (check, severity, app) as they pass (one dict update a finding), folded into
        # the counts when they end: at ~500k findings, counting each one into every counter costs seconds.
        listed: Counter[tuple[str, str, str | None]] = Counter()
        for finding in findings:
            if self.baseline is not None:
                verdict, entry = self.baseline.judge(finding)
                if verdict in ("accepted", "improved"):
                    self.suppressed += 1
                    continue
                if verdict == "worse" and entry is not None and entry.severity is not None:
                    self.worse += 1
                    finding = finding.with_baseline(entry.severity, entry.first_seen)
            listed[(finding.check, finding.severity, finding.app_name)] += 1
            yield finding
        assert self.baseline is None or not self.spooled, "a baseline judges every finding listed"
        for spooled in self.spooled:
            listed.update(spooled.counts)
        self.listed_by_severity.update(
            self._tally((check, severity, app_name, count) for (check, severity, app_name), count in listed.items()))
        self._accept_unlisted()
        self._tally(self.hidden)
        self.finished = time.monotonic()

    def _accept_unlisted(self) -> None:
        """With a baseline, the findings counted but not listed (they have no key) are accepted by
        number: per check and app, as many as the baseline holds entries that matched no listed
        finding.  What is left counts as not listed; the entries left are neither stale nor matched
        (:meth:`unjudged_entries`).  ``--min-severity info`` judges every finding by its key."""
        self.unlisted = {(c.check, c.app_name) for c in self.hidden}
        self.unjudged = []
        if self.baseline is None or not self.hidden:
            return
        pool: dict[tuple[str, str | None], list] = {}
        for entry in self.baseline.unmatched(self.checks, self.apps_in_scope):
            pool.setdefault((entry.check, entry.app), []).append(entry)
        left = []
        for counted in self.hidden:
            entries = pool.get((counted.check, counted.app_name), [])
            taken = min(counted.findings, len(entries))
            del entries[:taken]
            self.suppressed += taken
            if counted.findings > taken:
                left.append(counted._replace(findings=counted.findings - taken))
        self.hidden[:] = left
        self.unjudged = [e for pair in self.unlisted for e in pool.get(pair, [])]

    def _tally(self, rows: Iterable[tuple[str, str, str | None, int]]) -> dict[str, int]:
        """Count ``rows`` of (check, severity, app name, findings) into the counts: summed in plain dicts
        first, then once per key into the Counters (a Counter update per row, and a Counter made per
        row by ``setdefault``, cost ~0.1 s of the default report's ~30k rows counted by the server).
        Returns the findings of ``rows`` by severity."""
        by_severity: dict[str, int] = {}
        by_check: dict[tuple[str, str], int] = {}
        hazards: dict[tuple[str, str], int] = {}
        apps = self.apps
        for check, severity, app_name, count in rows:
            by_severity[severity] = by_severity.get(severity, 0) + count
            by_check[(check, severity)] = by_check.get((check, severity), 0) + count
            apps.add(app_name or "")
            if severity == HAZARD and app_name:
                hazards[(app_name, check)] = hazards.get((app_name, check), 0) + count
        self.by_severity.update(by_severity)
        for (check, severity), count in by_check.items():
            self.by_check.setdefault(check, Counter())[severity] += count
        self.hazards.update(hazards)
        return by_severity

    @property
    def not_listed(self) -> Counter[str]:
        """Findings counted but not listed, by severity."""
        counts: Counter[str] = Counter()
        for counted in self.hidden:
            counts[counted.severity] += counted.findings
        return counts

    def not_listed_by_check(self) -> dict[str, Counter[str]]:
        """Findings counted but not listed, by check and severity (catalogue order)."""
        counts: dict[str, Counter[str]] = {}
        for counted in self.hidden:
            counts.setdefault(counted.check, Counter())[counted.severity] += counted.findings
        return {c: counts[c] for c in self.checks if c in counts}

    def top_hazard_apps(self, limit: int = TOP_HAZARD_APPS) -> list[tuple[str, int, dict[str, int]]]:
        """The apps with the most hazards: (name, hazards, hazards by check), most first."""
        totals: dict[str, int] = {}
        for (app, _), count in self.hazards.items():
            totals[app] = totals.get(app, 0) + count
        # The first ``limit`` of the whole order (names are unique), without sorting every app.
        ranked = heapq.nsmallest(limit, totals.items(), key=lambda item: (-item[1], item[0]))
        order = {c: i for i, c in enumerate(self.checks)}
        per_app: dict[str, dict[str, int]] = {app: {} for app, _ in ranked}
        for (app, check), count in self.hazards.items():
            if app in per_app:
                per_app[app][check] = count
        return [(app, total, dict(sorted(per_app[app].items(), key=lambda kv: order.get(kv[0], len(order)))))
                for app, total in ranked]

    def unlisted_pairs(self) -> set[tuple[str, str | None]]:
        """(check, app name) of every finding counted but not listed (before a baseline accepted some)."""
        return self.unlisted or {(c.check, c.app_name) for c in self.hidden}

    def footer_lines(self) -> list[str]:
        """What was counted but not listed, per check, and the apps with the most hazards, with the
        flag that lists them (the table's footer, above its summary line): three lines."""
        hidden = self.not_listed
        if not sum(hidden.values()):
            return []
        levels = [s for s in SEVERITIES if hidden.get(s)]
        by_check = sorted(self.not_listed_by_check().items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
        per_check = ", ".join(
            f"{check} {sum(by.values())}" if len(levels) == 1
            else f"{check} " + " + ".join(f"{by[s]} {s}" for s in SEVERITIES if by.get(s))
            for check, by in by_check)
        counts = ", ".join(f"{hidden[s]} {s}" for s in levels)
        lines = [f"not listed (below --min-severity {self.listed_from}): {counts}; "
                 f"--min-severity {levels[-1]} lists them",
                 f"  by check: {per_check}"]
        top = self.top_hazard_apps()
        if top:
            lines.append("  apps with the most hazards: " + ", ".join(f"{app} {n}" for app, n, _ in top)
                         + " (controller-audit explain APP)")
        return lines

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
        """Baseline entries that matched nothing although their check ran (and could not match a
        finding counted but not listed)."""
        if self.baseline is None:
            return []
        return self.baseline.stale(self.checks, self.apps_in_scope, self.unlisted_pairs())

    def unjudged_entries(self) -> list:
        """Unmatched baseline entries whose check and app have findings counted but not listed."""
        if self.baseline is None:
            return []
        return list(self.unjudged)

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
        # Entries accepted below the floor are expected to match nothing listed; one accepted at a
        # listed severity may have fallen below it: say so, since it may be improved or gone.
        unjudged = [e for e in self.unjudged_entries() if e.severity is None or at_least(e.severity, self.listed_from)]
        if unjudged:
            verb = "entry matches" if len(unjudged) == 1 else "entries match"
            lines.append(f"{len(unjudged)} baseline {verb} no listed finding but may have fallen below "
                         f"--min-severity {self.listed_from} (not judged; --min-severity info judges every entry)")
        stale = self.stale_entries()
        if stale:
            verb = "entry no longer matches" if len(stale) == 1 else "entries no longer match"
            lines.append(f"{len(stale)} baseline {verb}; {STALE_HINT}")
            lines += [f"  stale: {e.check} {e.app or '(database)'} {e.object_label}" for e in stale[:STALE_LISTED]]
        return lines

    def summary(self) -> dict[str, Any]:
        """The ``summary`` object of the JSON report."""
        not_listed = self.not_listed  # one pass over the counted rows
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
            "min_severity": self.min_severity,
            "listed": {"from": self.listed_from, "total": sum(self.listed_by_severity.values()),
                       "by_severity": {s: self.listed_by_severity.get(s, 0) for s in SEVERITIES}},
            "not_listed": {"total": sum(not_listed.values()),
                           "by_severity": {s: not_listed.get(s, 0) for s in SEVERITIES}},
            "by_check_severity": {c: {s: self.by_check.get(c, Counter()).get(s, 0) for s in SEVERITIES}
                                  for c in self.checks},
            "top_hazard_apps": [{"app": app, "hazards": n, "by_check": by} for app, n, by in self.top_hazard_apps()],
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
                "unjudged": len(self.unjudged_entries()),
                "improved": len(improved),
                "improved_entries": [
                    {"check": i.entry.check, "app": i.entry.app, "object": i.entry.object_label,
                     "first_seen": i.entry.first_seen, "accepted_severity": i.entry.severity, "severity": i.severity}
                    for i in improved[:STALE_LISTED]
                ],
            }
        return data
