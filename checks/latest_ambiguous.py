"""latest-ambiguous: equal ``created`` at an app's newest config or build."""

from psycopg import sql

from auditor.core.catalogue import Check
from auditor.core.detect import Generation
from auditor.core.query import Query, text, union_all
from checks._latest import BUILD_DIFFS_AGAINST_LATEST_UNTIL

_TIES = """
    SELECT {severity}::text AS severity, '{table}'::text AS object_table, '{set}'::text AS manager,
           '{kind}'::text AS kind,
           lx.app_id, lx.uuid, lx.created, lx.ties, l.{kind}_id AS live_row,
           l.app_id IS NOT NULL AS has_live, coalesce(l.ambiguous, false) AS live_ambiguous, l.version AS live_version,
           (SELECT x.app_id FROM {table} x WHERE x.uuid = l.{kind}_id) AS live_row_app,
           coalesce(bool_or(x.uuid = l.{kind}_id), false) AS live_tied,
           array_to_json((array_agg(json_build_object('table', '{table}', 'uuid', x.uuid,
                                                      'created', x.created,
                                                      'is_live', coalesce(x.uuid = l.{kind}_id, false))
                                    ORDER BY x.uuid))[1:100]) AS related
    FROM {latest} lx
    JOIN {rows} x ON x.app_id = lx.app_id AND x.created = lx.created
    LEFT JOIN live l ON l.app_id = lx.app_id
    WHERE {tied}
    GROUP BY lx.app_id, lx.uuid, lx.created, lx.ties, l.{kind}_id, l.app_id, l.ambiguous, l.version"""

#: An app's newest row tied with others (one per app: ``latest_*`` has a row per app, the least uuid
#: of the tied rows, which are rows of ``cfg`` / ``bld`` like it, so the listing's join finds them).
_TIED = "lx.ties > 1"

#: How many findings, per severity and app, without writing them: the listing's rows (one per tied
#: newest row) with only their severity.  Its own SQL, not the listing's counted: a check listed and
#: counted was planned twice, and its rows joined every tied row and aggregated them.
_COUNT = """
SELECT {config_severity}::text AS severity, lx.app_id AS app_uuid, count(*) AS n FROM latest_cfg lx WHERE {tied}
GROUP BY lx.app_id
UNION ALL
SELECT {build_severity}::text AS severity, lx.app_id AS app_uuid, count(*) AS n FROM latest_bld lx WHERE {tied}
GROUP BY lx.app_id
"""

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
                         'live_row', t.live_row, 'live_row_tied', t.live_tied) AS evidence,
       CASE WHEN NOT t.has_live THEN 'no live release to compare with: which row should be the newest cannot be known'
            WHEN t.live_ambiguous THEN 'the live release is ambiguous (releases that did not fail tie on created); '
                                       'make the order unambiguous first (plan --repair release-order)'
            WHEN t.live_row IS NULL THEN format('the live release v%%s has no %%s: nothing of the live release''s to '
                                               'date after the tied rows', t.live_version, t.kind)
            WHEN t.live_row_app IS NULL THEN format('the live release v%%s points at %%s %%s, which does not exist '
                                                    '(dangling reference)', t.live_version, t.kind, t.live_row)
            WHEN t.live_row_app <> t.app_id THEN format('the live release v%%s uses %%s %%s of app %%s (cross-app '
                                                        'reference): not re-dating another app''s row',
                                                        t.live_version, t.kind, t.live_row, t.live_row_app)
       END AS manual
FROM (
{ties}
) t
LEFT JOIN apps a ON a.uuid = t.app_id
"""


def _build_severity(generation: Generation) -> str:
    """The severity of a tie among builds: ``warning`` where pushes read ``build_set.latest()``."""
    return "'warning'" if generation.migration <= BUILD_DIFFS_AGAINST_LATEST_UNTIL else "'info'"


def ties_count_sql(generation: Generation) -> Query:
    """How many findings :func:`ties_sql` gives, per severity and app (``severity``, ``app_uuid``, ``n``)."""
    return Query(_COUNT, {"config_severity": sql.SQL("'warning'"), "build_severity": sql.SQL(_build_severity(generation)),
                          "tied": text(_TIED)})


def ties_sql(generation: Generation, builds: bool = True) -> Query:
    """The SELECT for ``generation``: a tie among builds matters only where pushes read
    ``build_set.latest()`` (Deis up to 0019).  Its repair is restore-latest (which dates the live
    release's row after the tied ones) unless there is no unambiguous live row of the app to date
    (the ``manual`` column says why).  ``builds`` false: the ties among configs alone."""
    build_severity = _build_severity(generation)

    def ties(severity: str, table: str, manager: str, kind: str, latest: str, rows: str) -> Query:
        names = dict(severity=severity.strip("'"), table=table, set=manager, kind=kind, latest=latest, rows=rows)
        parts = {name: text(value) for name, value in names.items()}
        parts["tied"] = text(_TIED)
        parts["severity"] = sql.SQL(severity)  # a quoted constant
        return Query(_TIES, parts)

    parts = [ties("'warning'", "api_config", "config_set", "config", "latest_cfg", "cfg")]
    if builds:
        parts.append(ties(build_severity, "api_build", "build_set", "build", "latest_bld", "bld"))
    return Query(_OUTER, {"ties": union_all(parts)})


def above_info_ties_sql(generation: Generation) -> Query | None:
    """The findings of :func:`ties_sql` above ``info`` where ties among builds are info (0020 on): the
    ties among configs alone (the listing's build part was planned and run for the severity filter to
    drop every row).  None up to 0019, where every finding is above info."""
    return None if _build_severity(generation) != "'info'" else ties_sql(generation, builds=False)


CHECK = Check(
    id="latest-ambiguous",
    severity="warning",
    levels=("warning", "info"),
    title="Several rows tie for the newest config or build",
    repair="restore-latest",
    rationale="""\
`config_set.latest()` and `build_set.latest()` are `ORDER BY created DESC LIMIT 1` with no
tiebreak, so when two or more of an app's configs (builds) share the greatest `created`, the
controller picks one of them at the whim of the query plan: boot may re-save one config
today and another tomorrow, Deis up to api migration 0019 diffs the next push against either
build (a warning), and a repair that made "the live row the newest" is undone by the tie.
Deis 2.7+ and Hephy never read `build_set.latest()`, so a tie among builds is `info` there.  Ties come from SQL `now()` inside one
transaction (hand-written fixes, restores, bulk scripts), not from the controller, which
dates rows with the application clock.  One finding per app and table; the object is the
tied row with the smallest uuid, `related` lists all tied rows and which one is live.  The repair
`restore-latest` dates the live release's row 1 microsecond after the tied rows, where the app has
an unambiguous live release with a row of its own (else the finding says why not).""",
    passes=("latest_cfg", "latest_bld", "cfg", "bld", "live", "apps"),
    sql=ties_sql,
    count_sql=ties_count_sql,
    above_info_sql=above_info_ties_sql,
    above_info_passes=("latest_cfg", "latest_bld", "cfg", "live", "apps"),
)
