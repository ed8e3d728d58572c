"""``controller-audit blast-radius (config|build|app) UUID_OR_NAME``: preview an ORM delete."""

from __future__ import annotations

import json

import click
from tabulate import tabulate

from auditor.audit.blast import DEFAULT_LIMIT, BlastRadius, app_blast_radius, row_blast_radius
from auditor.cli.commands._audit import settings_from
from auditor.cli.params import MAX_LIMIT, target_options
from auditor.core.configfile import target_for
from auditor.core.connection import audit_session
from auditor.core.detect import detect
from auditor.core.text import escape, escape_block
from auditor.reports.blast_doc import blast_document


def render(radius: BlastRadius) -> str:
    """Counts per table first, then the loud warnings, then the (capped) list of releases."""
    if radius.kind == "app":
        subject = f"app {radius.subject}"
    else:
        subject = f"{radius.kind} {radius.subject} (app {radius.app or '?'})"
    out = [f"Deleting {subject} through the controller (Django ORM, on_delete=CASCADE) would delete:", ""]
    rows = [(table, n) for table, n in radius.counts.items()]
    rows.append(("total", radius.total))
    out.append(tabulate(rows, headers=["table", "rows"], colalign=("left", "right")))
    if radius.foreign_releases:
        out.append("")
        out.append(f"!!! the cascade crosses into app {', '.join(radius.foreign_apps)}: "
                   f"{radius.foreign_releases} release(s) of OTHER apps would be deleted too: they reference "
                   f"this {'app' if radius.kind == 'app' else radius.kind}'s rows (cross-app reference).")
    for live in radius.live_hit:
        out.append("")
        if radius.kind == "app" and live.app == radius.subject:
            out.append(f"!!! THE LIVE RELEASE v{live.version} OF APP {live.app} WOULD BE DELETED with the app.")
        else:
            out.append(f"!!! THE LIVE RELEASE v{live.version} OF APP {live.app} WOULD BE DELETED: the app would "
                       f"be left without the release it runs; the controller would deploy, scale and roll back "
                       f"from an older one.")
    out.append("")
    shown = len(radius.releases)
    more = f", showing the first {shown}" if shown < radius.release_total else ""
    out.append(f"releases that would be deleted ({radius.release_total}{more}):")
    if radius.releases:
        rel_rows = [(escape(r.app or "?"), f"v{r.version}", r.created.strftime("%Y-%m-%d %H:%M:%S"),
                     "FAILED" if r.failed else "", r.uuid, "LIVE" if r.live else "") for r in radius.releases]
        out.append(tabulate(rel_rows, headers=["app", "version", "created", "failed", "uuid", ""]))
    else:
        out.append("  none")
    out.append("")
    out.append("(The database's own foreign keys are NO ACTION: a raw SQL DELETE cascades nothing and fails at "
               "COMMIT; this is what the controller's ORM would do.)")
    return "\n".join(out)


@click.command("blast-radius")
@click.argument("kind", type=click.Choice(["config", "build", "app"]))
@click.argument("subject", metavar="UUID_OR_NAME")
@click.option("--limit", type=click.IntRange(min=1, max=MAX_LIMIT), default=DEFAULT_LIMIT, show_default=True,
              help="How many of the releases to list (the counts are always complete).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Config file (for the DSN source).")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True,
              help="text, or json (docs/report-format.md).")
@target_options
def blast_radius(kind: str, subject: str, limit: int, config_path: str | None, fmt: str, dsn: str | None,
                 statement_timeout: str, lock_timeout: str) -> None:
    """What deleting a config, build (by uuid) or app (by name) through the controller would delete."""
    target = target_for(dsn, settings_from(config_path))
    with audit_session(target, statement_timeout=statement_timeout, lock_timeout=lock_timeout) as conn:
        generation = detect(conn)
        if kind == "app":
            radius = app_blast_radius(conn, generation, subject, limit)
        else:
            radius = row_blast_radius(conn, generation, kind, subject, limit)
    click.echo(json.dumps(blast_document(radius), indent=1) if fmt == "json" else escape_block(render(radius)))


def register(cli: click.Group) -> None:
    """Add ``blast-radius``."""
    cli.add_command(blast_radius)
