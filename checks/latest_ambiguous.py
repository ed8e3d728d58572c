"""latest-ambiguous: equal ``created`` at an app's newest config or build."""

from auditor.core.catalogue import Check
from auditor.core.detect import Generation
from checks._latest import BUILD_DIFFS_AGAINST_LATEST_UNTIL

_TIES = """
    SELECT {severity}::text AS severity, '{table}'::text AS object_table, '{set}'::text AS manager,
           lx.app_id, lx.uuid, lx.created, lx.ties, l.{kind}_id AS live_row,
           coalesce(bool_or(x.uuid = l.{kind}_id), false) AS live_tied,
           array_to_json((array_agg(json_build_object('table', '{table}', 'uuid', x.uuid,
                                                      'created', x.created,
                                                      'is_live', coalesce(x.uuid = l.{kind}_id, false))
                                    ORDER BY x.uuid))[1:100]) AS related
    FROM {latest} lx
    JOIN {rows} x ON x.app_id = lx.app_id AND x.created = lx.created
    LEFT JOIN live l ON l.app_id = lx.app_id
    WHERE lx.ties > 1
    GROUP BY lx.app_id, lx.uuid, lx.created, lx.ties, l.{kind}_id"""

_OUTER = """
SELECT t.severity, t.app_id AS app_uuid, a.name AS app_name, t.object_table,
       t.uuid::text AS object_id,
       format('%%s rows of %%s share the app''s newest created (%%s): %%s.latest() may return any of them%%s',
              t.ties, t.object_table, t.created, t.manager,
              CASE WHEN t.live_row IS NULL THEN ''
                   WHEN t.live_tied THEN ', the live release''s among them'
                   ELSE ', none of them the live release''s' END) AS message,
       t.related,
       json_build_object('table', t.object_table, 'created', t.created, 'tied_rows', t.ties,
                         'live_row', t.live_row, 'live_row_tied', t.live_tied) AS evidence
FROM (
{configs}
    UNION ALL
{builds}
) t
LEFT JOIN apps a ON a.uuid = t.app_id
"""


def ties_sql(generation: Generation) -> str:
    """The SELECT for ``generation``: a tie among builds matters only where pushes read
    ``build_set.latest()`` (Deis up to 0019)."""
    build_severity = "'warning'" if generation.migration <= BUILD_DIFFS_AGAINST_LATEST_UNTIL else "'info'"
    # Only constant table and pass names are substituted: no input reaches this SQL.
    return _OUTER.format(
        configs=_TIES.format(severity="'warning'", table="api_config", set="config_set", kind="config",
                             latest="latest_cfg", rows="cfg"),
        builds=_TIES.format(severity=build_severity, table="api_build", set="build_set", kind="build",
                            latest="latest_bld", rows="bld"),
    )


CHECK = Check(
    id="latest-ambiguous",
    severity="warning",
    levels=("warning", "info"),
    title="Several rows tie for the newest config or build",
    rationale="""\
`config_set.latest()` and `build_set.latest()` are `ORDER BY created DESC LIMIT 1` with no
tiebreak, so when two or more of an app's configs (builds) share the greatest `created`, the
controller picks one of them at the whim of the query plan: boot may re-save one config
today and another tomorrow, Deis up to api migration 0019 diffs the next push against either
build (a warning), and a repair that made "the live row the newest" is undone by the tie.
Deis 2.7+ and Hephy never read `build_set.latest()`, so a tie among builds is `info` there.  Ties come from SQL `now()` inside one
transaction (hand-written fixes, restores, bulk scripts), not from the controller, which
dates rows with the application clock.  One finding per app and table; the object is the
tied row with the smallest uuid, `related` lists all tied rows and which one is live.""",
    passes=("latest_cfg", "latest_bld", "cfg", "bld", "live", "apps"),
    sql=ties_sql,
)
