"""``controller-audit baseline create FILE``: accept today's findings."""

from __future__ import annotations

import click

from auditor.audit import open_audit
from auditor.audit.baseline import Baseline, load_baseline, write_baseline
from auditor.cli import params
from auditor.core.errors import EXIT_OK, BadInput
from auditor.core.fileio import check_output, is_stdout, read_existing
from auditor.core.settings import Settings
from auditor.core.text import escape


@click.group("baseline")
def baseline() -> None:
    """Accept known damage so that `check --baseline FILE` reports only new findings."""


@baseline.command("create")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@params.settings(*params.AUDITS, help={"apps": "Audit only this app (repeatable; inside the config file's apps "
                                               "allow-list)."})
def create(settings: Settings, path: str) -> int:
    """Write today's findings to FILE as accepted (replacing it; first-seen times are kept)."""
    check_output(path)
    previous: Baseline | None = None
    if read_existing(path) is not None:
        try:
            previous = load_baseline(path)
        except BadInput as exc:
            click.echo(escape(f"controller-audit: replacing unreadable baseline ({exc})"), err=True)
    with open_audit(settings) as run:
        count, kept = write_baseline(path, run.findings(), previous)
        ran = len(run.checks)
    note = f", {kept} already in the previous baseline kept their first-seen time" if previous else ""
    click.echo(f"baseline {path}: {count} finding{'s' if count != 1 else ''} accepted "
               f"({ran} check{'s' if ran != 1 else ''}{note})", err=is_stdout(path))
    return EXIT_OK
