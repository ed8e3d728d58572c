"""Places a :class:`~auditor.reports.picture.graph.Graph` on a timeline.

Three lanes: configs above, releases in version order in the middle, builds below.  A row sits
above (below) the release it was created for: the first release, in version order, created at
or after the row, when that release uses it; any other row (an orphan, a row created long
before its first use, a row dated after every release) gets a slot of its own at the point of
the timeline its ``created`` falls on.  An edge joins each release to each row it uses, so a
rollback's edge runs back in time and a shared row has several edges.

Large apps: releases and rows that carry no damage (nothing worse than ``info``: sharing a row
with the previous release is the controller's normal way) fold into *gaps* that say what they
hold, and their edges to drawn rows become one bundle with a count.  If even the damaged parts
exceed ``max_items``, the most severe are drawn and the rest fold into the gaps too (the notes
say so).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from itertools import accumulate

from auditor.core.findings import SEVERITY_RANK
from auditor.reports.picture.graph import Edge, Graph, Node

# Geometry (user units of the SVG).
LEFT = 78
RIGHT = 24
SLOT = 48
GAP = 92
Y = {"config": 76, "release": 144, "build": 212}
HEIGHT = 286
SIZE = {"release": (38, 24), "config": (38, 20), "build": (38, 20)}
GAP_HEIGHT = 38

#: Apps with at most this many releases are drawn in full.
FULL_UP_TO = 40
#: A run of fewer hidden releases than this is drawn instead of folded.
MIN_RUN = 3
#: How often short runs are drawn out (each pass may draw rows that cut other runs short).
REFILL_PASSES = 3


@dataclass
class PlacedNode:
    node: Node
    x: float
    y: float
    w: float
    h: float

    @property
    def classes(self) -> str:
        n = self.node
        parts = ["node", n.kind]
        parts += [name for name, on in (("live", n.live), ("failed", n.failed), ("orphan", n.orphan),
                                        ("outside", not n.in_app), ("damaged", n.damaged)) if on]
        if n.worst:
            parts.append(f"sev-{n.worst}")
        parts += sorted(n.marks)
        return " ".join(parts)


@dataclass
class PlacedEdge:
    edge: Edge
    path: str
    direction: str  # here (same slot) | shared (an earlier row, kept) | back (rollback) | forward

    @property
    def classes(self) -> str:
        return " ".join(["edge", self.edge.kind, self.direction, *sorted(self.edge.marks)])


@dataclass
class Bundle:
    """The edges from a gap's releases to one drawn row."""

    kind: str
    row: str
    count: int
    path: str
    label_x: float
    label_y: float


@dataclass
class GapBox:
    x: float
    y: float
    w: float
    h: float
    releases: list[Node]
    rows: list[Node]

    @property
    def damaged(self) -> int:
        return sum(1 for n in (*self.releases, *self.rows) if n.damaged)

    @property
    def versions(self) -> str:
        if not self.releases:
            return ""
        first, last = self.releases[0].version, self.releases[-1].version
        return f"v{first}" if first == last else f"v{first}\u2013v{last}"

    @property
    def lines(self) -> list[str]:
        rel = len(self.releases)
        head = f"{rel} release{'s' if rel != 1 else ''}" if rel else f"{len(self.rows)} row(s)"
        return [head, self.versions or "folded"]


@dataclass
class Tag:
    x: float
    y: float
    text: str
    classes: str


@dataclass
class Layout:
    """Everything the SVG template draws, in drawing order."""

    width: float
    height: float
    nodes: list[PlacedNode] = field(default_factory=list)
    edges: list[PlacedEdge] = field(default_factory=list)
    bundles: list[Bundle] = field(default_factory=list)
    gaps: list[GapBox] = field(default_factory=list)
    tags: list[Tag] = field(default_factory=list)
    arcs: list[tuple[str, str]] = field(default_factory=list)  # (path, classes)
    notes: list[str] = field(default_factory=list)
    lanes: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class _Slot:
    release: Node | None = None
    rows: dict[str, Node] = field(default_factory=dict)  # lane -> row
    gap: GapBox | None = None


