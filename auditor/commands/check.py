"""``controller-audit check``: run the catalogue and report (table, JSON, Prometheus, HTML)."""

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
from auditor.baseline import load_baseline
from auditor.commands._audit import audit_request, selection_options, settings_from
from auditor.configfile import FAIL_ON, FORMATS
from auditor.errors import AuditorError
from auditor.fileio import atomic_open, atomic_write
from auditor.picture.report_page import write_html
from auditor.progress import Progress
from auditor.report import Report, database_facts
from auditor.report_json import write_json
from auditor.report_prometheus import failure_text, write_prometheus
from auditor.report_table import write_table

RENDERERS = {"table": write_table, "json": write_json, "prometheus": write_prometheus}
#: What the server renders for each format (``None``: ordered :class:`Finding` objects, for
#: the table's severity and app groups).
SHAPES = {"table": None, "json": "json", "prometheus": "counts", "html": "counts"}


@contextmanager
def output_stream(path: str | None) -> Iterator[TextIO]:
    """stdout, or ``path`` replaced atomically once the report is complete."""
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    with atomic_open(path) as handle:
        yield handle


@click.command("check")
@selection_options
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Report format [default: table, or the config file's format].")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the report to FILE (atomically) instead of stdout.")
@click.option("--fail-on", type=click.Choice(FAIL_ON), default=None,
              help="Lowest severity that makes the exit code non-zero [default: warning].")
@click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False), default=None,
              help="Report only findings not accepted in this baseline file.")
def check(apps: tuple[str, ...], checks: tuple[str, ...], excludes: tuple[str, ...], grace: float | None,
          config_path: str | None, dsn: str | None, statement_timeout: str, lock_timeout: str,
          fmt: str | None, output: str | None, fail_on: str | None, baseline_path: str | None) -> int:
    """Audit the database and report the findings.

    Exit status: 0 nothing at or above --fail-on, 1 warnings, 2 critical findings,
    3 could not audit (connection, not a controller database, bad arguments, timeout).
    """
    started = time.monotonic()
    try:
        settings = settings_from(config_path)
        fmt = fmt or settings.format or "table"
        request = audit_request(dsn=dsn, apps=apps, checks=checks, excludes=excludes, grace=grace,
                                settings=settings)
        baseline = load_baseline(baseline_path) if baseline_path else None
        with open_audit(request.target, apps=request.apps, selection=request.selection,
                        grace_seconds=request.grace_seconds, statement_timeout=statement_timeout,
                        lock_timeout=lock_timeout) as run:
            report = Report(
                checks=[c.id for c in run.checks],
                database=database_facts(run.conn, run.generation, request.target),
                generation=run.generation.name,
                fail_on=fail_on or settings.fail_on or "warning",
                baseline=baseline,
                apps_in_scope=run.scope.names,
                started=started,
            )
            to_terminal = fmt == "table" and output is None and sys.stdout.isatty()
            progress = Progress(sys.stderr, report.checks, until_first=to_terminal)
            with output_stream(output) as out:
                shape = SHAPES[fmt]
                findings = run.findings() if shape is None else run.streamed(shape)
                render = partial(write_html, audit=run) if fmt == "html" else RENDERERS[fmt]
                render(out, report, report.screen(progress.track(findings)))
    except (AuditorError, psycopg.Error):
        if fmt == "prometheus" and output:
            atomic_write(output, failure_text(time.monotonic() - started))
        raise
    return report.exit_code


def register(cli: click.Group) -> None:
    """Add ``check``."""
    cli.add_command(check)
