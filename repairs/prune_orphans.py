"""prune-orphans: delete the configs and builds the orphan-config and orphan-build checks report.

The planner starts from the checks' own findings, in the plan's snapshot with the plan's scope and
clock (the in-flight window ``[now - grace, now + skew]``), so it deletes exactly the rows the
checks call orphans: none in flight, none that some release of any app uses.  A finding the check
marks for fixing by hand (a row of an app that does not exist; the newest config of an app
without releases, which ``App.create`` builds v1 on) is listed under ``refused`` with the check's
reason.  Each pruned row's full image goes into the plan and into the undo file, so a prune can
be reviewed and undone.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import NamedTuple

from psycopg import sql
from psycopg.rows import args_row

from repairs.context import PlanningContext, iso
from repairs.model import POINTER, kind_of

REPAIR = "prune-orphans"

#: The rows to prune as they are now: fingerprint and image (one query per table, by primary key).
_ROWS = "SELECT t.uuid::text AS uuid, t.created, md5(t::text) AS fingerprint, row_to_json(t)::text AS image " \
        "FROM {table} t WHERE t.uuid = ANY(%s::uuid[]) ORDER BY t.app_id, t.created, t.uuid"


class _Row(NamedTuple):
    uuid: str
    created: datetime
    fingerprint: str
    image: str


def plan(ctx: PlanningContext) -> None:
    """Plan the deletion of every orphan config and build the checks report in scope."""
    findings = ctx.findings(REPAIR)
    for table in POINTER:
        mine = [f for f in findings if f.object_table == table]
        for finding in mine:
            if finding.manual is not None:
                ctx.refuse(REPAIR, table, str(finding.app_uuid), finding.object_id, finding.manual)
        apps = {f.object_id: str(f.app_uuid) for f in mine if f.manual is None}
        if not apps:
            continue
        pruned = ctx.pruned.setdefault(table, set())
        query = sql.SQL(_ROWS).format(table=sql.Identifier(table))
        with ctx.conn.cursor(row_factory=args_row(_Row)) as cur:
            for row in cur.execute(query, (sorted(apps),)):
                pruned.add(row.uuid)
                ctx.add(repair=REPAIR, kind="prune", table=table, app_uuid=apps[row.uuid], row=row.uuid,
                        fingerprint=row.fingerprint, image=json.loads(row.image),
                        why=f"{kind_of(table)} created {iso(row.created)} is used by no release (orphan "
                            + ("dated in the future" if row.created > ctx.future_after
                               else f"older than the grace period of {ctx.grace_seconds:g}s") + ")")
