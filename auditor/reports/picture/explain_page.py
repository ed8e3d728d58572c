"""``explain APP --format svg|html``: one app's picture as a standalone SVG or a whole page."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from auditor import __version__
from auditor.audit.story import AppStory
from auditor.reports.picture.graph import FindingMark, Graph, build_graph
from auditor.reports.picture.render import draw, page

#: Rows of the history table in the page (the picture and the JSON cover every release).
HISTORY_ROWS = 2000
HISTORY_HEADERS = ("version", "created", "failed", "summary", "config", "build", "notes")


def generated() -> str:
    """When a page was made (UTC)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def finding_rows(graph: Graph, fixes: dict[str, str | None]) -> list[tuple[FindingMark, str, str]]:
    """``(finding, the node it names, its repair)`` for the findings table."""
    titles = {n.key: n.title for n in graph.releases} | {k: n.title for k, n in graph.rows.items()}
    rows = []
    for mark in graph.findings:
        where = titles.get(mark.node or "") or (f"app {graph.app}" if mark.table == "api_app"
                                                else f"{mark.table} {mark.object_id}")
        rows.append((mark, where, fixes.get(mark.check) or "manual"))
    return rows


def explain_svg(story: AppStory, findings: Sequence[dict[str, Any]], generation: str) -> str:
    """The standalone SVG document."""
    graph = build_graph(story, findings)
    drawing = draw(graph, generation=generation, standalone=True, prefix="a-")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + str(drawing.svg)


def explain_html(story: AppStory, findings: Sequence[dict[str, Any]], generation: str, *,
                 fixes: dict[str, str | None], next_steps: Sequence[str], history: Sequence[Sequence[str]]) -> str:
    """The page: the picture, latest(), the findings, what to run next, the history table."""
    graph = build_graph(story, findings)
    drawing = draw(graph, generation=generation, prefix="a-", link=True, scale=1.25)
    return page(
        "explain.html.j2", graph=graph, drawing=drawing, generation=generation, live=story.live,
        rows=finding_rows(graph, fixes), prefix="a-", next_steps=list(next_steps),
        history=list(history[:HISTORY_ROWS]), history_total=len(history), history_headers=HISTORY_HEADERS,
        plan_legend=False, tool_version=__version__, generated=generated(),
    )
