"""``check --format html``: a one-page report of a whole audit, for a cron job to publish.

Bounded whatever the database's size: the findings stream past once and only counts are kept
(per check, per app: three integers); then, in the same snapshot, the :data:`DRAWN_APPS` worst
apps are read again (their findings and their stories, through the app-scoped, indexed queries
``explain`` uses) and drawn small.  The page says what it left out.
"""

from __future__ import annotations

import heapq
import shlex
from collections import Counter
from collections.abc import Iterable
from typing import TextIO

from auditor import __version__
from auditor.audit import Audit
from auditor.audit.runner import Scope, resolve_scope
from auditor.audit.story import app_story
from auditor.audit.streamed import StreamedFinding
from auditor.core.findings import SEVERITIES, SEVERITY_RANK, Finding
from auditor.reports.picture.explain_page import finding_rows, fixes_of, generated
from auditor.reports.picture.graph import build_graph
from auditor.reports.picture.render import draw, page
from auditor.reports.report import Report

#: Apps drawn with their pictures and findings (the worst first).
DRAWN_APPS = 20
#: Apps listed in the ranking table.
LISTED_APPS = 500
#: Findings listed per drawn app, and database-level findings listed.
FINDINGS_PER_APP = 40
#: Damaged nodes a small picture draws on their own; apps up to this many releases are drawn in full.
SMALL_ITEMS = 30
SMALL_FULL_UP_TO = 16


def _worst(per_app: dict[str, list[int]], n: int) -> list[tuple[str, list[int]]]:
    """The ``n`` apps with the most critical, then warning, then info findings (then by name)."""
    return heapq.nsmallest(n, per_app.items(), key=lambda item: (*(-c for c in item[1]), item[0]))


def _findings_of(audit: Audit, report: Report, names: list[str]) -> dict[str, list[Finding]]:
    """The findings of ``names`` (same snapshot, same checks, same baseline), by app."""
    out: dict[str, list[Finding]] = {name: [] for name in names}
    checks = [c for c in audit.checks if not c.database_level]
    if not names or not checks:
        return out
    scope = resolve_scope(audit.conn, names)
    for finding in audit.findings(checks, scope):
        if report.baseline is not None and report.baseline.accepts(finding):
            continue
        if finding.app_name in out:
            out[finding.app_name].append(finding)
    return out


def _database_findings(audit: Audit, report: Report) -> list[Finding]:
    checks = [c for c in audit.checks if c.database_level]
    if not checks:
        return []
    found = []
    for finding in audit.findings(checks, Scope()):
        if report.baseline is None or not report.baseline.accepts(finding):
            found.append(finding)
    return found


def write_html(out: TextIO, report: Report, findings: Iterable[Finding | StreamedFinding], audit: Audit) -> None:
    """Stream ``findings`` (counted only), then write the page."""
    per_app: dict[str, list[int]] = {}
    appless = [0, 0, 0]
    for finding in findings:
        rank = SEVERITY_RANK[finding.severity]
        counts = per_app.setdefault(finding.app_name, [0, 0, 0]) if finding.app_name else appless
        counts[rank] += 1
    for counted in report.hidden:  # counted by the server, not listed (below --min-severity)
        counts = per_app.setdefault(counted.app_name, [0, 0, 0]) if counted.app_name else appless
        counts[SEVERITY_RANK[counted.severity]] += counted.findings
    worst = _worst(per_app, LISTED_APPS)
    drawn_names = [name for name, _ in worst[:DRAWN_APPS]]
    by_app = _findings_of(audit, report, drawn_names)
    apps = []
    for index, (name, counts) in enumerate(worst[:DRAWN_APPS]):
        story = app_story(audit.conn, audit.generation, name)
        docs = [f.to_json() for f in by_app[name]]
        graph = build_graph(story, docs)
        prefix = f"app{index}-"
        drawing = draw(graph, generation=audit.generation.label, prefix=prefix, link=True,
                       max_items=SMALL_ITEMS, full_up_to=SMALL_FULL_UP_TO)
        rows = finding_rows(graph, fixes_of(by_app[name]))
        apps.append({"anchor": f"app{index}", "name": name, "counts": counts, "graph": graph, "drawing": drawing,
                     "rows": rows[:FINDINGS_PER_APP], "more": max(0, len(rows) - FINDINGS_PER_APP),
                     "prefix": prefix, "explain": f"controller-audit explain {shlex.quote(name)} --format html "
                                                  f"-o {shlex.quote(name + '.html')}"})
    database = _database_findings(audit, report)
    anchors = {a["name"]: a["anchor"] for a in apps}
    by_check = [(cid, [report.by_check.get(cid, Counter()).get(s, 0) for s in SEVERITIES]) for cid in report.checks]
    out.write(page(
        "report.html.j2", report=report, summary=report.summary(), severities=SEVERITIES, by_check=by_check,
        ranking=[(name, counts, anchors.get(name)) for name, counts in worst], ranking_more=len(per_app) - len(worst),
        apps=apps, drawn_limit=DRAWN_APPS, listed_limit=LISTED_APPS, appless=appless,
        database_findings=database[:FINDINGS_PER_APP], database_more=max(0, len(database) - FINDINGS_PER_APP),
        baseline_lines=report.baseline_lines(), generation=audit.generation.label, plan_legend=False,
        tool_version=__version__, generated=generated(),
    ))
