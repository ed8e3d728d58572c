"""``controller-audit explain APP``: one app's history, what is wrong with it, what to run next."""

from __future__ import annotations

from contextlib import ExitStack, nullcontext

import click
import psycopg

from auditor.audit import Audit, open_audit
from auditor.audit.listing import EVERYTHING, Listing
from auditor.audit.runner import PendingFindings
from auditor.audit.split import opening
from auditor.audit.story import AppStory, send_story
from auditor.cli import params
from auditor.core.collector import gc_paused
from auditor.core.errors import EXIT_OK
from auditor.core.fileio import PRIVATE, atomic_write
from auditor.core.findings import Counted, Finding
from auditor.core.settings import Settings
from auditor.core.text import escape_block
from auditor.reports.explain_text import EXPLAIN_FORMATS, History, formatted, render, story_history


@click.command("explain")
@click.argument("app")
@params.settings(*params.CONNECTS, "grace_seconds", "skew_seconds", "min_severity", "connections",
                 help={"min_severity": "Text: the lowest severity of the findings listed; those below are "
                                       "counted (json, svg and html list every finding).",
                       "connections": "How many connections explain reads with (2: the app's story on a second "
                                      "one, on the audit's exported snapshot; 1: never a second)."})
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
        two = settings.connections > 1 and psycopg.Pipeline.is_supported()
        with open_audit(settings, apps=[app], selection=settings.overrides_only, shared=two) as run, \
                ExitStack() as stack:
            # The second connection is opened (in a thread) while the audit's statement is built.
            second = opening(stack, run.snapshot_connection) if run.snapshot is not None else None
            pending = run.pending_findings(listing=listing, hidden=hidden)
            other = second() if second is not None else None
            if other is None:
                story, history, findings = _one_backend(run, app, pending, text_format)
            else:
                story, history, findings = _two_backends(run, other, app, pending, text_format)
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


def _one_backend(run: Audit, app: str, pending: PendingFindings,
                 text_format: bool) -> tuple[AppStory, History | None, list[Finding]]:
    """The story and the findings on the audit's connection.  In one pipeline (libpq 14 and later):
    the story's rows are received (sync), then the audit is sent, and the server runs it while the
    story's rows are turned into objects here."""
    settings = run.settings
    with run.conn.pipeline() if psycopg.Pipeline.is_supported() else nullcontext() as pipeline:
        told = send_story(run.conn, run.generation, app, run.scope.uuids[0], settings.skew_seconds)
        if pipeline is not None:
            pipeline.sync()
        pending.send()
        story = told.read()
        # The history's rows too, while the server runs the audit: the findings' ids
        # only mark more rows remarkable once they arrive.
        history = story_history(story) if text_format else None
        return story, history, pending.read()


def _two_backends(run: Audit, other: psycopg.Connection, app: str, pending: PendingFindings,
                  text_format: bool) -> tuple[AppStory, History | None, list[Finding]]:
    """The audit sent on its connection, the story's statements on ``other`` (in the audit's
    snapshot): the two backends run them at once, and the story's rows become objects and the
    history's lines here while the audit still runs.  The story's clock is the audit's ``now()``,
    sent first and synced (the server holds a pipeline's results until a sync or a flush)."""
    settings = run.settings
    with run.conn.pipeline() as pipeline:
        clock = run.conn.execute("SELECT now()")
        pipeline.sync()
        pending.send()  # no sync: it would wait for the audit's rows
        with other.pipeline():
            story = send_story(other, run.generation, app, run.scope.uuids[0], settings.skew_seconds, clock).read()
        history = story_history(story) if text_format else None
        return story, history, pending.read()
