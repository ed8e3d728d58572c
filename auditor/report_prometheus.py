"""The node_exporter textfile-collector report: counts per check and severity, run health."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TextIO

from auditor.findings import SEVERITIES, Finding
from auditor.report import Report

PREFIX = "controller_audit"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _metric(name: str, help_text: str, samples: list[tuple[str, float]]) -> str:
    lines = [f"# HELP {PREFIX}_{name} {help_text}", f"# TYPE {PREFIX}_{name} gauge"]
    lines += [f"{PREFIX}_{name}{labels} {value!r}" for labels, value in samples]
    return "\n".join(lines) + "\n"


def _run_metrics(success: bool, duration: float, timestamp: float) -> str:
    return (
        _metric("last_run_success", "Whether the last audit ran to completion (1) or could not audit (0).",
                [("", int(success))])
        + _metric("last_run_duration_seconds", "How long the last audit took.", [("", round(duration, 3))])
        + _metric("last_run_timestamp_seconds", "When the last audit finished (Unix time).",
                  [("", round(timestamp, 3))])
    )


def write_prometheus(out: TextIO, report: Report, findings: Iterable[Finding]) -> None:
    """Count the findings, then write every check x severity series (zeros included)."""
    for _ in findings:
        pass
    samples = []
    for check in report.checks:
        counts = report.by_check.get(check, {})
        for severity in SEVERITIES:
            samples.append((f'{{check="{_label(check)}",severity="{severity}"}}', counts.get(severity, 0)))
    text = _metric("findings", "Findings of the last audit by check and severity (after the baseline).", samples)
    stale = len(report.stale_entries())
    text += _metric("baseline_suppressed_findings", "Findings accepted by the baseline file (0 without one).",
                    [("", report.suppressed)])
    text += _metric("baseline_stale_entries", "Baseline entries that no longer match any finding.", [("", stale)])
    text += _run_metrics(True, report.duration, time.time())
    out.write(text)


def failure_text(duration: float) -> str:
    """The file written when the audit could not run: success 0, so alerts fire."""
    return _run_metrics(False, duration, time.time())
