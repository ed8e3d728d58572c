"""The "row shared by several releases" query with its blast radius, shared by shared-config
and shared-build (one column each)."""

from __future__ import annotations

# ``q`` counts each row's users with a window (a sort, no join back), so the version lists
# and the ``related`` array are built for shared rows only.  Contiguity: the releases using
# the row must be one run of the app's releases in position order (``rel_pos.pos``, not raw
# versions: old Deis reuses versions); failed releases that do not use the row do not break
# the run (a failed deploy between two pushes is not a rollback), so the run is contiguous
# when the non-failed releases between its first and last position are exactly its own.
_SHARED_SQL = """
WITH q AS (
    SELECT p.uuid, p.app_id, p.version, p.created, p.failed, p.pos, p.ok_through,
           p.{kind}_id AS row_id, count(*) OVER (PARTITION BY p.app_id, p.{kind}_id) AS users
    FROM rel_pos p
    WHERE p.{kind}_id IS NOT NULL
), s AS (
    SELECT q.row_id AS uuid, q.app_id, count(*) AS releases,
           sum(CASE WHEN q.failed THEN 0 ELSE 1 END) AS ok_releases,
           max(q.ok_through) - min(q.ok_through - CASE WHEN q.failed THEN 0 ELSE 1 END) AS ok_span,
           min(q.pos) AS first_pos, max(q.pos) AS last_pos,
           (array_agg(q.version ORDER BY q.pos))[1:50] AS versions,
           array_to_json((array_agg(json_build_object('uuid', q.uuid, 'version', q.version,
                                                      'failed', q.failed, 'created', q.created)
                                    ORDER BY q.pos))[1:100]) AS related
    FROM q
    WHERE q.users > 1
    GROUP BY q.app_id, q.row_id
), k AS (
    SELECT s.*, x.created AS row_created,
           s.ok_span = s.ok_releases AS contiguous,
           coalesce(l.{kind}_id = s.uuid, false) AS includes_live,
           coalesce(lx.uuid = s.uuid, false) AS is_latest,
           l.app_id IS NOT NULL AS has_live, l.version AS live_version, l.uuid AS live_uuid
    FROM s
    LEFT JOIN {rows} x ON x.uuid = s.uuid
    LEFT JOIN live l ON l.app_id = s.app_id
    LEFT JOIN {latest} lx ON lx.app_id = s.app_id
), r AS (
    SELECT k.*,
           CASE WHEN NOT k.contiguous AND k.includes_live THEN 'rollback-reuse-live'
                WHEN k.is_latest AND k.has_live AND NOT k.includes_live THEN 'shared-latest-not-live'
                WHEN NOT k.contiguous THEN 'rollback-reuse'
                ELSE 'adjacent' END AS reason,
           'v' || array_to_string(k.versions[1:6], ', v')
               || CASE WHEN k.releases > 6 THEN ', ...' ELSE '' END AS version_text
    FROM k
)
SELECT CASE r.reason WHEN 'rollback-reuse-live' THEN 'critical'
                     WHEN 'shared-latest-not-live' THEN {latest_severity}
                     WHEN 'rollback-reuse' THEN 'warning'
                     ELSE 'info' END AS severity,
       r.app_id AS app_uuid, a.name AS app_name, '{table}' AS object_table, r.uuid::text AS object_id,
       CASE r.reason
           WHEN 'rollback-reuse-live' THEN format(
               '{kind} %%s is shared by %%s releases (%%s): a rollback reused it, so deleting v%%s''s {kind} '
               'would delete the live release v%%s too', r.uuid, r.releases, r.version_text,
               r.versions[1], r.live_version)
           WHEN 'shared-latest-not-live' THEN format(
               '{kind} %%s, the app''s newest ({set}.latest()), is shared by %%s releases (%%s) '
               'but not by the live release v%%s', r.uuid, r.releases, r.version_text, r.live_version)
           WHEN 'rollback-reuse' THEN format(
               '{kind} %%s is shared by %%s non-adjacent releases (%%s): a rollback reused it; '
               'deleting it would delete all of them', r.uuid, r.releases, r.version_text)
           ELSE format('{kind} %%s is shared by %%s adjacent releases (%%s); deleting it would delete all '
                       'of them%%s', r.uuid, r.releases, r.version_text,
                       CASE WHEN r.includes_live THEN ', the live release v' || r.live_version ELSE '' END)
       END AS message,
       r.related,
       json_build_object('reason', r.reason,
                         'blast_radius', json_build_object('releases', r.releases,
                                                           'includes_live', r.includes_live,
                                                           'versions', r.versions,
                                                           'versions_truncated', r.releases > 50),
                         'ok_releases', r.ok_releases, 'failed_releases', r.releases - r.ok_releases,
                         'contiguous', r.contiguous, 'first_position', r.first_pos,
                         'last_position', r.last_pos, 'is_latest', r.is_latest,
                         '{kind}_created', r.row_created, 'live_release', r.live_uuid,
                         'live_version', r.live_version) AS evidence
FROM r LEFT JOIN apps a ON a.uuid = r.app_id
"""


def shared_sql(kind: str) -> str:
    """The shared-row SELECT for ``kind`` ``config`` or ``build`` (a check SQL template)."""
    if kind == "config":
        parts = dict(table="api_config", rows="cfg", latest="latest_cfg", set="config_set",
                     latest_severity="'critical'")
    else:
        parts = dict(table="api_build", rows="bld", latest="latest_bld", set="build_set",
                     latest_severity="'warning'")
    # Only the constant names above are substituted: no input reaches this SQL.
    return _SHARED_SQL.format(kind=kind, **parts)


def shared_passes(kind: str) -> tuple[str, ...]:
    """The shared passes the shared-row SELECT reads."""
    if kind == "config":
        return ("rel_pos", "live", "latest_cfg", "cfg", "apps")
    return ("rel_pos", "live", "latest_bld", "bld", "apps")
