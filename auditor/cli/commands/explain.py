"""``controller-audit explain APP``: one app's history, what is wrong with it, what to run next."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from functools import partial

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
from auditor.core.findings import Counted
from auditor.core.settings import Settings
from auditor.core.text import escape_block
from auditor.reports.explain_text import EXPLAIN_FORMATS, formatted, render, story_history


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
            with _story_beside_the_audit(run, second() if second is not None else None, app, pending) as story:
                # The history's rows too, while the server runs the audit: the findings' ids only
                # mark more rows remarkable once they arrive.
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


@contextmanager
def _story_beside_the_audit(run: Audit, other: psycopg.Connection | None, app: str,
                            pending: PendingFindings) -> Iterator[AppStory]:
    """Send the audit and the app's story, and give the story while the server still runs the audit
    (the findings are read inside, with ``pending.read()``).

    With ``other`` (a second connection in the audit's snapshot) the audit goes on its connection,
    after a ``now()`` that is the story's clock (synced: the server holds a pipeline's results until a
    sync or a flush; no sync after the audit, it would wait for the audit's rows), and the story on
    ``other``: the two backends run them at once.  Without it, both in one pipeline on the audit's
    connection (libpq 14 and later): the story's rows are received (sync), then the audit is sent."""
    tell = partial(send_story, generation=run.generation, name=app, app_uuid=run.scope.uuids[0],
                   skew_seconds=run.settings.skew_seconds)
    if other is not None:
        with run.conn.pipeline() as pipeline:
            clock = run.conn.execute("SELECT now()")
            pipeline.sync()
            pending.send()
            with other.pipeline():
                story = tell(other, clock=clock).read()
            yield story
        return
    with run.conn.pipeline() if psycopg.Pipeline.is_supported() else nullcontext() as pipeline:
        told = tell(run.conn)
        if pipeline is not None:
            pipeline.sync()
        pending.send()
        yield told.read()
