"""The orphan query, shared by orphan-config and orphan-build (one table each)."""

from __future__ import annotations

_ORPHAN_SQL = """
SELECT {severity} AS severity,
       c.app_id AS app_uuid, a.name AS app_name, '{table}' AS object_table, c.uuid::text AS object_id,
       format('{kind} %%s is used by no release%%s', c.uuid,
              CASE WHEN lc.uuid = c.uuid THEN ' and is the app''s latest {kind}{why}' ELSE '' END) AS message,
       '[]'::json AS related,
       json_build_object('created', c.created, 'is_latest', lc.uuid = c.uuid,
                         'live_version', l.version, 'live_{kind}', l.{kind}_id,
                         'live_created', l.created) AS evidence
FROM {rows} c
LEFT JOIN {use} u ON u.uuid = c.uuid
LEFT JOIN apps a ON a.uuid = c.app_id
LEFT JOIN {latest} lc ON lc.app_id = c.app_id
LEFT JOIN live l ON l.app_id = c.app_id
WHERE u.uuid IS NULL
  AND c.created <= now() - %(grace_seconds)s::float8 * interval '1 second'
"""


def orphan_sql(kind: str) -> str:
    """The orphan SELECT for ``kind`` ``config`` or ``build`` (a check SQL template)."""
    if kind == "config":
        parts = dict(severity="CASE WHEN lc.uuid = c.uuid THEN 'critical' ELSE 'warning' END",
                     table="api_config", rows="cfg", use="config_use", latest="latest_cfg",
                     why=": the controller builds the next release on it")
    else:
        parts = dict(severity="'warning'", table="api_build", rows="bld", use="build_use",
                     latest="latest_bld", why=" (build_set.latest())")
    # Only the constant table and pass names above are substituted: no input reaches this SQL.
    return _ORPHAN_SQL.replace("{kind}", kind).format(kind=kind, **parts)


def orphan_passes(kind: str) -> tuple[str, ...]:
    """The shared passes the orphan SELECT reads."""
    return ("cfg", "config_use", "apps", "latest_cfg", "live") if kind == "config" else (
        "bld", "build_use", "apps", "latest_bld", "live")
