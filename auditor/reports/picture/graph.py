"""One app's history as a graph: release nodes, config and build nodes, an edge from each
release to each row it uses, ``latest()`` marks and the findings attached to what they name.

Built from an :class:`auditor.audit.story.AppStory` (which says which release is live and what
``latest()`` returns) and findings in their JSON form (:meth:`auditor.core.findings.Finding.to_json`);
nothing here re-derives the audit's semantics.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from auditor.audit.story import AppStory
from auditor.audit.verdict import verdict
from auditor.core.findings import SEVERITY_RANK

ROW_KINDS: tuple[str, ...] = ("config", "build")
_TABLE_KIND = {"api_release": "release", "api_config": "config", "api_build": "build"}


@dataclass
class FindingMark:
    """A finding as the picture shows it: numbered, attached to a node (or to the app)."""

    number: int
    check: str
    severity: str
    message: str
    table: str
    object_id: str
    node: str | None = None  # key of the node it names; None: the app, or a row not in the picture


@dataclass
class Node:
    """A release, config or build."""

    key: str  # "release:<uuid>", "config:<uuid>", "build:<uuid>"
    kind: str  # release | config | build
    uuid: str
    created: datetime | None  # None: a row outside the app (another app's, or missing)
    version: int | None = None
    summary: str | None = None
    failed: bool = False
    live: bool = False
    in_app: bool = True
    users: tuple[int, ...] = ()  # rows: versions of this app's releases using it
    foreign_uses: int = 0  # rows: releases of other apps using it
    marks: set[str] = field(default_factory=set)  # latest-*, and plan marks (copy, prune, redate...)
    findings: list[FindingMark] = field(default_factory=list)

    @property
    def orphan(self) -> bool:
        return self.kind != "release" and self.in_app and not self.users and not self.foreign_uses

    @property
    def worst(self) -> str | None:
        """The most severe attached finding's severity."""
        if not self.findings:
            return None
        return min((f.severity for f in self.findings), key=lambda s: SEVERITY_RANK.get(s, 99))

    @property
    def damaged(self) -> bool:
        """A finding more serious than ``info`` is attached (normal sharing is ``info``)."""
        return any(SEVERITY_RANK.get(f.severity, 99) < SEVERITY_RANK["info"] for f in self.findings)

    @property
    def label(self) -> str:
        return f"v{self.version}" if self.kind == "release" else self.uuid[:4]

    @property
    def title(self) -> str:
        """``v3`` or ``config 1b2c3d4e``: how lists name the node."""
        return f"v{self.version}" if self.kind == "release" else f"{self.kind} {self.uuid[:8]}"


@dataclass
class Edge:
    """A release uses a row (its ``config_id`` or ``build_id``)."""

    release: str  # release uuid
    kind: str  # config | build
    row: str  # row uuid
    marks: set[str] = field(default_factory=set)  # plan marks: repoint (before), repointed (after)

    @property
    def row_key(self) -> str:
        return f"{self.kind}:{self.row}"


@dataclass
class LatestMark:
    """``config_set.latest()`` / ``build_set.latest()``: the row returned and the row expected."""

    kind: str
    today: str | None  # uuid
    expected: str | None  # uuid (the live release's row)
    ties: int
    code: str  # see auditor.audit.verdict.VERDICTS
    sentence: str


@dataclass
class Marks:
    """Extra marks (a plan's changes) on releases, rows and edges, by uuid."""

    releases: dict[str, set[str]] = field(default_factory=dict)
    rows: dict[str, set[str]] = field(default_factory=dict)
    edges: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (release uuid, kind)

    def mark(self, target: dict, key: Any, mark: str) -> None:
        target.setdefault(key, set()).add(mark)


@dataclass
class Graph:
    """Everything one picture draws."""

    app: str
    app_uuid: str
    releases: list[Node]  # version order
    rows: dict[str, Node]  # key -> config/build node
    edges: list[Edge]
    latest: dict[str, LatestMark]
    findings: list[FindingMark]

    @property
    def app_findings(self) -> list[FindingMark]:
        """Findings naming the app itself, or a row the picture has no node for."""
        return [f for f in self.findings if f.node is None]


def _row_nodes(story: AppStory) -> dict[str, Node]:
    rows: dict[str, Node] = {}
    for kind, uses in (("config", story.configs), ("build", story.builds)):
        for use in uses.values():
            key = f"{kind}:{use.uuid}"
            rows[key] = Node(key, kind, use.uuid, use.created, users=tuple(use.versions),
                             foreign_uses=use.foreign_uses)
    return rows


def _attach(findings: Iterable[dict[str, Any]], nodes: dict[str, Node]) -> list[FindingMark]:
    marks = []
    for number, finding in enumerate(findings, start=1):
        obj = finding.get("object") or {}
        table = str(obj.get("table", ""))
        object_id = str(obj.get("uuid") or obj.get("name") or "")
        mark = FindingMark(number, str(finding.get("check", "")), str(finding.get("severity", "info")),
                           str(finding.get("message", "")), table, object_id)
        kind = _TABLE_KIND.get(table)
        node = nodes.get(f"{kind}:{object_id}") if kind else None
        if node is not None:
            mark.node = node.key
            node.findings.append(mark)
        marks.append(mark)
    return marks


def build_graph(story: AppStory, findings: Iterable[dict[str, Any]] = (), marks: Marks | None = None) -> Graph:
    """The graph of ``story`` with ``findings`` (JSON form) attached and ``marks`` applied."""
    marks = marks or Marks()
    live_uuid = story.live.uuid if story.live is not None else None
    rows = _row_nodes(story)
    releases: list[Node] = []
    edges: list[Edge] = []
    for rel in story.releases:
        node = Node(f"release:{rel.uuid}", "release", rel.uuid, rel.created, version=rel.version,
                    summary=rel.summary, failed=rel.failed, live=rel.uuid == live_uuid)
        node.marks |= marks.releases.get(rel.uuid, set())
        releases.append(node)
        for kind, row in (("config", rel.config), ("build", rel.build)):
            if row is None:
                continue
            key = f"{kind}:{row}"
            if key not in rows:  # another app's row, or a dangling reference
                rows[key] = Node(key, kind, row, None, in_app=False)
            if not rows[key].in_app:
                rows[key].users += (rel.version,)
            edges.append(Edge(rel.uuid, kind, row, set(marks.edges.get((rel.uuid, kind), set()))))
    for node in rows.values():
        node.marks |= marks.rows.get(node.uuid, set())
    latest: dict[str, LatestMark] = {}
    for kind in ROW_KINDS:
        found = story.latest.get(kind)
        if found is None:
            continue
        code, sentence = verdict(found, story.migration or None)
        today = found.today.uuid if found.today is not None else None
        latest[kind] = LatestMark(kind, today, found.expected, found.ties, code, sentence)
        if today is not None and f"{kind}:{today}" in rows:
            rows[f"{kind}:{today}"].marks.add("latest-ok" if code == "ok" else "latest-today")
        if found.expected is not None and found.expected != today and f"{kind}:{found.expected}" in rows:
            rows[f"{kind}:{found.expected}"].marks.add("latest-expected")
    index = {n.key: n for n in releases} | rows
    attached = _attach(findings, index)
    return Graph(story.name, story.uuid, releases, rows, edges, latest, attached)
