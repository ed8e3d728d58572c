"""``plan show``: a plan as a person reviews it - per app what changes and why, then totals."""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import islice

from auditor.core.text import escape
from repairs.model import Action, expected_changes, kind_of
from repairs.planfile import Plan

#: At most this many actions are listed per app (the counts always cover all of them).
LINES_PER_APP = 40

_VERB = {
    "copy": "own copy of {kind} {row} -> {new} (created {created})",
    "redate": "re-date {kind} {row} to {created}",
    "prune": "delete orphan {kind} {row}",
    "uncopy": "point back at {kind} {new}, delete copy {row}",
    "reinsert": "re-insert {kind} {row}",
}


def action_line(action: Action) -> str:
    """One line: where, what, why."""
    where = f"v{action.release_version}" if action.release_version is not None else "-"
    what = _VERB[action.kind].format(kind=kind_of(action.table), row=action.row, new=action.new_uuid,
                                     created=action.new_created)
    return f"  {action.repair:<14} {where:>6}  {escape(what)}\n  {'':<14} {'':>6}  why: {escape(action.why)}"


def changes_text(changes: dict[str, dict[str, int]]) -> str:
    """``api_config +3 ~1 -2, api_release ~3``."""
    parts = []
    for table, c in changes.items():
        signs = [f"+{c['insert']}" if c["insert"] else "", f"~{c['update']}" if c["update"] else "",
                 f"-{c['delete']}" if c["delete"] else ""]
        parts.append(f"{table} {' '.join(s for s in signs if s)}")
    return ", ".join(parts) or "no row changes"


def show(plan: Plan, path: str) -> str:
    """The whole human summary of ``plan``."""
    ident = plan.identity
    lines = [
        f"plan {path}  ({plan.checksum})",
        f"  made {plan.created} by controller-audit {plan.tool_version}",
        f"  database {escape(ident.database)} on {escape(ident.target)}, {ident.generation} api "
        f"{escape(ident.migration_name)}"
        + (f", system id {ident.system_identifier}" if ident.system_identifier else ""),
        f"  repairs: {', '.join(plan.repairs)}; apps: {', '.join(plan.apps) or 'all'}; "
        f"grace {plan.grace_seconds:g}s",
        "",
    ]
    by_app: dict[str, list[Action]] = defaultdict(list)
    for action in plan.actions:
        by_app[action.app_name or action.app_uuid].append(action)
    refused: dict[str, list] = defaultdict(list)
    for refusal in plan.refusals:
        refused[refusal.app_name or refusal.app_uuid].append(refusal)
    for app in sorted(set(by_app) | set(refused)):
        actions = by_app.get(app, [])
        counts = Counter(a.repair for a in actions)
        lines.append(f"app {escape(app)}: {len(actions)} action(s) ({', '.join(f'{r} {n}' for r, n in counts.items())}"
                     f"{'' if counts else 'none'}); rows: {changes_text(expected_changes(actions))}")
        lines += [action_line(a) for a in islice(actions, LINES_PER_APP)]
        if len(actions) > LINES_PER_APP:
            lines.append(f"  ... and {len(actions) - LINES_PER_APP} more action(s) for {escape(app)} (all are in the plan file)")
        for refusal in refused.get(app, []):
            lines.append(f"  NOT REPAIRED ({refusal.repair}, {kind_of(refusal.table)} {refusal.row or '-'}): "
                         f"{escape(refusal.why)}")
        lines.append("")
    totals = plan.actions.repair_counts()
    lines.append(f"total: {len(plan.actions)} action(s) in {len(by_app)} app(s)"
                 + (f" ({', '.join(f'{r} {n}' for r, n in totals.items())})" if totals else "")
                 + f"; {len(plan.refusals)} not repaired")
    lines.append(f"row changes: {changes_text(plan.actions.expected_changes())}")
    if plan.empty:
        lines.append("nothing to repair.")
    else:
        lines.append(f"next: controller-audit plan sql {path}   or   controller-audit apply {path}")
    return "\n".join(lines)
