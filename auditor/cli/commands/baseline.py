"""``controller-audit baseline create FILE``: accept today's findings."""

from __future__ import annotations

import click

from auditor.audit import open_audit
from auditor.audit.baseline import Baseline, load_baseline, write_baseline
from auditor.cli.commands._audit import audit_request, selection_options, settings_from
from auditor.core.errors import BadInput
from auditor.core.fileio import check_output, is_stdout, read_existing
from auditor.core.text import escape


@click.group("baseline")
def baseline() -> None:
    """Accept known damage so that `check --baseline FILE` reports only new findings."""


@baseline.command("create")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@selection_options
def create(path: str, apps: tuple[str, ...], checks: tuple[str, ...], excludes: tuple[str, ...],
           grace: float | None, skew: float, config_path: str | None, dsn: str | None, statement_timeout: str,
           lock_timeout: str) -> None:
    """Write today's findings to FILE as accepted (replacing it; first-seen times are kept)."""
    settings = settings_from(config_path)
    request = audit_request(dsn=dsn, apps=apps, checks=checks, excludes=excludes, grace=grace, settings=settings,
                            skew=skew)
    check_output(path)
    previous: Baseline | None = None
    if read_existing(path) is not None:
        try:
            previous = load_baseline(path)
        except BadInput as exc:
            click.echo(escape(f"controller-audit: replacing unreadable baseline ({exc})"), err=True)
    with open_audit(request.target, apps=request.apps, selection=request.selection,
                    grace_seconds=request.grace_seconds, skew_seconds=request.skew_seconds,
                    statement_timeout=statement_timeout,
                    lock_timeout=lock_timeout) as run:
        count, kept = write_baseline(path, run.findings(), previous)
        ran = len(run.checks)
    note = f", {kept} already in the previous baseline kept their first-seen time" if previous else ""
    click.echo(f"baseline {path}: {count} finding{'s' if count != 1 else ''} accepted "
               f"({ran} check{'s' if ran != 1 else ''}{note})", err=is_stdout(path))


def register(cli: click.Group) -> None:
    """Add ``baseline``."""
    cli.add_command(baseline)
