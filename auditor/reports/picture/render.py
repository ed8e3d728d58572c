"""SVG and HTML from the package's Jinja2 templates.

Autoescaping is on for every template, and every value printed first loses the characters an
HTML or XML document may not hold (C0/C1 controls, noncharacters): they are shown as ``\\xNN``
instead, so hostile app names, summaries and config values neither inject markup nor break the
document.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from auditor.reports.picture.graph import Graph, Node
from auditor.reports.picture.layout import FULL_UP_TO, Layout, layout

_UNPRINTABLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufdd0-\ufdef"
    + "".join(f"{chr(plane + 0xFFFE)}{chr(plane + 0xFFFF)}" for plane in range(0, 0x110000, 0x10000))
    + "\ud800-\udfff]"
)
#: Longest text drawn in an SVG line (the full text is in the HTML tables and the JSON).
SVG_TEXT = 150
#: The narrowest standalone SVG (room for its header and findings list).
STANDALONE_WIDTH = 1000
#: Findings listed as text under a standalone SVG.
SVG_FINDINGS = 40


def printable(value: Any) -> Any:
    """``value`` with unprintable characters spelt ``\\xNN`` (markup we made is left alone)."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                                else f"\\u{ord(m.group()):04x}", value)
    return value


def _shorten(value: str | None, limit: int) -> str:
    text = " ".join((value or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


ENV = Environment(
    loader=PackageLoader("auditor.reports.picture", "templates"),
    autoescape=True,
    finalize=printable,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
ENV.filters["when"] = when
ENV.filters["shorten"] = _shorten


@dataclass(frozen=True)
class Line:
    text: str
    cls: str = ""


def tooltip(node: Node) -> str:
    """What hovering a node says."""
    if node.kind == "release":
        parts = [f"v{node.version}  {node.uuid}", f"created {when(node.created)}"]
        parts += ["LIVE: the release the app runs"] if node.live else []
        parts += ["FAILED deploy"] if node.failed else []
        parts += [f"summary: {_shorten(node.summary, 200)}"] if node.summary else []
    else:
        parts = [f"{node.kind} {node.uuid}"]
        if not node.in_app:
            parts.append("not a row of this app (another app's, or missing)")
        else:
            parts.append(f"created {when(node.created)}")
            users = ", ".join(f"v{v}" for v in node.users[:12]) + (" ..." if len(node.users) > 12 else "")
            parts.append(f"used by {users}" if node.users else "used by no release of this app")
            if node.foreign_uses:
                parts.append(f"used by {node.foreign_uses} release(s) of other apps")
    marks = {"latest-today": "latest() returns it", "latest-ok": "latest() returns it (ok)",
             "latest-expected": "latest() should return it", "copy": "new copy made by the plan",
             "prune": "the plan deletes it", "redate": "the plan re-dates it", "redated": "re-dated by the plan",
             "repoint": "the plan re-points it", "repointed": "re-pointed by the plan"}
    parts += [marks[m] for m in sorted(node.marks) if m in marks]
    parts += [f"[{f.number}] {f.severity.upper()} {f.check}: {_shorten(f.message, 200)}" for f in node.findings]
    return "\n".join(parts)


def _head(graph: Graph, generation: str, lay: Layout, title: str) -> list[Line]:
    lines = [Line(_shorten(title, SVG_TEXT), "title")]
    live = next((n for n in graph.releases if n.live), None)
    lines.append(Line(_shorten(f"{generation}; {len(graph.releases)} releases; live release: "
                               + (f"v{live.version}" if live else "NONE"), SVG_TEXT)))
    for kind, mark in graph.latest.items():
        lines.append(Line(f"{kind}_set.latest(): {mark.code.upper()}: {mark.sentence}", f"verdict {mark.code}"))
    lines += [Line(_shorten(note, SVG_TEXT), "note") for note in lay.notes]
    return lines


_LEGEND = ("legend: releases in the middle, in version order (green = live, dashed red = failed); configs above, "
           "builds below; an edge per reference (orange = a rollback reusing an older row, purple = a row dated "
           "after its release); dashed red = orphan; dashed purple = another app's row or missing; grey box = "
           "healthy releases folded, xN = their edges to a drawn row; numbered dot = findings on that node")


def _foot(graph: Graph, width: float) -> list[Line]:
    chars = max(60, int((width - 24) / 6.3))
    lines = [Line(text, "legend-text") for text in textwrap.wrap(_LEGEND, chars)]
    titles = {n.key: n.title for n in graph.releases} | {k: n.title for k, n in graph.rows.items()}
    listed = graph.findings
    if len(listed) > SVG_FINDINGS:  # the info ones (normal sharing) give way to the damage
        listed = [f for f in listed if f.severity != "info"] or listed
    for f in listed[:SVG_FINDINGS]:
        where = titles.get(f.node or "", "app")
        lines.append(Line(_shorten(f"[{f.number}] {f.severity.upper()} {f.check} ({where}): {f.message}", chars),
                          f"finding-line {f.severity}"))
    if len(graph.findings) > min(len(listed), SVG_FINDINGS):
        rest = len(graph.findings) - min(len(listed), SVG_FINDINGS)
        lines.append(Line(f"... and {rest} more finding(s) not listed here (explain --format json or html has "
                          f"them all)", "finding-line"))
    if not graph.findings:
        lines.append(Line("findings: none", "finding-line"))
    return lines


@dataclass(frozen=True)
class Drawing:
    """An ``<svg>`` element and the sentences saying what it folded."""

    svg: Markup
    notes: list[str]


def draw(graph: Graph, *, generation: str = "", standalone: bool = False, prefix: str = "p-", link: bool = False,
         max_items: int = 400, full_up_to: int = FULL_UP_TO, title: str | None = None, scale: float = 1.0) -> Drawing:
    """The timeline of ``graph`` (``standalone``: with its own styles, header and findings list,
    for a ``.svg`` file; ``link``: finding badges link to ``#<prefix>f<number>``)."""
    lay = layout(graph, max_items=max_items, full_up_to=full_up_to)
    width = max(lay.width, STANDALONE_WIDTH if standalone else 0)
    head = _head(graph, generation, lay, title or f"app {graph.app}") if standalone else []
    foot = _foot(graph, width) if standalone else []
    top = 10 + 17 * len(head) if standalone else 0
    height = top + lay.height + (15 * len(foot) + 10 if standalone else 0)
    nodes = [p.node for p in lay.nodes]
    tooltips = {n.key: tooltip(n) for n in nodes}
    badges = {n.key: "\n".join(f"[{f.number}] {f.severity.upper()} {f.check}: {_shorten(f.message, 200)}"
                               for f in n.findings) for n in nodes if n.findings}
    text = ENV.get_template("timeline.svg.j2").render(
        g=graph, lay=lay, width=round(width), height=round(height), top=top, head=head, foot=foot,
        standalone=standalone, prefix=prefix, link=link, scale=scale, tooltips=tooltips, badge_titles=badges,
        aria=f"history of app {graph.app}: {len(graph.releases)} releases",
    )
    return Drawing(Markup(text), lay.notes)


def page(template: str, **context: Any) -> str:
    """Render an HTML page template."""
    return ENV.get_template(template).render(**context)