def _anchors(graph: Graph) -> tuple[dict[str, int], dict[str, bool]]:
    """Each in-app row's timeline position (a release index) and whether it sits with that release."""
    created = [r.created for r in graph.releases if r.created is not None]
    assert len(created) == len(graph.releases), "every release has its created"
    reach = list(accumulate(created, max)) if created else []
    anchor: dict[str, int] = {}
    aligned: dict[str, bool] = {}
    for key, row in graph.rows.items():
        if not row.in_app or row.created is None:
            continue
        i = bisect_left(reach, row.created)
        anchor[key] = i
        aligned[key] = i < len(graph.releases) and graph.releases[i].version in row.users
    return anchor, aligned


def _severity_score(node: Node) -> int:
    worst = node.worst
    if worst is None or not node.damaged:
        return 0
    return 40 if SEVERITY_RANK[worst] == 0 else 25


def _rollbacks(graph: Graph, anchor: dict[str, int], uses: list[list[Edge]]) -> set[tuple[str, str]]:
    """``(release uuid, kind)`` of the edges that reuse an older row after another row was live:
    the previous non-failed release (failed ones using other rows do not count: a failed deploy
    between two pushes is not a rollback) does not use the row."""
    rows_of = [{e.row for e in edges} for edges in uses]
    found: set[tuple[str, str]] = set()
    for i, rel in enumerate(graph.releases):
        for edge in uses[i]:
            pos = anchor.get(edge.row_key)
            if pos is None or pos >= i:
                continue
            prev = i - 1
            while prev >= 0 and graph.releases[prev].failed and edge.row not in rows_of[prev]:
                prev -= 1
            if prev >= 0 and edge.row not in rows_of[prev]:
                found.add((rel.uuid, edge.kind))
    return found


def _importance(graph: Graph, anchor: dict[str, int], aligned: dict[str, bool],
                uses: list[list[Edge]], rollbacks: set[tuple[str, str]]) -> dict[str, int]:
    """Score of every node worth drawing on its own (absent: may fold)."""
    score: dict[str, int] = {}
    last = len(graph.releases) - 1
    for i, rel in enumerate(graph.releases):
        s = _severity_score(rel) + (50 if rel.live else 0) + (10 if rel.failed else 0)
        s += 30 if rel.marks else 0
        s += 5 if i in (0, last) else 0
        for edge in uses[i]:
            pos = anchor.get(edge.row_key)
            if edge.marks:
                s += 30
            if pos is None:
                s += 15 if graph.rows[edge.row_key].in_app is False else 0
            elif pos > i or (rel.uuid, edge.kind) in rollbacks:
                s += 15  # a rollback (back in time) or a row dated after its release
        if s:
            score[rel.key] = s
    for key, row in graph.rows.items():
        if not row.in_app:
            continue
        s = _severity_score(row) + (30 if row.marks - {"latest-ok"} else 0)
        s += 0 if aligned.get(key, False) else 15
        if s:
            score[key] = s
    return score


def _chosen(graph: Graph, score: dict[str, int], position: dict[str, int], max_items: int) -> set[str]:
    if len(score) <= max_items:
        return set(score)
    ranked = sorted(score, key=lambda k: (score[k], position.get(k, 0)), reverse=True)
    return set(ranked[:max_items])


def _refill_short_runs(graph: Graph, shown: set[str]) -> None:
    """Draw hidden runs shorter than :data:`MIN_RUN` instead of folding them."""
    run: list[Node] = []
    for rel in [*graph.releases, None]:
        if rel is not None and rel.key not in shown:
            run.append(rel)
            continue
        if 0 < len(run) < MIN_RUN:
            shown.update(n.key for n in run)
        run = []


def _slots(graph: Graph, anchor: dict[str, int], aligned: dict[str, bool], shown: set[str]) -> list[_Slot]:
    n = len(graph.releases)
    loose: dict[int, list[Node]] = {}
    with_release: dict[int, list[Node]] = {}
    for key, row in graph.rows.items():
        if key in anchor:
            (with_release if aligned[key] else loose).setdefault(anchor[key], []).append(row)
    slots: list[_Slot] = []
    gap: GapBox | None = None

    def hide(node: Node) -> None:
        nonlocal gap
        if gap is None:
            gap = GapBox(0, 0, GAP, GAP_HEIGHT, [], [])
        (gap.releases if node.kind == "release" else gap.rows).append(node)

    def put(slot: _Slot) -> None:
        nonlocal gap
        if gap is not None:
            slots.append(_Slot(gap=gap))
            gap = None
        slots.append(slot)

    for i in range(n + 1):
        for row in sorted(loose.get(i, []), key=lambda r: (r.created, r.kind)):
            if row.key in shown:
                put(_Slot(rows={row.kind: row}))
            else:
                hide(row)
        if i == n:
            break
        rel = graph.releases[i]
        rows = with_release.get(i, [])
        drawn = {r.kind: r for r in rows if r.key in shown}
        if rel.key in shown:
            put(_Slot(release=rel, rows=drawn))
        elif drawn:
            put(_Slot(rows=drawn))
        if rel.key not in shown:
            hide(rel)
        for row in rows:
            if row.key not in shown:
                hide(row)
    if gap is not None:
        slots.append(_Slot(gap=gap))
    return slots


