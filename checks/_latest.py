"""The "newest row is not the live release's" query, shared by latest-config-not-live and
latest-build-not-live (one table each)."""

from __future__ import annotations

# The template's own placeholders are filled by ``latest_sql`` with constant table and pass
# names; what remains (``%(grace_seconds)s``, ``%%``) is for the runner.
_LATEST_SQL = """
WITH bad AS (
    SELECT lx.app_id, lx.uuid, lx.created, lx.ties,
           l.uuid AS live_uuid, l.version AS live_version, l.created AS live_created,
           l.{kind}_id AS live_row, lr.created AS live_row_created,
           CASE WHEN u.uuid IS NULL THEN 'orphan'
                WHEN u.ok_releases = 0 THEN 'failed-release'
                ELSE 'rollback' END AS cause
    FROM {latest} lx
    JOIN live l ON l.app_id = lx.app_id
    LEFT JOIN {use} u ON u.uuid = lx.uuid
    LEFT JOIN {rows} lr ON lr.uuid = l.{kind}_id
    WHERE l.{kind}_id IS DISTINCT FROM lx.uuid
      AND lr.created IS DISTINCT FROM lx.created
      AND lx.created <= now() - %(grace_seconds)s::float8 * interval '1 second'
), users AS (
    SELECT r.{kind}_id AS uuid, count(*) AS releases,
           (array_agg(r.version ORDER BY r.version, r.created))[1:50] AS versions,
           array_to_json((array_agg(json_build_object('uuid', r.uuid, 'version', r.version,
                                                      'failed', r.failed, 'created', r.created)
                                    ORDER BY r.version, r.created))[1:100]) AS related
    FROM rel r JOIN bad b ON b.uuid = r.{kind}_id
    GROUP BY r.{kind}_id
)
SELECT CASE WHEN b.cause = 'rollback' THEN {rollback_severity} ELSE {damage_severity} END AS severity,
       b.app_id AS app_uuid, a.name AS app_name, '{table}' AS object_table, b.uuid::text AS object_id,
       format('{kind} %%s, the app''s newest ({set}.latest()), %%s; the live release v%%s %%s',
              b.uuid,
              CASE b.cause
                  WHEN 'orphan' THEN 'is used by no release'
                  WHEN 'failed-release' THEN 'is used only by failed release(s) v' || array_to_string(us.versions[1:5], ', v')
                  ELSE 'belongs to older release(s) v' || array_to_string(us.versions[1:5], ', v')
                       || ' (rollback)' END,
              b.live_version,
              CASE WHEN b.live_row IS NULL THEN 'has no {kind}'
                   ELSE 'uses {kind} ' || b.live_row::text END) AS message,
       coalesce(us.related, '[]'::json) AS related,
       json_build_object('cause', b.cause,
                         'latest_{kind}', b.uuid, 'latest_created', b.created, 'latest_ties', b.ties,
                         'used_by_releases', coalesce(us.releases, 0), 'used_by_versions', us.versions,
                         'live_release', b.live_uuid, 'live_version', b.live_version,
                         'live_created', b.live_created, 'live_{kind}', b.live_row,
                         'live_{kind}_created', b.live_row_created) AS evidence
FROM bad b
LEFT JOIN users us ON us.uuid = b.uuid
LEFT JOIN apps a ON a.uuid = b.app_id
"""


def latest_sql(kind: str) -> str:
    """The latest-not-live SELECT for ``kind`` ``config`` or ``build`` (a check SQL template)."""
    if kind == "config":
        parts = dict(table="api_config", rows="cfg", use="config_use", latest="latest_cfg", set="config_set",
                     damage_severity="'critical'", rollback_severity="'warning'")
    else:
        parts = dict(table="api_build", rows="bld", use="build_use", latest="latest_bld", set="build_set",
                     damage_severity="'warning'", rollback_severity="'info'")
    # Only the constant names above are substituted: no input reaches this SQL.
    return _LATEST_SQL.format(kind=kind, **parts)


def latest_passes(kind: str) -> tuple[str, ...]:
    """The shared passes the latest-not-live SELECT reads."""
    if kind == "config":
        return ("latest_cfg", "live", "config_use", "rel", "apps", "cfg")
    return ("latest_bld", "live", "build_use", "rel", "apps", "bld")
