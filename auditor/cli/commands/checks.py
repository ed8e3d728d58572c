"""``controller-audit checks [ID]``: the catalogue, or one check in full."""

from __future__ import annotations

import click
from tabulate import tabulate

from auditor.cli import params
from auditor.core.errors import EXIT_OK, BadInput
from auditor.core.suggest import unknown_check
from auditor.reports.catalogue_doc import applies_to, check_details, render_markdown
from checks import CATALOGUE


@click.command("checks")
@click.argument("check_id", metavar="[ID]", required=False)
@params.MARKDOWN
def checks(check_id: str | None, markdown: bool) -> int:
    """List the checks (id, severity, title, repair); with ID, explain that check in full."""
    if markdown:
        click.echo(render_markdown(CATALOGUE), nl=False)
        return EXIT_OK
    if check_id is not None:
        if check_id not in CATALOGUE:
            raise BadInput(unknown_check(check_id, CATALOGUE), kind="unknown check")
        click.echo(check_details(CATALOGUE[check_id]))
        return EXIT_OK
    rows = [(c.id, c.severity, c.title, c.repair or "-", applies_to(c)) for c in CATALOGUE.values()]
    click.echo(tabulate(rows, headers=["id", "severity", "title", "repair", "applies to"]))
    click.echo(f"\n{len(rows)} checks; `controller-audit checks ID` explains one.")
    return EXIT_OK