def _edge_path(x1: float, kind: str, x2: float) -> str:
    h_rel = SIZE["release"][1] / 2
    h_row = SIZE[kind][1] / 2
    if kind == "config":
        y1, y2 = Y["release"] - h_rel, Y["config"] + h_row
    else:
        y1, y2 = Y["release"] + h_rel, Y[kind] - h_row
    mid = (y1 + y2) / 2
    return f"M{x1:g},{y1:g} C{x1:g},{mid:g} {x2:g},{mid:g} {x2:g},{y2:g}"


def _place(graph: Graph, slots: list[_Slot], layout: Layout) -> dict[str, PlacedNode]:
    placed: dict[str, PlacedNode] = {}
    x = LEFT
    for slot in slots:
        if slot.gap is not None:
            gap = slot.gap
            gap.x, gap.y = x + 4, Y["release"] - GAP_HEIGHT / 2
            gap.w = GAP - 8
            layout.gaps.append(gap)
            x += GAP
            continue
        centre = x + SLOT / 2
        for node in ([slot.release] if slot.release else []) + list(slot.rows.values()):
            w, h = SIZE[node.kind]
            placed[node.key] = PlacedNode(node, centre, Y[node.kind], w, h)
        x += SLOT
    layout.width = x + RIGHT
    return placed


def _outside_rows(graph: Graph, placed: dict[str, PlacedNode], uses: list[list[Edge]]) -> None:
    """Rows of another app (or missing) sit in the slot of their first drawn user."""
    taken = {(p.x, p.node.kind) for p in placed.values()}
    for i, rel in enumerate(graph.releases):
        if rel.key not in placed:
            continue
        for edge in uses[i]:
            row = graph.rows[edge.row_key]
            if row.in_app or row.key in placed:
                continue
            x = placed[rel.key].x
            if (x, row.kind) not in taken:
                w, h = SIZE[row.kind]
                placed[row.key] = PlacedNode(row, x, Y[row.kind], w, h)
                taken.add((x, row.kind))


def _edges(graph: Graph, placed: dict[str, PlacedNode], layout: Layout, rollbacks: set[tuple[str, str]]) -> None:
    gap_of = {rel.key: gap for gap in layout.gaps for rel in gap.releases}
    bundles: dict[tuple[int, str], list] = {}
    for edge in graph.edges:
        rel_key = f"release:{edge.release}"
        row = placed.get(edge.row_key)
        if row is None:
            continue
        if rel_key in placed:
            x1 = placed[rel_key].x
            direction = ("back" if (edge.release, edge.kind) in rollbacks else "forward" if row.x > x1 + 1
                         else "shared" if row.x < x1 - 1 else "here")
            layout.edges.append(PlacedEdge(edge, _edge_path(x1, edge.kind, row.x), direction))
        elif rel_key in gap_of:
            gap = gap_of[rel_key]
            bundles.setdefault((id(gap), edge.row_key), [gap, edge, 0])[2] += 1
    for gap, edge, count in bundles.values():
        x1 = gap.x + gap.w / 2
        row = placed[edge.row_key]
        up = edge.kind == "config"
        y1 = gap.y if up else gap.y + gap.h
        y2 = Y[edge.kind] + (SIZE[edge.kind][1] / 2 if up else -SIZE[edge.kind][1] / 2)
        mid = (y1 + y2) / 2
        path = f"M{x1:g},{y1:g} C{x1:g},{mid:g} {row.x:g},{mid:g} {row.x:g},{y2:g}"
        layout.bundles.append(Bundle(edge.kind, edge.row, count, path, x1 + 4, y1 + (-6 if up else 14)))


