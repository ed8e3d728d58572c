"""``plan show PLAN --format html``: per app, the picture before and after the repair.

A plan file holds the actions, not the apps' histories, so the "before" picture is the
database now, read in one read-only snapshot (``--dsn`` and the usual target variables), after
checking that it is the database the plan was made on.  The "after" picture is the before
with the plan's actions laid over it (:mod:`auditor.reports.picture.overlay`).
"""

from __future__ import annotations

from collections import Counter
from itertools import islice

from auditor import __version__
from auditor.audit import Audit
from auditor.audit.runner import Scope
from auditor.audit.story import app_story
from auditor.core.findings import Finding
from auditor.reports.picture.explain_page import finding_rows, fixes_of, generated
from auditor.reports.picture.graph import build_graph
from auditor.reports.picture.overlay import overlay
from auditor.reports.picture.render import draw, page
from repairs.model import expected_changes
from repairs.planfile import Plan
from repairs.summary import LINES_PER_APP, action_line, changes_text

#: Apps drawn (those with the most actions first); the others are listed with their counts.
DRAWN_APPS = 30
#: Damaged or changed nodes each picture draws on its own.
PLAN_ITEMS = 80


def _app_findings(audit: Audit, name: str, uuid: str) -> list[Finding]:
    checks = [c for c in audit.checks if not c.database_level]
    if not checks:
        return []
    return list(audit.findings(checks, Scope((name,), (uuid,))))


def _app_name(audit: Audit, uuid: str) -> str | None:
    row = audit.conn.execute("SELECT id FROM api_app WHERE uuid = %s", (uuid,)).fetchone()
    return None if row is None else row[0]


def plan_html(plan: Plan, path: str, audit: Audit, target: str) -> str:
    """The page: header, then per app (the most actions first) before, after, and the actions."""
    per_app = Counter(row.app for row in plan.actions.rows)
    refused: dict[str, list] = {}
    for refusal in plan.refusals:
        refused.setdefault(refusal.app_uuid, []).append(refusal)
    order = sorted(per_app, key=lambda i: (-per_app[i], plan.actions.apps[i][1] or plan.actions.apps[i][0]))
    drawn = order[:DRAWN_APPS]
    wanted = set(drawn)
    actions_of: dict[int, list] = {i: [] for i in drawn}
    for row in plan.actions.rows:
        if row.app in wanted:
            actions_of[row.app].append(plan.actions.action(row))
    apps = []
    for index, app_index in enumerate(drawn):
        uuid, name = plan.actions.apps[app_index]
        actions = actions_of[app_index]
        counts = Counter(a.repair for a in actions)
        entry = {"anchor": f"app{index}", "name": name or uuid, "uuid": uuid, "actions": len(actions),
                 "counts": dict(counts), "changes": changes_text(expected_changes(actions)),
                 "lines": [action_line(a) for a in islice(actions, LINES_PER_APP)],
                 "more": max(0, len(actions) - LINES_PER_APP), "refusals": refused.pop(uuid, []),
                 "missing": False, "problems": []}
        current = _app_name(audit, uuid)
        if current is None:
            entry["missing"] = True
            apps.append(entry)
            continue
        story = app_story(audit.conn, audit.generation, current)
        findings = _app_findings(audit, current, uuid)
        docs = [f.to_json() for f in findings]
        lay = overlay(story, actions)
        before = build_graph(story, docs, lay.before)
        after = build_graph(lay.after_story, (), lay.after)
        entry.update(
            before=draw(before, generation=audit.generation.label, prefix=f"b{index}-", link=True,
                        max_items=PLAN_ITEMS),
            after=draw(after, generation=audit.generation.label, prefix=f"a{index}-", max_items=PLAN_ITEMS),
            before_graph=before, after_graph=after, rows=finding_rows(before, fixes_of(findings)), prefix=f"b{index}-",
            problems=lay.problems,
        )
        apps.append(entry)
    rest = [(plan.actions.apps[i][1] or plan.actions.apps[i][0], per_app[i]) for i in order[DRAWN_APPS:]]
    only_refused = [(r.app_name or r.app_uuid, r) for rs in refused.values() for r in rs]
    totals = plan.actions.repair_counts()
    return page(
        "plan.html.j2", plan=plan, path=path, target=target, apps=apps, rest=rest, only_refused=only_refused,
        totals=dict(totals), changes=changes_text(plan.actions.expected_changes()), drawn_limit=DRAWN_APPS,
        app_count=len(per_app), plan_legend=True, tool_version=__version__, generated=generated(),
    )
