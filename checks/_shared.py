"""The "row shared by several releases" query with its blast radius, shared by shared-config
and shared-build (one column each).

Sharing is counted by row, across apps.  Inside one app it is the controller's normal way
(a push reuses the current config, a rollback an old release's pair): a *hazard* that breaks
nothing until someone deletes the row through the ORM, reported as ``info`` whatever its
blast radius.  A row used by releases of another app (a cross-app reference) is *damage*:
deleting the row, or its app, cascades into the other app; critical when another app's live
release would go.  A release pointing at a row that does not exist (dangling) shares nothing.
"""

from __future__ import annotations

from psycopg import sql

from auditor.core.detect import Generation
from auditor.core.query import Query, text, union_all

# ``q`` counts each row's users inside each app with a window (a sort, no join back), so the
# version lists and the ``related`` array are built for shared rows only.  Contiguity: the
# releases using the row must be one run of the app's releases in position order
# (``rel_pos.pos``, not raw versions: old Deis reuses versions); failed releases that do not
# use the row do not break the run (a failed deploy between two pushes is not a rollback), so
# the run is contiguous when the non-failed releases between its first and last position are
# exactly its own.  Only the app's own existing rows count here (``own_row``: a dangling id
# or another app's row is not; tested after the joins, not in them, so that the planner's
# estimate of the two-column match does not turn the joins with ``live`` and ``latest`` into
# nested loops); rows used across apps (``xuse``) are reported by the second SELECT, one finding per row, whose users are
# read by index from the base table (few rows; under --app other apps are out of scope).
#: The rows shared inside one app (``info`` only): the window over the app's releases (``rel_pos``) and
#: what the in-app SELECT reads.
_IN_APP_CTES = """
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
           '[' || array_to_string((array_agg({related_item} ORDER BY q.pos))[1:100], ',') || ']' AS related
    FROM q
    WHERE q.users > 1
    GROUP BY q.app_id, q.row_id
), k AS (
    SELECT s.*, x.created AS row_created, coalesce(x.app_id = s.app_id, false) AS own_row,
           s.ok_span = s.ok_releases AS contiguous,
           coalesce(l.{kind}_id = s.uuid, false) AS includes_live,
           coalesce(lx.uuid = s.uuid, false) AS is_latest,
           l.app_id IS NOT NULL AS has_live, l.version AS live_version, l.uuid AS live_uuid
    FROM s
    LEFT JOIN {rows} x ON x.uuid = s.uuid
    LEFT JOIN live l ON l.app_id = s.app_id
    LEFT JOIN {latest} lx ON lx.app_id = s.app_id
    WHERE NOT EXISTS (SELECT 1 FROM xuse u WHERE u.kind = '{kind}' AND u.row_id = s.uuid)
), r AS (
    SELECT k.*,
           CASE WHEN NOT k.contiguous AND k.includes_live THEN 'rollback-reuse-live'
                WHEN k.is_latest AND k.has_live AND NOT k.includes_live THEN 'shared-latest-not-live'
                WHEN NOT k.contiguous THEN 'rollback-reuse'
                ELSE 'adjacent' END AS reason,
           'v' || array_to_string(k.versions[1:6], ', v')
               || CASE WHEN k.releases > 6 THEN ', ...' ELSE '' END AS version_text
    FROM k
)"""

