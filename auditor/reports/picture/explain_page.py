"""``explain APP --format svg|html``: one app's picture as a standalone SVG or a whole page."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from auditor import __version__
from auditor.audit.story import AppStory
from auditor.core.findings import Finding
from auditor.reports.picture.graph import FindingMark, Graph, build_graph
from auditor.reports.picture.render import draw, page

#: Rows of the history table in the page (the picture and the JSON cover every release).
HISTORY_ROWS = 2000
HISTORY_HEADERS = ("version", "created", "failed", "summary", "config", "build", "notes")


def generated() -> str:
    """When a page was made (UTC)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


#: The repair of each finding, by (check, table, object): None where it is to be fixed by hand.
Fixes = dict[tuple[str, str, str], str | None]


def fixes_of(findings: Iterable[Finding]) -> Fixes:
    """What fixes each of ``findings``: its repair, which its check says per finding."""
    return {(f.check, f.object_table, f.object_id): f.repair for f in findings}


def finding_rows(graph: Graph, fixes: Fixes) -> list[tuple[FindingMark, str, str]]:
    """``(finding, the node it names, its repair)`` for the findings table."""
    titles = {n.key: n.title for n in graph.releases} | {k: n.title for k, n in graph.rows.items()}
    rows = []
    for mark in graph.findings:
        where = titles.get(mark.node or "") or (f"app {graph.app}" if mark.table == "api_app"
                                                else f"{mark.table} {mark.object_id}")
        rows.append((mark, where, fixes.get((mark.check, mark.table, mark.object_id)) or "manual"))
    return rows


def explain_svg(story: AppStory, findings: Sequence[dict[str, Any]], generation: str) -> str:
    """The standalone SVG document."""
    graph = build_graph(story, findings)
    drawing = draw(graph, generation=generation, standalone=True, prefix="a-")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + str(drawing.svg)


def explain_html(story: AppStory, findings: Sequence[dict[str, Any]], generation: str, *,
                 fixes: Fixes, next_steps: Sequence[str], history: Sequence[Sequence[str]]) -> str:
    """The page: the picture, latest(), the findings, what to run next, the history table."""
    graph = build_graph(story, findings)
    drawing = draw(graph, generation=generation, prefix="a-", link=True, scale=1.25)
    return page(
        "explain.html.j2", graph=graph, drawing=drawing, generation=generation, live=story.live,
        rows=finding_rows(graph, fixes), prefix="a-", next_steps=list(next_steps),
        history=list(history[:HISTORY_ROWS]), history_total=len(history), history_headers=HISTORY_HEADERS,
        plan_legend=False, tool_version=__version__, generated=generated(),
    )