def _latest_marks(graph: Graph, placed: dict[str, PlacedNode], layout: Layout) -> None:
    for kind, mark in graph.latest.items():
        today = placed.get(f"{kind}:{mark.today}") if mark.today else None
        expected = placed.get(f"{kind}:{mark.expected}") if mark.expected else None
        up = kind == "config"
        tag_y = Y[kind] - 16 if up else Y[kind] + 24
        if today is not None:
            text = {"ok": "latest() \u2713", "ambiguous": f"latest() ? ({mark.ties} tied)"}.get(mark.code, "latest()")
            layout.tags.append(Tag(today.x, tag_y, text, f"tag latest {mark.code}"))
        if expected is not None and mark.code != "ok":
            # a line further out than latest()'s tag: the two never overlap, even in adjacent slots
            layout.tags.append(Tag(expected.x, tag_y - 12 if up else tag_y + 12, "should be", "tag expected"))
            if today is not None and today.x != expected.x:
                y = Y[kind] - 38 if up else Y[kind] + 46
                peak = y - 30 if up else y + 24
                mid = (today.x + expected.x) / 2
                layout.arcs.append((f"M{today.x:g},{y:g} Q{mid:g},{peak:g} {expected.x:g},{y:g}",
                                    f"latest-gap {kind}"))


def _notes(graph: Graph, layout: Layout, capped: int, max_items: int) -> None:
    folded = [g for g in layout.gaps if g.releases]
    hidden = sum(len(g.releases) for g in folded)
    if hidden:
        runs = len(folded)
        layout.notes.append(
            f"{hidden} of {len(graph.releases)} releases are folded into {runs} collapsed run"
            f"{'s' if runs != 1 else ''} (grey boxes); their edges to drawn rows are bundled with a count.")
    rows = sum(len(g.rows) for g in layout.gaps)
    if rows:
        layout.notes.append(f"{rows} config/build row(s) used only by folded releases are not drawn.")
    if capped:
        layout.notes.append(
            f"The damage is larger than one picture: {capped} more damaged or changed release(s)/row(s) beyond "
            f"the {max_items} most severe are folded too; the findings list and `explain --format json` have them "
            f"all.")


def layout(graph: Graph, max_items: int = 400, full_up_to: int = FULL_UP_TO) -> Layout:
    """Place ``graph``: at most ``max_items`` damaged or marked nodes drawn on their own."""
    anchor, aligned = _anchors(graph)
    index = {rel.key: i for i, rel in enumerate(graph.releases)}
    uses: list[list[Edge]] = [[] for _ in graph.releases]
    for edge in graph.edges:
        uses[index[f"release:{edge.release}"]].append(edge)
    rollbacks = _rollbacks(graph, anchor, uses)
    everything = {n.key for n in graph.releases} | set(graph.rows)
    capped = 0
    if len(graph.releases) <= full_up_to:
        shown = everything
    else:
        score = _importance(graph, anchor, aligned, uses, rollbacks)
        position = {**index, **anchor}
        shown = _chosen(graph, score, position, max_items)
        capped = len(score) - len(shown)
        _refill_short_runs(graph, shown)
        for i, rel in enumerate(graph.releases):
            if rel.key in shown:
                shown.update(e.row_key for e in uses[i])
    slots = _slots(graph, anchor, aligned, shown)
    for _ in range(REFILL_PASSES):  # runs cut short by a row drawn on its own: draw them too
        short = [rel for slot in slots if slot.gap is not None and 0 < len(slot.gap.releases) < MIN_RUN
                 for rel in slot.gap.releases]
        if not short:
            break
        for rel in short:
            shown.add(rel.key)
            shown.update(e.row_key for e in uses[index[rel.key]])
        slots = _slots(graph, anchor, aligned, shown)
    result = Layout(width=0, height=HEIGHT)
    result.lanes = [("configs", Y["config"]), ("releases", Y["release"]), ("builds", Y["build"])]
    placed = _place(graph, slots, result)
    _outside_rows(graph, placed, uses)
    result.nodes = sorted(placed.values(), key=lambda p: (p.x, p.node.kind))
    _edges(graph, placed, result, rollbacks)
    _latest_marks(graph, placed, result)
    _notes(graph, result, capped, max_items)
    return result
