"""The orphan query, shared by orphan-config and orphan-build (one table each).

An orphan matters only when it is the app's newest row (``latest()``), and then as much as
``latest()`` matters to the controller generation (see :mod:`checks._latest`); any other
orphan is clutter nothing reads (``info``).
"""

from __future__ import annotations

from auditor.core.detect import Generation
from auditor.core.passes import in_flight
from checks._latest import consequence

_ORPHAN_SQL = """
SELECT CASE WHEN lc.uuid = c.uuid THEN '{latest_severity}' ELSE 'info' END AS severity,
       c.app_id AS app_uuid, a.name AS app_name, '{table}' AS object_table, c.uuid::text AS object_id,
       format('{kind} %%s is used by no release%%s', c.uuid,
              CASE WHEN lc.uuid = c.uuid THEN ' and is the app''s newest ({set}.latest()): {why}'
                   ELSE ': nothing reads it' END) AS message,
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
  AND NOT {in_flight}
"""


def orphan_sql(kind: str, generation: Generation) -> str:
    """The orphan SELECT for ``kind`` ``config`` or ``build`` on ``generation``."""
    if kind == "config":
        parts = dict(table="api_config", rows="cfg", use="config_use", latest="latest_cfg", set="config_set")
    else:
        parts = dict(table="api_build", rows="bld", use="build_use", latest="latest_bld", set="build_set")
    severity, why, _ = consequence(kind, generation)
    # Only the constant names and texts above are substituted: no input reaches this SQL.
    assert "'" not in why and "%" not in why
    return _ORPHAN_SQL.format(kind=kind, latest_severity=severity, why=why, in_flight=in_flight("c.created"),
                              **parts)


def orphan_passes(kind: str) -> tuple[str, ...]:
    """The shared passes the orphan SELECT reads."""
    return ("cfg", "config_use", "apps", "latest_cfg", "live") if kind == "config" else (
        "bld", "build_use", "apps", "latest_bld", "live")
