"""``controller-audit check``: run the catalogue and report (table, JSON, Prometheus, Nagios, HTML)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO, cast

import click
import psycopg

from auditor.audit import open_audit
from auditor.audit.baseline import load_baseline
from auditor.audit.listing import Listing
from auditor.audit.streamed import Shape
from auditor.cli import params
from auditor.core.errors import AuditorError, BadInput
from auditor.core.fileio import atomic_open, atomic_write, check_output, is_stdout, read_existing
from auditor.core.malloc import keep_freed_memory
from auditor.core.messages import failure_line
from auditor.core.settings import OPTION_BY_NAME, Settings
from auditor.reports.progress import Progress
from auditor.reports.report import Report, database_facts, report_file_mode
from auditor.reports.report_json import write_json
from auditor.reports.report_nagios import unknown_line, write_nagios
from auditor.reports.report_prometheus import failure_text, metric_labels, write_prometheus

#: What the server renders for each format (``None``: ordered :class:`Finding` objects, for
#: the table's severity and app groups and the Nagios details, most severe first).
SHAPES: dict[str, Shape | None] = {"table": None, "json": "json", "prometheus": "counts", "nagios": None,
                                   "html": "counts"}


@contextmanager
def output_stream(path: str | None, fmt: str = "table") -> Iterator[TextIO]:
    """stdout, or ``path`` written as :mod:`auditor.core.fileio` says (replaced atomically once the
    report is complete, or streamed to a FIFO or device), with the format's file mode."""
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    with atomic_open(path, mode=report_file_mode(fmt)) as handle:
        yield cast(TextIO, handle)


def _unresolved(exc: AuditorError, given: dict[str, Any], own: dict[str, Any]) -> None:
    """Settings that could not be resolved (a bad config file): the failure still reaches where a
    Nagios or Prometheus report was asked for (the format given on the command line or in its variable)."""
    fmt = given.get("format") or os.environ.get(OPTION_BY_NAME["format"].env)
    output = own.get("output")
    if fmt == "prometheus" and output:
        atomic_write(output, failure_text(0.0, metric_labels(None, own.get("labels") or {}), read_existing(output)))
    if fmt == "nagios":
        _write_unknown(output, exc)


@click.command("check")
@params.settings(*params.AUDITS, "format", "fail_on", "min_severity", "connections", on_failure=_unresolved,
                 help={"apps": "Audit only this app (repeatable; inside the config file's apps allow-list).",
                       "format": "Report format."})
@params.output("Write the report to FILE (atomically; a FIFO or device is written through) instead of stdout.")
@params.BASELINE
@params.LABEL
def check(settings: Settings, output: str | None, baseline_path: str | None, labels: dict[str, str]) -> int:
    """Audit the database and report the findings.

    Exit status: 0 nothing at or above --fail-on, 1 warnings, 2 critical findings,
    3 could not audit (connection, not a controller database, bad arguments, timeout).
    """
    started = time.monotonic()
    fmt = settings.format
    if output is not None:
        check_output(output)
    try:
        if labels and fmt != "prometheus":
            raise BadInput("--label applies to --format prometheus only", kind="bad usage")
        baseline = load_baseline(baseline_path) if baseline_path is not None else None
        listing = Listing.of(settings.min_severity, settings.fail_on)
        every_line = fmt == "json" and listing.lists("info")
        if every_line:
            keep_freed_memory()  # every finding streams through in batches: their memory reused, not faulted in again
        # JSON lines of every info finding of a whole database: worth a second backend (16aa).
        shared = every_line and not settings.scope and settings.connections > 1
        with open_audit(settings, shared=shared) as run:
            report = Report(
                checks=[c.id for c in run.checks],
                database=database_facts(run.conn, run.generation, settings.target),
                generation=run.generation.name,
                fail_on=settings.fail_on,
                baseline=baseline,
                apps_in_scope=run.scope.names,
                metric_labels=metric_labels(settings.target, labels),
                started=started,
                min_severity=settings.min_severity,
                listed_from=listing.floor,
            )
            to_terminal = fmt == "table" and (output is None or is_stdout(output)) and sys.stdout.isatty()
            progress = Progress(sys.stderr, report.checks, until_first=to_terminal)
            with output_stream(output, fmt) as out:
                shape = SHAPES[fmt]
                if shape is None:
                    findings = report.screen(progress.track(run.findings(listing=listing, hidden=report.hidden)))
                    if fmt == "table":
                        from auditor.reports.report_table import write_table  # tabulate: for tables alone

                        write_table(out, report, findings)
                    else:
                        write_nagios(out, report, findings)
                else:
                    # without a baseline to judge them, the second backend's lines go straight to its spools
                    lines = report.spooled if fmt == "json" and baseline is None else None
                    streamed = report.screen(progress.track(run.streamed(shape, listing=listing,
                                                                         hidden=report.hidden, lines=lines)))
                    if fmt == "html":
                        # the page's templates (jinja2) are imported for HTML alone
                        from auditor.reports.picture.report_page import write_html

                        write_html(out, report, streamed, audit=run)
                    else:
                        (write_json if fmt == "json" else write_prometheus)(out, report, streamed)
    except (AuditorError, psycopg.Error) as exc:
        if fmt == "prometheus" and output:
            atomic_write(output, failure_text(time.monotonic() - started, _labels(settings, labels),
                                              read_existing(output)))
        if fmt == "nagios":
            _write_unknown(output, exc)
        raise
    return report.exit_code


def _labels(settings: Settings, labels: dict[str, str]) -> dict[str, str]:
    """The Prometheus labels of a failed run (the target may be what failed: then none of its own)."""
    try:
        target = settings.target
    except AuditorError:
        target = None
    return metric_labels(target, labels)


def _write_unknown(output: str | None, exc: AuditorError | psycopg.Error) -> None:
    """The plugin's ``UNKNOWN`` line, where the report would have gone (the error itself still
    goes to stderr, as for every format)."""
    text = unknown_line(failure_line(exc).removeprefix("controller-audit: "))
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        atomic_write(output, text, mode=report_file_mode("nagios"))