#: The rows used across apps (``xuse``), grouped by row with all their releases.
_CROSS_CTES = """
xr AS (
    SELECT DISTINCT u.row_id AS uuid, u.row_app FROM xuse u WHERE u.kind = '{kind}'
), xu AS (
    SELECT xr.uuid AS row_id, xr.row_app, o.uuid, o.app_id, o.version, o.created, {failed} AS failed,
           o.uuid = (SELECT l.uuid FROM api_release l WHERE l.app_id = o.app_id AND {not_failed}
                     ORDER BY l.created DESC, l.version DESC, l.uuid DESC LIMIT 1) AS is_live
    FROM xr JOIN api_release o ON o.{kind}_id = xr.uuid
), xa AS (
    SELECT xu.row_id, xu.row_app, xu.app_id, coalesce(aa.id, xu.app_id::text) AS app_name,
           xu.app_id <> xu.row_app AS foreign_app, count(*) AS releases,
           (array_agg(xu.version ORDER BY xu.version, xu.created, xu.uuid))[1:50] AS versions,
           bool_or(xu.is_live) AS includes_live, max(CASE WHEN xu.is_live THEN xu.version END) AS live_version,
           json_agg(json_build_object('uuid', xu.uuid, 'version', xu.version, 'failed', xu.failed,
                                      'created', xu.created, 'app', coalesce(aa.id, xu.app_id::text))
                    ORDER BY xu.version, xu.created, xu.uuid) AS related
    FROM xu LEFT JOIN api_app aa ON aa.uuid = xu.app_id
    GROUP BY xu.row_id, xu.row_app, xu.app_id, aa.id
), xs AS (
    SELECT xa.row_id, xa.row_app, sum(xa.releases) AS releases, count(*) AS apps,
           coalesce(sum(xa.releases) FILTER (WHERE NOT xa.foreign_app), 0) AS own_releases,
           bool_or(xa.includes_live) AS includes_live,
           bool_or(xa.includes_live AND xa.foreign_app) AS foreign_live,
           string_agg(CASE WHEN xa.foreign_app THEN xa.app_name END, ', ' ORDER BY xa.app_name) AS crosses_into,
           string_agg(CASE WHEN xa.foreign_app
                           THEN format('app %%s''s v%%s%%s', xa.app_name, array_to_string(xa.versions[1:6], ', v')
                                       || CASE WHEN xa.releases > 6 THEN ', ...' ELSE '' END,
                                       CASE WHEN xa.includes_live
                                            THEN format(' (its live release v%%s)', xa.live_version)
                                            ELSE '' END) END, ' and '
                      ORDER BY xa.app_name) AS victims,
           string_agg(format('%%s: v%%s', xa.app_name, array_to_string(xa.versions[1:6], ', v'))
                      || CASE WHEN xa.releases > 6 THEN ', ...' ELSE '' END, '; '
                      ORDER BY xa.foreign_app, xa.app_name) AS by_app,
           array_to_json(array_agg(xa.app_name ORDER BY xa.app_name) FILTER (WHERE xa.foreign_app)) AS crossed,
           json_agg(json_build_object('app', json_build_object('uuid', xa.app_id, 'name', xa.app_name),
                                      'owner', NOT xa.foreign_app, 'releases', xa.releases,
                                      'versions', xa.versions, 'includes_live', xa.includes_live,
                                      'live_version', xa.live_version)
                    ORDER BY xa.foreign_app, xa.app_name) AS per_app,
           (array_agg(xa.related ORDER BY xa.foreign_app, xa.app_name)) AS related_parts
    FROM xa
    GROUP BY xa.row_id, xa.row_app
    HAVING sum(xa.releases) > 1
)
"""

_IN_APP_SELECT = """
SELECT 'info' AS severity,
       r.app_id AS app_uuid, a.name AS app_name, '{table}' AS object_table, r.uuid::text AS object_id,
       CASE r.reason
           WHEN 'rollback-reuse-live' THEN format(
               '{kind} %%s is shared by %%s releases (%%s): a rollback reused it, so deleting v%%s''s {kind} '
               'would delete the live release v%%s too', r.uuid, r.releases, r.version_text,
               r.versions[1], r.live_version)
           WHEN 'shared-latest-not-live' THEN format(
               '{kind} %%s, the app''s newest ({set}.latest()), is shared by %%s releases (%%s) '
               'but not by the live release v%%s; deleting it would delete all of them',
               r.uuid, r.releases, r.version_text, r.live_version)
           WHEN 'rollback-reuse' THEN format(
               '{kind} %%s is shared by %%s non-adjacent releases (%%s): a rollback reused it; '
               'deleting it would delete all of them', r.uuid, r.releases, r.version_text)
           ELSE format('{kind} %%s is shared by %%s adjacent releases (%%s); deleting it would delete all '
                       'of them%%s', r.uuid, r.releases, r.version_text,
                       CASE WHEN r.includes_live THEN ', the live release v' || r.live_version ELSE '' END)
       END || '; a hazard inside one app, not damage: nothing breaks unless the {kind} is deleted through '
              'the ORM' AS message,
       r.related,
       {evidence} AS evidence,
       NULL::text AS manual
FROM r LEFT JOIN apps a ON a.uuid = r.app_id
WHERE r.own_row
"""

#: One finding per row used across apps: critical or warning, never info.
_CROSS_SELECT = """
SELECT CASE WHEN xs.foreign_live THEN 'critical' ELSE 'warning' END AS severity,
       xs.row_app AS app_uuid, oa.id AS app_name, '{table}' AS object_table, xs.row_id::text AS object_id,
       format('{kind} %%s of app %%s is shared by %%s releases of %%s app(s) (%%s): the cascade crosses into '
              'app %%s: deleting the {kind}, or app %%s, through the ORM would delete %%s too',
              xs.row_id, coalesce(oa.id, xs.row_app::text), xs.releases, xs.apps, xs.by_app, xs.crosses_into,
              coalesce(oa.id, xs.row_app::text), xs.victims) AS message,
       (SELECT array_to_json((array_agg(e.value))[1:100])::text
        FROM unnest(xs.related_parts) AS p(part), json_array_elements(p.part) AS e(value)) AS related,
       json_build_object('reason', 'cross-app',
                         'blast_radius', json_build_object('releases', xs.releases,
                                                           'includes_live', xs.includes_live,
                                                           'foreign_live', xs.foreign_live,
                                                           'apps', xs.apps),
                         'crosses_into', xs.crossed, 'apps', xs.per_app,
                         '{kind}_created', ox.created, 'cross_app', true)::text AS evidence,
       CASE WHEN xs.own_releases < 2
            THEN format('{kind} %%s is used by releases of other apps (cross-app reference) and by fewer than two '
                        'of its own app''s: nothing for unshare to copy, and which row the other apps'' releases '
                        'should use cannot be known; fix them by hand', xs.row_id) END AS manual
FROM xs
LEFT JOIN api_app oa ON oa.uuid = xs.row_app
LEFT JOIN {table} ox ON ox.uuid = xs.row_id
"""

