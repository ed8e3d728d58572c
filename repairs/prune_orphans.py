"""prune-orphans: delete configs and builds that no release references.

Only rows outside the in-flight window ``[now - grace, now + skew]`` (the controller inserts a
config or build before its release, so a young unreferenced row may be a deploy in flight; a
row dated later than that is future-dated, not in flight), exactly as the orphan-config and
orphan-build checks define them.  Each row's full image goes into the plan and into the
undo file, so a prune can be reviewed and undone.

Never the newest config of an app that has no release (a failed ``apps:create``, or every
release deleted): ``App.create`` and the next ``config:set`` build release v1 on
``config_set.latest()``, so that row is not an orphan but the app's only state.  It is listed
under ``refused`` with the reason; the app itself is the app-without-release finding.
"""

from __future__ import annotations

import json

from psycopg import sql

from checks._orphans import PROTECTED_CONFIG
from repairs.context import PlanningContext, iso
from repairs.model import POINTER, kind_of

REPAIR = "prune-orphans"

_ORPHANS = """
SELECT t.uuid::text, t.app_id::text, t.created, md5(t::text), row_to_json(t)::text, a.uuid IS NOT NULL,
       {protected} AS protected
FROM {table} t
LEFT JOIN api_app a ON a.uuid = t.app_id
WHERE (%(everything)s OR t.app_id = ANY(%(apps)s::uuid[]))
  AND NOT EXISTS (SELECT 1 FROM api_release r WHERE r.{pointer} = t.uuid)
  AND (t.created <= %(before)s OR t.created > %(after)s)
ORDER BY t.app_id, t.created, t.uuid
"""

#: The newest config of an app without releases (what App.create builds v1 on).
_PROTECTED_CONFIG = """NOT EXISTS (SELECT 1 FROM api_release r WHERE r.app_id = t.app_id)
       AND t.created = (SELECT max(c.created) FROM api_config c WHERE c.app_id = t.app_id)"""


def plan(ctx: PlanningContext) -> None:
    """Plan the deletion of every orphan config and build in scope."""
    for table, pointer in POINTER.items():
        protected = sql.SQL(_PROTECTED_CONFIG if table == "api_config" else "false")
        query = sql.SQL(_ORPHANS).format(table=sql.Identifier(table), pointer=sql.Identifier(pointer),
                                         protected=protected)
        params = {**ctx.scope_params, "before": ctx.in_flight_before, "after": ctx.future_after}
        pruned = ctx.pruned.setdefault(table, set())
        for uuid, app, created, fingerprint, image, app_exists, is_protected in ctx.conn.execute(query, params):
            if not app_exists:
                ctx.refuse(REPAIR, table, app, uuid,
                           f"{kind_of(table)} {uuid} belongs to app {app}, which does not exist (dangling "
                           "reference): not deleting rows of an app that is not there")
                continue
            if is_protected:
                ctx.refuse(REPAIR, table, app, uuid, f"config {uuid} is {PROTECTED_CONFIG}")
                continue
            pruned.add(uuid)
            ctx.add(repair=REPAIR, kind="prune", table=table, app_uuid=app, row=uuid, fingerprint=fingerprint,
                    image=json.loads(image),
                    why=f"{kind_of(table)} created {iso(created)} is used by no release (orphan "
                        + ("dated in the future" if created > ctx.future_after
                           else f"older than the grace period of {ctx.grace_seconds:g}s") + ")")
