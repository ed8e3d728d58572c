"""Open the plan's database read-only, check it is the plan's, and draw the plan."""

from __future__ import annotations

from dataclasses import replace

from auditor.audit import open_audit
from auditor.core.settings import Settings
from auditor.reports.picture.plan_page import plan_html
from repairs.identity import identify
from repairs.planfile import Plan


def plan_show_html(plan: Plan, path: str, settings: Settings) -> str:
    """``plan show PLAN --format html``: a :class:`PlanRefused` if the database is another one.

    The findings are read with the plan's own grace period (the clock it was planned with)."""
    with open_audit(replace(settings, grace_seconds=plan.grace_seconds), apps=()) as audit:
        plan.identity.check_same(identify(audit.conn, audit.generation, settings.target))
        return plan_html(plan, path, audit, settings.target.describe())
