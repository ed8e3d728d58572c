"""``controller-audit blast-radius (config|build|app) UUID_OR_NAME``: preview an ORM delete."""

from __future__ import annotations

import json

import click

from auditor.audit.blast import app_blast_radius, row_blast_radius
from auditor.cli import params
from auditor.core.errors import EXIT_OK
from auditor.core.session import read_session
from auditor.core.settings import Settings
from auditor.core.text import escape_block
from auditor.reports.blast_doc import blast_document
from auditor.reports.blast_text import render


@click.command("blast-radius")
@click.argument("kind", type=params.Choice(["config", "build", "app"]))
@click.argument("subject", metavar="UUID_OR_NAME")
@params.LIMIT
@params.settings(*params.CONNECTS)
@params.choice("text", "json", default="text", help="text, or json (docs/report-format.md).")
def blast_radius(settings: Settings, kind: str, subject: str, limit: int, fmt: str) -> int:
    """What deleting a config, build (by uuid) or app (by name) through the controller would delete."""
    if kind == "app":
        settings.require_allowed([subject])
    with read_session(settings) as (conn, generation):
        if kind == "app":
            radius = app_blast_radius(conn, generation, subject, limit, settings.allowed_apps)
        else:
            radius = row_blast_radius(conn, generation, kind, subject, limit)
    if kind != "app" and settings.outside_allowed([radius.app]):
        settings.require_allowed([str(radius.app)], what=f"the {kind}'s app")
    click.echo(json.dumps(blast_document(radius), indent=1) if fmt == "json" else escape_block(render(radius)))
    return EXIT_OK
