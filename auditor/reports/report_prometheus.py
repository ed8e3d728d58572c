"""The node_exporter textfile-collector report: counts per check and severity, run health.

Every series carries a ``database`` label (``host:port/dbname`` of the target: no user, no
password) and the ``--label KEY=VALUE`` pairs (which may replace ``database``).

When the audit cannot run, the file still says so (``controller_audit_up 0``,
``controller_audit_last_run_success 0``) and keeps the per-check series of the last successful
run, read back from the file being replaced, so an alert on them does not resolve while the
database is down; ``controller_audit_last_success_timestamp_seconds`` says how old they are.
With no earlier file (or a FIFO or device as output) nothing is known: the per-check series
are absent and only the run-health series are written.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from typing import TextIO

from auditor.audit.streamed import StreamedFinding
from auditor.core.connection import Target
from auditor.core.findings import SEVERITIES, Finding
from auditor.reports.report import Report

PREFIX = "controller_audit"
#: The label that says which database, unless ``--label database=...`` names it.
DATABASE_LABEL = "database"
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED = ("check", "severity", "app_name")
#: Series carried over from the last successful run when an audit fails.
_CARRIED = ("findings", "not_listed_findings", "app_hazards", "baseline_suppressed_findings",
            "baseline_stale_entries", "baseline_worse_findings", "baseline_improved_findings", "last_success_timestamp_seconds")
_HELP = {
    "up": "Whether the last audit could read the database (1) or not (0).",
    "findings": "Findings of the last successful audit by check and severity (after the baseline).",
    "not_listed_findings": "Findings counted but not listed (below --min-severity) by severity; included in "
                           "controller_audit_findings.",
    "app_hazards": "Hazards (info findings) of the apps with the most of them, by app and check.",
    "baseline_suppressed_findings": "Findings accepted by the baseline file (0 without one).",
    "baseline_stale_entries": "Baseline entries that no longer match any finding.",
    "baseline_worse_findings": "Findings the baseline accepted at a lower severity (reported as new).",
    "baseline_improved_findings": "Accepted findings whose severity fell since they were accepted.",
    "last_run_success": "Whether the last audit ran to completion (1) or could not audit (0).",
    "last_run_duration_seconds": "How long the last audit took.",
    "last_run_timestamp_seconds": "When the last audit finished (Unix time).",
    "last_success_timestamp_seconds": "When the last successful audit finished (Unix time): the age of the "
                                      "findings series.",
}
_SAMPLE = re.compile(rf"^{PREFIX}_([a-z_]+)(\{{.*\}})?\s+(\S+)\s*$")


def parse_labels(values: tuple[str, ...]) -> dict[str, str]:
    """``KEY=VALUE`` pairs (``--label``) as a dict; ValueError for a malformed pair."""
    labels: dict[str, str] = {}
    for raw in values:
        key, sep, value = raw.partition("=")
        if not sep or not _LABEL_NAME.match(key) or key.startswith("__"):
            raise ValueError(f"{raw!r} is not KEY=VALUE with a Prometheus label name as KEY")
        if key in _RESERVED:
            raise ValueError(f"{key!r} is a label of the findings series itself")
        labels[key] = value
    return labels


def metric_labels(target: Target | None, extra: Mapping[str, str]) -> dict[str, str]:
    """``database`` from the target (unless ``extra`` names it), then ``extra``."""
    labels: dict[str, str] = {}
    database = target.database_label() if target is not None else None
    if database is not None:
        labels[DATABASE_LABEL] = database
    labels.update(extra)
    return labels


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"


def _metric(name: str, samples: list[tuple[str, str]]) -> str:
    """HELP and TYPE, then ``samples`` of (label text, value text)."""
    lines = [f"# HELP {PREFIX}_{name} {_HELP[name]}", f"# TYPE {PREFIX}_{name} gauge"]
    lines += [f"{PREFIX}_{name}{labels} {value}" for labels, value in samples]
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _run_metrics(labels: Mapping[str, str], success: bool, duration: float, timestamp: float) -> str:
    own = _labels(labels)
    return (
        _metric("last_run_success", [(own, str(int(success)))])
        + _metric("last_run_duration_seconds", [(own, _number(round(duration, 3)))])
        + _metric("last_run_timestamp_seconds", [(own, _number(round(timestamp, 3)))])
    )


def write_prometheus(out: TextIO, report: Report, findings: Iterable[Finding | StreamedFinding]) -> None:
    """Count the findings, then write every check x severity series (zeros included)."""
    for _ in findings:
        pass
    labels = report.metric_labels
    own = _labels(labels)
    samples = []
    for check in report.checks:
        counts: Mapping[str, int] = report.by_check.get(check, {})
        for severity in SEVERITIES:
            series = _labels({**labels, "check": check, "severity": severity})
            samples.append((series, str(counts.get(severity, 0))))
    now = time.time()
    text = _metric("up", [(own, "1")])
    text += _metric("findings", samples)
    hidden = report.not_listed
    text += _metric("not_listed_findings", [(_labels({**labels, "severity": s}), str(hidden.get(s, 0)))
                                            for s in SEVERITIES])
    hazards = [(_labels({**labels, "app_name": app, "check": check}), str(count))
               for app, _, by in report.top_hazard_apps() for check, count in by.items()]
    if hazards:
        text += _metric("app_hazards", hazards)
    text += _metric("baseline_suppressed_findings", [(own, str(report.suppressed))])
    text += _metric("baseline_stale_entries", [(own, str(len(report.stale_entries())))])
    text += _metric("baseline_worse_findings", [(own, str(report.worse))])
    text += _metric("baseline_improved_findings", [(own, str(len(report.improved_entries())))])
    text += _run_metrics(labels, True, report.duration, now)
    text += _metric("last_success_timestamp_seconds", [(own, _number(round(now, 3)))])
    out.write(text)


def carried_series(previous: str | None) -> dict[str, list[tuple[str, str]]]:
    """The per-check and baseline series of an earlier textfile, by metric, as written."""
    carried: dict[str, list[tuple[str, str]]] = {}
    for line in (previous or "").splitlines():
        match = _SAMPLE.match(line)
        if match and match.group(1) in _CARRIED:
            carried.setdefault(match.group(1), []).append((match.group(2) or "", match.group(3)))
    return carried


def _previous_labels(previous: str | None) -> dict[str, str]:
    """The labels of the earlier file's run-health series (when the target is unknown now)."""
    for line in (previous or "").splitlines():
        match = _SAMPLE.match(line)
        if match and match.group(1) == "last_run_success" and match.group(2):
            return dict(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"', match.group(2)))
    return {}


def failure_text(duration: float, labels: Mapping[str, str] | None = None, previous: str | None = None) -> str:
    """The file written when the audit could not run: ``up`` and success 0, so alerts fire, and
    the series of the last successful run (from ``previous``, the file being replaced) kept."""
    own_labels = dict(labels) if labels else {}
    if DATABASE_LABEL not in own_labels:
        own_labels = {**_previous_labels(previous), **own_labels}
    own = _labels(own_labels)
    text = _metric("up", [(own, "0")])
    carried = carried_series(previous)
    for name in _CARRIED:
        if name != "last_success_timestamp_seconds" and carried.get(name):
            text += _metric(name, carried[name])
    text += _run_metrics(own_labels, False, duration, time.time())
    if carried.get("last_success_timestamp_seconds"):
        text += _metric("last_success_timestamp_seconds", carried["last_success_timestamp_seconds"])
    return text
