"""future-dated: a release, config or build created after the database's ``now()`` plus the
allowed clock skew: written by a controller host whose clock ran ahead."""

from psycopg import sql

from auditor.core.catalogue import Check
from auditor.core.detect import Generation
from auditor.core.passes import future_dated
from auditor.core.query import Query, text
from checks._latest import BUILD_DIFFS_AGAINST_LATEST_UNTIL, consequence

_SQL = """
SELECT CASE WHEN f.top AND f.tbl <> 'api_build' THEN 'critical'
            WHEN f.top THEN {build_severity} ELSE 'warning' END AS severity,
       f.app_id AS app_uuid, a.name AS app_name, f.tbl AS object_table, f.uuid::text AS object_id,
       format('%%s %%s is dated %%s, %%s ahead of the database''s clock: %%s', f.what, f.name, f.created,
              date_trunc('second', f.created - now()),
              CASE WHEN NOT f.top
                   THEN 'it becomes the newest once the rows dated after it are fixed, and every row the '
                        'controller writes meanwhile is dated before it'
                   WHEN f.tbl = 'api_release'
                   THEN format('it stays the newest release (release_set.latest()) through every deploy, so the '
                               'controller numbers every next release v%%s: at the latest the second deploy from '
                               'now fails on UNIQUE(app_id, version)%%s', f.version + 1,
                               CASE WHEN f.failed THEN ''
                                    ELSE ', and it stays the live release whatever is deployed after it' END)
                   WHEN f.tbl = 'api_config'
                   THEN 'it stays config_set.latest() through every config:set: {config_effect}'
                   ELSE 'it stays build_set.latest() through every push: {build_effect}' END) AS message,
       '[]'::json AS related,
       json_build_object('table', f.tbl, 'created', f.created, 'now', now(),
                         'ahead_seconds', round(extract(epoch FROM f.created - now())),
                         'newest', f.top, 'version', f.version, 'failed', f.failed) AS evidence
FROM (
    SELECT 'api_release'::text AS tbl, 'release'::text AS what, 'v' || p.version AS name, p.uuid, p.app_id,
           p.created, p.version, p.failed, p.created = p.app_newest_created AS top
    FROM rel_notable p WHERE {future_release}
    UNION ALL
    SELECT 'api_config', 'config', c.uuid::text, c.uuid, c.app_id, c.created, NULL, NULL,
           coalesce(lc.created = c.created, false)
    FROM cfg c LEFT JOIN latest_cfg lc ON lc.app_id = c.app_id WHERE {future_config}
    UNION ALL
    SELECT 'api_build', 'build', b.uuid::text, b.uuid, b.app_id, b.created, NULL, NULL,
           coalesce(lb.created = b.created, false)
    FROM bld b LEFT JOIN latest_bld lb ON lb.app_id = b.app_id WHERE {future_build}
) f
LEFT JOIN apps a ON a.uuid = f.app_id
"""


def future_sql(generation: Generation) -> Query:
    """The SELECT for ``generation`` (what a future-dated latest() row breaks depends on it)."""
    build_severity = "'critical'" if generation.migration <= BUILD_DIFFS_AGAINST_LATEST_UNTIL else "'warning'"
    config_effect = consequence("config", generation)[1]
    build_effect = consequence("build", generation)[1]
    # Only constant texts are substituted: no input reaches this SQL.
    return Query(_SQL, {"build_severity": sql.SQL(build_severity),  # a quoted constant
                        "config_effect": text(config_effect), "build_effect": text(build_effect),
                        "future_release": future_dated("p.created"), "future_config": future_dated("c.created"),
                        "future_build": future_dated("b.created")})


CHECK = Check(
    id="future-dated",
    severity="critical",
    levels=("critical", "warning"),
    title="Release, config or build dated in the future",
    rationale="""\
The controller dates every row with its own host's clock, and every `latest()` it relies on
is "newest by `created`".  A row created after the database's `now()` plus the allowed clock
skew (`--skew`, default 60 s; rows up to then are in flight) came from a controller host
whose clock ran ahead (a wrong NTP setting, a VM restored with a bad clock).  Every row the
controller writes afterwards is dated before it, so the future-dated row stays the newest:
a future-dated release stays `release_set.latest()` and, if it did not fail, the live
release, whatever is deployed after it, and the controller keeps numbering new releases from
it, so at the latest the second deploy fails on `UNIQUE(app_id, version)`; a future-dated
config stays `config_set.latest()` (boot re-saves it; on Deis v2.0 `config:set` merges over
it); a future-dated build stays `build_set.latest()` (pushes on Deis up to 0019 diff against
it).  Critical when the row is the app's newest release or its `latest()` row (for builds
only where pushes read `build_set.latest()`, a warning elsewhere), warning for the others,
which become the newest once those are fixed.  Never hidden as "in flight", and no repair
copies its date or dates a row after `now()`: `restore-latest` moves a future-dated newest
config or build back before the live release's, `release-order` (opt-in) a future-dated
newest release back before the highest version, or to just after the app's newest other
release when it is the highest version itself; the clock of the controller host needs
fixing by hand.""",
    passes=("rel_notable", "cfg", "bld", "latest_cfg", "latest_bld", "apps"),
    sql=future_sql,
)
