"""``controller-audit check``: run the catalogue and report (table, JSON, Prometheus, Nagios, HTML)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import TextIO

import click
import psycopg

from auditor.audit import open_audit
from auditor.audit.baseline import load_baseline
from auditor.cli.commands._audit import audit_request, selection_options, settings_from
from auditor.core.configfile import FAIL_ON, FORMATS
from auditor.core.errors import AuditorError, BadInput
from auditor.core.fileio import atomic_open, atomic_write, check_output, is_stdout, read_existing
from auditor.reports.picture.report_page import write_html
from auditor.reports.progress import Progress
from auditor.reports.report import Report, database_facts, report_file_mode
from auditor.reports.report_json import write_json
from auditor.reports.report_nagios import unknown_line, write_nagios
from auditor.reports.report_prometheus import failure_text, label_option_values, metric_labels, write_prometheus
from auditor.reports.report_table import write_table

RENDERERS = {"table": write_table, "json": write_json, "prometheus": write_prometheus, "nagios": write_nagios}
#: What the server renders for each format (``None``: ordered :class:`Finding` objects, for
#: the table's severity and app groups and the Nagios details, most severe first).
SHAPES = {"table": None, "json": "json", "prometheus": "counts", "nagios": None, "html": "counts"}


@contextmanager
def output_stream(path: str | None, fmt: str = "table") -> Iterator[TextIO]:
    """stdout, or ``path`` written as :mod:`auditor.core.fileio` says (replaced atomically once the
    report is complete, or streamed to a FIFO or device), with the format's file mode."""
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    with atomic_open(path, mode=report_file_mode(fmt)) as handle:
        yield handle


@click.command("check")
@selection_options
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Report format [default: table, or the config file's format].")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the report to FILE (atomically; a FIFO or device is written through) instead of "
                   "stdout.")
@click.option("--fail-on", type=click.Choice(FAIL_ON), default=None,
              help="Lowest severity that makes the exit code non-zero [default: warning].")
@click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False), default=None,
              help="Report only findings not accepted in this baseline file.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", callback=label_option_values,
              help="Add this label to every Prometheus series (repeatable; database=NAME replaces the "
                   "default host:port/dbname).")
def check(apps: tuple[str, ...], checks: tuple[str, ...], excludes: tuple[str, ...], grace: float | None,
          skew: float, config_path: str | None, dsn: str | None, statement_timeout: str, lock_timeout: str,
          fmt: str | None, output: str | None, fail_on: str | None, baseline_path: str | None,
          labels: dict[str, str]) -> int:
    """Audit the database and report the findings.

    Exit status: 0 nothing at or above --fail-on, 1 warnings, 2 critical findings,
    3 could not audit (connection, not a controller database, bad arguments, timeout).
    """
    started = time.monotonic()
    target = None
    if output:
        check_output(output)
    try:
        settings = settings_from(config_path)
        fmt = fmt or settings.format or "table"
        if labels and fmt != "prometheus":
            raise BadInput("--label applies to --format prometheus only", kind="bad usage")
        request = audit_request(dsn=dsn, apps=apps, checks=checks, excludes=excludes, grace=grace,
                                settings=settings, skew=skew)
        target = request.target
        baseline = load_baseline(baseline_path) if baseline_path else None
        with open_audit(request.target, apps=request.apps, selection=request.selection,
                        grace_seconds=request.grace_seconds, skew_seconds=request.skew_seconds,
                        statement_timeout=statement_timeout,
                        lock_timeout=lock_timeout) as run:
            report = Report(
                checks=[c.id for c in run.checks],
                database=database_facts(run.conn, run.generation, request.target),
                generation=run.generation.name,
                fail_on=fail_on or settings.fail_on or "warning",
                baseline=baseline,
                apps_in_scope=run.scope.names,
                metric_labels=metric_labels(target, labels),
                started=started,
            )
            to_terminal = fmt == "table" and (output is None or is_stdout(output)) and sys.stdout.isatty()
            progress = Progress(sys.stderr, report.checks, until_first=to_terminal)
            with output_stream(output, fmt) as out:
                shape = SHAPES[fmt]
                findings = run.findings() if shape is None else run.streamed(shape)
                render = partial(write_html, audit=run) if fmt == "html" else RENDERERS[fmt]
                render(out, report, report.screen(progress.track(findings)))
    except (AuditorError, psycopg.Error) as exc:
        if fmt == "prometheus" and output:
            atomic_write(output, failure_text(time.monotonic() - started, metric_labels(target, labels),
                                              read_existing(output)))
        if fmt == "nagios":
            _write_unknown(output, exc)
        raise
    return report.exit_code


def _write_unknown(output: str | None, exc: AuditorError | psycopg.Error) -> None:
    """The plugin's ``UNKNOWN`` line, where the report would have gone (the error itself still
    goes to stderr, as for every format)."""
    from auditor.cli import _psycopg_error_line, error_line

    shown = error_line(exc.one_line()) if isinstance(exc, AuditorError) else _psycopg_error_line(exc)
    text = unknown_line(shown.removeprefix("controller-audit: "))
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        atomic_write(output, text, mode=report_file_mode("nagios"))


def register(cli: click.Group) -> None:
    """Add ``check``."""
    cli.add_command(check)
