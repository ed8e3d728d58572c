"""``controller-audit info``: the server, the schema generation and the table sizes."""

from __future__ import annotations

import click
from tabulate import tabulate

from auditor.cli import params
from auditor.core.errors import EXIT_OK
from auditor.core.info import gather, support_lines
from auditor.core.session import read_session
from auditor.core.settings import Settings
from auditor.core.text import escape


@click.command("info")
@params.settings(*params.CONNECTS)
def info(settings: Settings) -> int:
    """Show the server, the schema generation and the table sizes."""
    target = settings.target
    with read_session(settings) as (conn, generation):
        facts = gather(conn, generation)
    click.echo(f"target:          {escape(target.describe())} (from {target.source})")
    click.echo(f"server version:  {escape(facts.server_version)}")
    for line in support_lines(facts.server_version_num):
        click.echo(line)
    click.echo(f"database:        {escape(facts.database)}")
    click.echo(f"generation:      {generation.name}")
    click.echo(f"last migration:  api {generation.migration_name}")
    click.echo(f"failed column:   {'yes' if generation.has_failed else 'no (failed deploys deleted their release)'}")
    click.echo(f"standby:         {'yes (hot standby, read-only)' if facts.in_recovery else 'no (primary)'}")
    if facts.system_identifier:
        click.echo(f"system id:       {facts.system_identifier}")
    rows = [(escape(c.table), f"~{c.rows}" if c.estimated else c.rows) for c in facts.counts]
    click.echo()
    click.echo(tabulate(rows, headers=["table", "rows"], colalign=("left", "right")))
    return EXIT_OK