_SHARED_SQL = "\n" + _IN_APP_CTES.strip() + ", " + _CROSS_CTES.lstrip() + _IN_APP_SELECT.lstrip() + "\nUNION ALL\n\n" + _CROSS_SELECT.lstrip()

#: The cross-app rows alone: what a statement that counts the info findings lists of the check.  The
#: in-app part is left out rather than filtered: PostgreSQL plans every branch of a UNION and every
#: CTE it reads (``rel_pos``, the window over every release in scope) before a severity filter above
#: them can prune anything.
_CROSS_SHARED_SQL = "\nWITH " + _CROSS_CTES.lstrip() + _CROSS_SELECT.lstrip()


# One release of ``related`` as the text ``json_build_object('uuid', q.uuid, 'version', q.version,
# 'failed', q.failed, 'created', q.created)`` renders (its `` : `` spacing; ``null`` for NULL), for
# ``array_to_json`` of them (``[a,b]``).  Built as text, and left text (the runner's statement sends
# ``related`` and ``evidence`` as text: a ``::json`` cast would parse every line again): a JSON object
# per release cost ~0.3 s more per kind at 1M releases, where every row is listed, and the cast ~0.4 s.
_RELATED_ITEM = """concat('{"uuid" : "', q.uuid, '", "version" : ', coalesce(q.version::text, 'null'),
                  ', "failed" : ', coalesce(q.failed::text, 'null'),
                  ', "created" : ', coalesce(to_json(q.created)::text, 'null'), '}')"""


# The info rows' evidence as the text ``json_build_object('reason', r.reason, 'blast_radius',
# json_build_object('releases', r.releases, 'includes_live', r.includes_live, 'versions', r.versions,
# 'versions_truncated', r.releases > 50), 'ok_releases', r.ok_releases, 'failed_releases', r.releases -
# r.ok_releases, 'contiguous', r.contiguous, 'first_position', r.first_pos, 'last_position',
# r.last_pos, 'is_latest', r.is_latest, '<kind>_created', r.row_created, 'live_release', r.live_uuid,
# 'live_version', r.live_version, 'cross_app', false)`` renders, as text: ``json_build_object`` looks up
# how to render each of its arguments on every call.  ``reason`` is one of four constants.  The
# cross-app rows (few) keep ``json_build_object``, as text too (one column type for the union).
_EVIDENCE = """concat('{"reason" : "', r.reason, '", "blast_radius" : {"releases" : ', coalesce(r.releases::text, 'null'),
       ', "includes_live" : ', coalesce(r.includes_live::text, 'null'),
       ', "versions" : ', coalesce(array_to_json(r.versions)::text, 'null'),
       ', "versions_truncated" : ', coalesce((r.releases > 50)::text, 'null'),
       '}, "ok_releases" : ', coalesce(r.ok_releases::text, 'null'),
       ', "failed_releases" : ', coalesce((r.releases - r.ok_releases)::text, 'null'),
       ', "contiguous" : ', coalesce(r.contiguous::text, 'null'),
       ', "first_position" : ', coalesce(r.first_pos::text, 'null'),
       ', "last_position" : ', coalesce(r.last_pos::text, 'null'),
       ', "is_latest" : ', coalesce(r.is_latest::text, 'null'),
       ', "KIND_created" : ', coalesce(to_json(r.row_created)::text, 'null'),
       ', "live_release" : ', coalesce('"' || r.live_uuid || '"', 'null'),
       ', "live_version" : ', coalesce(r.live_version::text, 'null'),
       ', "cross_app" : false}')"""


def shared_sql(kind: str, generation: Generation) -> Query:
    """The shared-row SELECT for ``kind`` ``config`` or ``build`` on ``generation``.

    Its repair is unshare, which copies the row for every release of the row's own app but the
    first; a row used across apps by fewer than two of its own app's releases is left to a person
    (the ``manual`` column says so)."""
    rendered = {"related_item": sql.SQL(_RELATED_ITEM), "evidence": sql.SQL(_EVIDENCE.replace("KIND", kind))}
    return Query(_SHARED_SQL, {**_words(kind, generation), **rendered})


