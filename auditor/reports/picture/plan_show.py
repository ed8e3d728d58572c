"""Open the plan's database read-only, check it is the plan's, and draw the plan."""

from __future__ import annotations

from auditor.audit import open_audit
from auditor.core.connection import Target
from auditor.reports.picture.plan_page import plan_html
from repairs.identity import identify
from repairs.planfile import Plan


def plan_show_html(plan: Plan, path: str, target: Target, statement_timeout: str, lock_timeout: str) -> str:
    """``plan show PLAN --format html``: a :class:`PlanRefused` if the database is another one."""
    with open_audit(target, grace_seconds=plan.grace_seconds, statement_timeout=statement_timeout,
                    lock_timeout=lock_timeout) as audit:
        plan.identity.check_same(identify(audit.conn, audit.generation, target))
        return plan_html(plan, path, audit, target.describe())
