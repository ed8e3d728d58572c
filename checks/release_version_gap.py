"""release-version-gap: an app's release versions skip numbers in 1..max."""

from auditor.core.catalogue import Check
from auditor.core.query import Query

# A gap is a release whose previous version (in position order) is more than one below it;
# only gap rows are expanded, each to at most 50 missing versions, so a huge gap stays cheap.
_SQL = """
SELECT 'warning' AS severity, g.app_id AS app_uuid, a.name AS app_name, 'api_app' AS object_table,
       g.app_id::text AS object_id,
       format('app %%s is missing %%s release version(s) of v1..v%%s (%%s releases): v%%s%%s',
              a.name, g.missing_count, g.max_version, g.releases,
              array_to_string(g.missing[1:10], ', v'),
              CASE WHEN g.missing_count > 10 THEN ', ...' ELSE '' END) AS message,
       '[]'::json AS related,
       json_build_object('missing_versions', g.missing, 'missing_count', g.missing_count,
                         'missing_truncated', g.missing_count > 50,
                         'max_version', g.max_version, 'releases', g.releases) AS evidence
FROM (
    SELECT p.app_id, max(p.app_releases) AS releases, max(p.app_max_version) AS max_version,
           sum(CASE WHEN gs.v = p.prev + 1 THEN p.version - p.prev - 1 ELSE 0 END) AS missing_count,
           (array_agg(gs.v ORDER BY gs.v))[1:50] AS missing
    FROM (SELECT app_id, version, coalesce(prev_version, 0) AS prev, app_releases, app_max_version
          FROM rel_notable WHERE version > coalesce(prev_version, 0) + 1) p
    CROSS JOIN LATERAL generate_series(p.prev + 1, least(p.version - 1, p.prev + 50)) AS gs(v)
    GROUP BY p.app_id
) g
LEFT JOIN apps a ON a.uuid = g.app_id
"""

CHECK = Check(
    id="release-version-gap",
    severity="warning",
    title="Release versions with gaps",
    rationale="""\
The controller numbers releases consecutively from v1, so a missing version means release
rows were deleted: by an ORM cascade from a shared config or build (deleting one row deletes
every release using it), or by hand.  The controller does not notice: it numbers the next
release from the newest by `created` (its version + 1, every generation), but
`releases:rollback` to a missing version fails, `releases` shows a history that no longer
matches what ran, and the rows a rollback would need are gone.  Missing v1 counts (v1 holds
the initial config).  Evidence lists the missing versions (first 50) and their count.""",
    passes=("rel_notable", "apps"),
    sql=Query(_SQL),
)
