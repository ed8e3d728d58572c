"""``controller-audit demo``: the whole value in one command, on an embedded PostgreSQL."""

from __future__ import annotations

import click

from auditor.cli import params
from auditor.demo import parse_generation, run_demo


@click.command("demo")
@params.DEMO_SERVER
@params.GENERATION
@params.KEEP
def demo(dsn: str | None, generation: str, keep: bool) -> int:
    """Build a damaged controller database and walk through audit and repair."""
    migration = parse_generation(generation)
    return run_demo(dsn, migration, keep)
