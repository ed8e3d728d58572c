"""``controller-audit demo``: the whole value in one command, on an embedded PostgreSQL."""

from __future__ import annotations

import click

from auditor.demo import parse_generation, run_demo


@click.command("demo")
@click.option("--dsn", metavar="DSN", default=None,
              help="Use this server (the role must be allowed to create databases) instead of an "
                   "embedded one; the demo creates and drops its own database there.")
@click.option("--generation", default="hephy", show_default=True, metavar="GEN",
              help="Schema generation: hephy (0028), deis (0023), deis-old (0019) or a migration "
                   "number 19..28.")
@click.option("--keep", is_flag=True, help="Leave the server and database running and print the DSN.")
def demo(dsn: str | None, generation: str, keep: bool) -> int:
    """Build a damaged controller database and walk through audit and repair."""
    migration = parse_generation(generation)
    return run_demo(dsn, migration, keep)