def cross_shared_sql(kind: str, generation: Generation) -> Query:
    """The findings of :func:`shared_sql` above ``info`` (its rows used across apps) alone, for a
    statement that counts the info findings (:func:`shared_count_sql`) instead of listing them."""
    return Query(_CROSS_SHARED_SQL, _words(kind, generation))


def _words(kind: str, generation: Generation) -> dict[str, sql.Composable]:
    """The constant names the shared-row SQL of ``kind`` (``config`` or ``build``) is written with on
    ``generation``: only these are substituted, so no input reaches this SQL."""
    if kind == "config":
        parts = dict(table="api_config", rows="cfg", latest="latest_cfg", set="config_set")
    else:
        parts = dict(table="api_build", rows="bld", latest="latest_bld", set="build_set")
    failed = "o.failed" if generation.has_failed else "false"
    not_failed = "NOT l.failed" if generation.has_failed else "true"
    return {name: text(value) for name, value in dict(kind=kind, failed=failed, not_failed=not_failed, **parts).items()}


# How many findings the shared-row SELECT gives, per severity and app, without building them: the
# rows shared inside one app (``info``, the bulk) read from the use pass, which has already grouped
# the releases by (row, app): an app's own existing row used by more than one of its releases (no
# second window sort, no version lists, no ``related`` arrays, no messages); the few cross-app rows
# (``xuse``) with all their releases, grouped by row as the listing's second SELECT groups them (more
# than one release: shared), critical when a release of another app among them is that app's live
# release (the listing's ``is_live``), else warning.  Counted without the listing's text: the
# statement is planned once per audit, and planning the listing a second time here (its messages,
# arrays and the in-app part a filter removes) cost more than executing this for the largest app.
# The rows used across apps are left out by a membership test against the few ``xuse`` rows (a hashed
# subplan, probed per line): written ``NOT EXISTS``, the planner expected fewer shared lines than
# ``xuse`` rows and hashed the ~235k shared lines of each table at 1M releases for an anti-join with
# an empty ``xuse``.  ``row_id`` is a row's primary key (never NULL).
# At the default floor (the info findings counted, the rest listed) the first part alone is counted
# (``info_count_sql``): the second's rows are all critical or warning, planned and run only to be
# filtered out by the runner's severity test.
_SHARED_INFO_COUNT = """
SELECT 'info' AS severity, s.app_id AS app_uuid, count(*) AS n
FROM {use} s
WHERE s.present AND s.user_app = s.app_id AND s.releases > 1
  AND s.uuid NOT IN (SELECT u.row_id FROM xuse u WHERE u.kind = '{kind}' AND u.row_id IS NOT NULL)
GROUP BY s.app_id
"""
_CROSS_COUNT = """
SELECT CASE WHEN xs.foreign_live THEN 'critical' ELSE 'warning' END, xs.row_app, count(*)
FROM (SELECT xr.row_app,
             bool_or(o.app_id <> xr.row_app
                     AND o.uuid = (SELECT l.uuid FROM api_release l WHERE l.app_id = o.app_id AND {not_failed}
                                   ORDER BY l.created DESC, l.version DESC, l.uuid DESC LIMIT 1)) AS foreign_live
      FROM (SELECT DISTINCT u.row_id AS uuid, u.row_app FROM xuse u WHERE u.kind = '{kind}') xr
      JOIN api_release o ON o.{kind}_id = xr.uuid
      GROUP BY xr.uuid, xr.row_app
      HAVING count(*) > 1) xs
GROUP BY 1, 2
"""


def shared_count_sql(kind: str, generation: Generation, info_only: bool = False) -> Query:
    """How many findings :func:`shared_sql` gives for ``kind``, per severity and app (``severity``,
    ``app_uuid``, ``n``); ``info_only``: its info findings alone (the rows shared inside one app)."""
    info = Query(_SHARED_INFO_COUNT, {"kind": text(kind), "use": text("config_use" if kind == "config" else "build_use")})
    if info_only:
        return info
    not_failed = "NOT l.failed" if generation.has_failed else "true"
    return union_all([info, Query(_CROSS_COUNT, {"kind": text(kind), "not_failed": text(not_failed)})])


def shared_passes(kind: str) -> tuple[str, ...]:
    """The shared passes the shared-row SELECT reads."""
    if kind == "config":
        return ("rel_pos", "live", "latest_cfg", "cfg", "apps", "xuse", "config_use")
    return ("rel_pos", "live", "latest_bld", "bld", "apps", "xuse", "build_use")


def cross_shared_passes(kind: str) -> tuple[str, ...]:
    """The shared passes :func:`cross_shared_sql` and :func:`shared_count_sql` read together: no window
    pass (``rel_pos``), no ``live`` or ``latest``."""
    return ("xuse", "config_use" if kind == "config" else "build_use")
