"""app-without-release: an app with no release at all."""

from auditor.core.catalogue import Check
from auditor.core.passes import in_flight
from auditor.core.query import Query

_SQL = """
SELECT 'warning' AS severity, a.uuid AS app_uuid, a.name AS app_name, 'api_app' AS object_table,
       a.uuid::text AS object_id,
       format('app %%s (created %%s) has no release: its creation failed before release v1%%s',
              a.name, a.created,
              CASE WHEN count(c.uuid) > 0 THEN format(' (it has %%s config row(s))', count(c.uuid))
                   ELSE '' END) AS message,
       coalesce(array_to_json((array_agg(json_build_object('table', 'api_config', 'uuid', c.uuid,
                                                           'created', c.created)
                                         ORDER BY c.created, c.uuid)
                               FILTER (WHERE c.uuid IS NOT NULL))[1:100]), '[]'::json) AS related,
       json_build_object('app_created', a.created, 'releases', 0, 'configs', count(c.uuid),
                         'latest_config_created', max(c.created)) AS evidence
FROM (
    -- The apps without a release first (OFFSET 0 keeps the planner from joining their
    -- configs before the anti-join: under --app every config and release has the same
    -- app_id, and a hash on one repeated key is a quadratic walk of one bucket).
    SELECT a.uuid, a.name, a.created FROM apps a
    WHERE NOT EXISTS (SELECT 1 FROM rel_notable r WHERE r.app_id = a.uuid)
      AND NOT {in_flight}
    OFFSET 0
) a
LEFT JOIN cfg c ON c.app_id = a.uuid
GROUP BY a.uuid, a.name, a.created
"""

CHECK = Check(
    id="app-without-release",
    severity="warning",
    title="App without any release",
    rationale="""\
`App.create` inserts the app and its initial config, then release v1, in separate
autocommitted steps; when it fails half-way (a scheduler or namespace error) the app exists
with no release.  The controller has no current release for it: every request that looks up
the app's current release (deploy, scale, `config:set`, `releases:rollback`, boot's
`load_db_state_to_k8s`) fails with "does not exist".  Apps in flight (created within the
grace period before now or the clock skew after it) are an `apps:create` in progress and are
skipped.  Delete the app through the controller (`apps:destroy`) or recreate it.""",
    passes=("apps", "rel_notable", "cfg"),
    sql=Query(_SQL, {"in_flight": in_flight("a.created")}),
)
