"""The Nagios / Icinga plugin report (the monitoring-plugins development guidelines).

The first line is the plugin's status and its performance data::

    CONTROLLER-AUDIT CRITICAL - 2 critical, 3 warning, 15 info in 6 apps | critical=2;;0;0 warning=3;0;;0 ...

then the details, one line per finding, most severe first (critical and warning findings, and
info ones when ``--fail-on info`` makes them count), at most :data:`DETAIL_LINES` of them, then
what the baseline did.  The status word is the exit code's (0 OK, 1 WARNING, 2 CRITICAL);
when the audit cannot run, :func:`unknown_line` is the whole output and the exit code is 3.

Performance data (``'label'=value[UOM];[warn];[crit];[min];[max]``): one value per severity,
whose thresholds are the ``--fail-on`` rule (range ``0``: more than zero is a problem), the apps
with findings, the findings counted but not listed (below ``--min-severity``; the severity values
include them), the findings a baseline suppressed, its stale entries, and the audit's duration
in seconds.  Every label is present on every run, so graphing add-ons keep one data source each.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from auditor.core.findings import SEVERITIES, Finding, at_least
from auditor.core.text import escape
from auditor.reports.report import Report

#: The service name that starts the status line.
SERVICE = "CONTROLLER-AUDIT"
#: Status words by exit code (the monitoring-plugins convention).
STATES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
#: At most this many finding lines follow the status line (Nagios keeps the first few KB of
#: a plugin's output; ``controller-audit check`` lists every finding).
DETAIL_LINES = 25
#: The threshold range that is exceeded by any value above zero.
_ABOVE_ZERO = "0"


def _plain(text: str) -> str:
    """One line of plugin output: control characters escaped, and ``|`` (which starts the
    performance data wherever it appears) shown as ``\\x7c``."""
    return escape(text).replace("|", "\\x7c")


def _thresholds(severity: str, fail_on: str) -> tuple[str, str]:
    """(warn, crit) ranges of the ``severity`` count under ``--fail-on``."""
    if fail_on == "never" or not at_least(severity, fail_on):
        return "", ""
    return ("", _ABOVE_ZERO) if severity == "critical" else (_ABOVE_ZERO, "")


def perfdata(report: Report) -> str:
    """The performance data of a completed run (the part of the status line after ``|``)."""
    values = []
    for severity in SEVERITIES:
        warn, crit = _thresholds(severity, report.fail_on)
        values.append(f"{severity}={report.by_severity.get(severity, 0)};{warn};{crit};0")
    values.append(f"apps={report.apps_with_findings};;;0")
    values.append(f"unlisted={sum(report.not_listed.values())};;;0")
    values.append(f"suppressed={report.suppressed};;;0")
    values.append(f"stale={len(report.stale_entries())};;;0")
    values.append(f"time={report.duration:.3f}s;;;0")
    return " ".join(values)


def status_text(report: Report) -> str:
    """``2 critical, 3 warning, 15 info in 6 apps`` (and what the baseline accepted)."""
    text = ", ".join(f"{report.by_severity.get(s, 0)} {s}" for s in SEVERITIES)
    apps = report.apps_with_findings
    if apps:
        text += f" in {apps} app{'s' if apps != 1 else ''}"
    if report.baseline is not None:
        text += f", {report.suppressed} accepted by baseline"
    return text


def _detailed(severity: str, fail_on: str) -> bool:
    """Whether findings of ``severity`` get a detail line: critical and warning always, info
    only when ``--fail-on info`` counts it."""
    return severity != "info" or fail_on == "info"


def _detail(finding: Finding) -> str:
    where = f"app {finding.app_name}" if finding.app_name else "database"
    line = f"{finding.severity.upper()} {finding.check} {where}: {finding.message}"
    if finding.baseline is not None:
        line += f" (was {finding.baseline['accepted_severity']} when accepted)"
    return _plain(line)


def write_nagios(out: TextIO, report: Report, findings: Iterable[Finding]) -> None:
    """Count ``findings`` (ordered most severe first), then write the status line with its
    performance data, the first :data:`DETAIL_LINES` findings and the baseline's lines."""
    details: list[str] = []
    hidden = 0
    for finding in findings:
        if not _detailed(finding.severity, report.fail_on):
            continue
        if len(details) < DETAIL_LINES:
            details.append(_detail(finding))
        else:
            hidden += 1
    state = STATES[report.exit_code]
    out.write(f"{SERVICE} {state} - {_plain(status_text(report))} | {perfdata(report)}\n")
    for line in details:
        out.write(line + "\n")
    if hidden:
        out.write(f"... and {hidden} more (controller-audit check lists every finding)\n")
    for line in report.baseline_lines():
        out.write(_plain(line) + "\n")


def unknown_line(error: str) -> str:
    """The whole output of a run that could not audit: ``CONTROLLER-AUDIT UNKNOWN - <error>``
    (``error`` is the redacted one-line message also printed on stderr)."""
    return f"{SERVICE} UNKNOWN - {_plain(error)}\n"
