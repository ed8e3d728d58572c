"""cross-app-reference: a release whose config or build belongs to another app."""

from auditor.core.catalogue import Check
from auditor.core.query import Query

# The foreign config/build and its app are read from the base tables, not the scoped
# passes: under --app the other app's rows are outside the scope but must still be named.
_SQL = """
SELECT 'critical' AS severity,
       x.app_id AS app_uuid, a.name AS app_name, 'api_release' AS object_table, x.uuid::text AS object_id,
       format('release v%%s%%s uses %%s', x.version,
              CASE WHEN l.uuid = x.uuid THEN ' (the live release)' ELSE '' END,
              concat_ws(' and ',
                        CASE WHEN x.config_foreign
                             THEN format('config %%s of app %%s', x.config_id,
                                         coalesce(x.config_app_name, x.config_app::text)) END,
                        CASE WHEN x.build_foreign
                             THEN format('build %%s of app %%s', x.build_id,
                                         coalesce(x.build_app_name, x.build_app::text)) END)) AS message,
       CASE WHEN x.config_foreign AND x.build_foreign THEN json_build_array(x.config_ref, x.build_ref)
            WHEN x.config_foreign THEN json_build_array(x.config_ref)
            ELSE json_build_array(x.build_ref) END AS related,
       json_build_object('version', x.version, 'failed', x.failed, 'created', x.created,
                         'is_live', l.uuid IS NOT DISTINCT FROM x.uuid, 'live_version', l.version,
                         'config_app', x.config_app, 'build_app', x.build_app) AS evidence
FROM (
    SELECT r.uuid, r.app_id, r.version, r.failed, r.created, r.config_id, r.build_id,
           c.app_id AS config_app, ca.id AS config_app_name, b.app_id AS build_app, ba.id AS build_app_name,
           coalesce(c.app_id <> r.app_id, false) AS config_foreign,
           coalesce(b.app_id <> r.app_id, false) AS build_foreign,
           json_build_object('table', 'api_config', 'uuid', c.uuid,
                             'app', json_build_object('uuid', c.app_id, 'name', ca.id)) AS config_ref,
           json_build_object('table', 'api_build', 'uuid', b.uuid,
                             'app', json_build_object('uuid', b.app_id, 'name', ba.id)) AS build_ref
    -- Candidates first (the foreign_rel pass: releases whose config or build is not among
    -- their own app's rows); only those are looked up in the base tables, by primary key.
    FROM foreign_rel r
    LEFT JOIN api_config c ON c.uuid = r.config_id
    LEFT JOIN api_app ca ON ca.uuid = c.app_id
    LEFT JOIN api_build b ON b.uuid = r.build_id
    LEFT JOIN api_app ba ON ba.uuid = b.app_id
) x
LEFT JOIN apps a ON a.uuid = x.app_id
LEFT JOIN live l ON l.app_id = x.app_id
WHERE x.config_foreign OR x.build_foreign
"""

CHECK = Check(
    id="cross-app-reference",
    severity="critical",
    title="Release uses another app's config or build",
    rationale="""\
A release whose config or build row belongs to a different app (`api_release.app_id`
differs from the config's or build's `app_id`).  No constraint prevents it: the foreign
keys point at `uuid` alone.  It comes from hand-written SQL (a "fix" that re-pointed a
release, a config moved to another app with `UPDATE ... SET app_id`) or a restore that
merged two databases.  The controller trusts the pointer: deploying, scaling, restarting
or rolling back to that release ships the other app's environment (secrets included) or
the other app's image under this app's name, and an ORM delete of the other app (or of
the row) cascades through the shared row and removes this app's release with it
(`shared-config` / `shared-build` report the row when several releases use it).  Each new
release of the app copies the live release's foreign reference, so their number grows with
every deploy until fixed by hand.  Reported per
release, with the foreign rows and their app; never repaired automatically, because
which row the release should have used cannot be known from the database.""",
    passes=("foreign_rel", "apps", "live"),
    sql=Query(_SQL),
)
