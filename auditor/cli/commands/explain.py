"""``controller-audit explain APP``: one app's history, what is wrong with it, what to run next."""

from __future__ import annotations

from contextlib import nullcontext

import click
import psycopg

from auditor.audit import open_audit
from auditor.audit.listing import EVERYTHING, Listing
from auditor.audit.story import send_story
from auditor.cli import params
from auditor.core.collector import gc_paused
from auditor.core.errors import EXIT_OK
from auditor.core.fileio import PRIVATE, atomic_write
from auditor.core.findings import Counted
from auditor.core.settings import Settings
from auditor.core.text import escape_block
from auditor.reports.explain_text import EXPLAIN_FORMATS, formatted, render, story_history


@click.command("explain")
@click.argument("app")
@params.settings(*params.CONNECTS, "grace_seconds", "skew_seconds", "min_severity",
                 help={"min_severity": "Text: the lowest severity of the findings listed; those below are "
                                       "counted (json, svg and html list every finding)."})
@params.choice(*EXPLAIN_FORMATS, default="text",
               help="text; json (docs/report-format.md); svg (the timeline picture); html (a self-contained page).")
@params.EVERYTHING
@params.output()
def explain(settings: Settings, app: str, fmt: str, everything: bool, output: str | None) -> int:
    """Explain one app: releases, shared and orphan rows, latest(), findings, and the fix.

    The text lists the releases that matter (live, newest, highest, first, failed, those a
    listed finding involves, a few around the live one) and collapses the others; --all lists
    every release and every finding. JSON, SVG and HTML always carry everything."""
    settings.require_allowed([app])
    text_format = fmt == "text"
    listing = Listing(settings.min_severity) if text_format and not everything else EVERYTHING
    hidden: list[Counted] = []
    # A long story makes tens of thousands of objects that live to the end: full collections
    # would rescan them again and again (a third of reading 10,000 releases).
    with gc_paused():
        with open_audit(settings, apps=[app], selection=settings.overrides_only) as run:
            pending = run.pending_findings(listing=listing, hidden=hidden)
            # The story's statements and the audit's in one pipeline (libpq 14 and later): the
            # story's rows are received (sync), then the audit is sent, and the server runs it
            # while the story's rows are turned into objects here.
            with run.conn.pipeline() if psycopg.Pipeline.is_supported() else nullcontext() as pipeline:
                told = send_story(run.conn, run.generation, app, run.scope.uuids[0], settings.skew_seconds)
                if pipeline is not None:
                    pipeline.sync()
                pending.send()
                story = told.read()
                # The history's rows too, while the server runs the audit: the findings' ids
                # only mark more rows remarkable once they arrive.
                history = story_history(story) if text_format else None
                findings = pending.read()
            label = run.generation.label
        if text_format:
            text = escape_block(render(story, findings, label, hidden=hidden, floor=listing.floor,
                                       everything=everything, told=history)) + "\n"
        else:
            text = formatted(fmt, story, findings, label)
    if output is None:
        click.echo(text, nl=False)
    else:
        atomic_write(output, text, mode=PRIVATE)  # it quotes data (JSON: invalid-json excerpts)
    return EXIT_OK
