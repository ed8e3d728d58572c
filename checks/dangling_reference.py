"""dangling-reference: a reference to a config, build or app row that does not exist."""

from auditor.core.catalogue import Check
from auditor.core.detect import Generation
from auditor.core.query import Query, text

# Parents are looked up in the base tables (unscoped): a parent of another app is not
# missing, it is a cross-app reference.  Releases: one finding each, listing every
# missing parent.  Configs and builds: one finding each whose app is missing.
_SQL = """
WITH gone AS (
    -- Referenced rows that do not exist: the ids the releases use (config_use, build_use:
    -- one row per id) missing from the scoped passes (not ``present``), confirmed by primary
    -- key in the base table (under --app another app's row is outside the passes but not missing).
    SELECT 'config' AS kind, u.uuid FROM config_use u
    WHERE NOT u.present AND u.releases > 0
      AND NOT EXISTS (SELECT 1 FROM api_config p WHERE p.uuid = u.uuid)
    UNION ALL
    SELECT 'build', u.uuid FROM build_use u
    WHERE NOT u.present AND u.releases > 0
      AND NOT EXISTS (SELECT 1 FROM api_build p WHERE p.uuid = u.uuid)
)
SELECT 'critical' AS severity,
       x.app_id AS app_uuid, a.name AS app_name, 'api_release' AS object_table, x.uuid::text AS object_id,
       format('release v%%s points at %%s, which do%%s not exist', x.version, m.what,
              CASE WHEN m.missing = 1 THEN 'es' ELSE '' END) AS message,
       m.related,
       json_build_object('version', x.version, 'failed', x.failed, 'created', x.created,
                         'is_live', l.uuid IS NOT DISTINCT FROM x.uuid) AS evidence
FROM (
    -- Only the releases that can be dangling are read, by the release table's indexes: those of
    -- an app that is not a row (every app with releases has a row in rel_notable, its newest
    -- release) and those using a gone config or build (no scan of every release in scope).
    SELECT r.uuid, r.app_id, r.version, {failed} AS failed, r.created, r.config_id, r.build_id,
           r.app_id NOT IN (SELECT p.uuid FROM apps p) AS app_missing,
           r.config_id IN (SELECT g.uuid FROM gone g WHERE g.kind = 'config') AS config_missing,
           r.build_id IS NOT NULL
               AND r.build_id IN (SELECT g.uuid FROM gone g WHERE g.kind = 'build') AS build_missing
    FROM api_release r
    WHERE {scope}
      AND (r.app_id = ANY (ARRAY(SELECT DISTINCT n.app_id FROM rel_notable n
                                 WHERE n.app_id NOT IN (SELECT p.uuid FROM apps p)))
           OR r.config_id = ANY (ARRAY(SELECT g.uuid FROM gone g WHERE g.kind = 'config'))
           OR r.build_id = ANY (ARRAY(SELECT g.uuid FROM gone g WHERE g.kind = 'build')))
) x
CROSS JOIN LATERAL (
    SELECT count(*) AS missing,
           string_agg(format('%%s %%s', d.kind, d.ref), ' and ' ORDER BY d.ord) AS what,
           json_agg(json_build_object('table', d.tbl, 'uuid', d.ref, 'column', d.col, 'exists', false)
                    ORDER BY d.ord) AS related
    FROM (VALUES (1, 'app', 'api_app', 'app_id', x.app_id, x.app_missing),
                 (2, 'config', 'api_config', 'config_id', x.config_id, x.config_missing),
                 (3, 'build', 'api_build', 'build_id', x.build_id, x.build_missing))
         AS d(ord, kind, tbl, col, ref, gone)
    WHERE d.gone
) m
LEFT JOIN apps a ON a.uuid = x.app_id
LEFT JOIN live l ON l.app_id = x.app_id
WHERE x.app_missing OR x.config_missing OR x.build_missing

UNION ALL

SELECT 'critical', o.app_id, NULL, o.tbl, o.uuid::text,
       format('%%s %%s belongs to app %%s, which does not exist (used by %%s release%%s)',
              o.kind, o.uuid, o.app_id, o.releases, CASE WHEN o.releases = 1 THEN '' ELSE 's' END),
       json_build_array(json_build_object('table', 'api_app', 'uuid', o.app_id, 'column', 'app_id',
                                          'exists', false)),
       json_build_object('created', o.created, 'releases', o.releases)
FROM (
    SELECT 'config' AS kind, 'api_config' AS tbl, u.uuid, u.app_id, u.created, sum(u.releases) AS releases
    FROM config_use u
    WHERE u.present AND NOT EXISTS (SELECT 1 FROM api_app p WHERE p.uuid = u.app_id)
    GROUP BY u.uuid, u.app_id, u.created
    UNION ALL
    SELECT 'build', 'api_build', u.uuid, u.app_id, u.created, sum(u.releases)
    FROM build_use u
    WHERE u.present AND NOT EXISTS (SELECT 1 FROM api_app p WHERE p.uuid = u.app_id)
    GROUP BY u.uuid, u.app_id, u.created
) o
"""

def dangling_sql(generation: Generation) -> Query:
    """The SELECT for ``generation`` (a release's ``failed`` exists from migration 0020)."""
    # Only a constant expression is substituted: no input reaches this SQL.
    return Query(_SQL, {"failed": text("r.failed" if generation.has_failed else "false")})


CHECK = Check(
    id="dangling-reference",
    severity="critical",
    title="Reference to a row that does not exist",
    rationale="""\
A release whose `config_id`, `build_id` or `app_id` names a row that does not exist, or a
config or build whose app does not exist.  The foreign keys make this impossible while
they are in place and enforced, so it means they were not: constraints dropped, triggers
disabled (`session_replication_role = replica`, `ALTER TABLE ... DISABLE TRIGGER ALL`),
or a dump restored without them (see `missing-constraint`).  The controller follows the
pointer without checking: `release.config` / `release.build` raise `DoesNotExist`, so
deploy, scale, restart, `releases:rollback` to that release and the boot-time
`load_db_state_to_k8s` fail (a dangling live release breaks every operation of its
app), and putting the constraint back (or validating it) fails until the row is dealt with.
Reported, never repaired automatically: the missing row cannot be recreated from what
is left.""",
    passes=("rel_notable", "apps", "live", "config_use", "build_use"),
    sql=dangling_sql,
)
