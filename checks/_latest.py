"""The "newest row is not the live release's" query, shared by latest-config-not-live and
latest-build-not-live (one table each).

What such a row breaks depends on the controller generation (``controller-schema.md`` §8),
so the SELECT is written per generation: Deis v2.0 (api migrations before 0010) merges every
``config:set`` over ``config_set.latest()``; from v2.1 on ``config:set`` merges over the live
release's config and only boot's re-save and ``App.create`` read ``config_set.latest()``;
Deis up to 0019 diffs every push against ``build_set.latest()`` (the push fails with a 404),
later controllers never read it.
"""

from __future__ import annotations

from collections.abc import Callable

from psycopg import sql

from auditor.core.controller import BUILD_DIFFS_AGAINST_LATEST_UNTIL, CONFIG_SET_MERGES_OVER_LATEST_UNTIL
from auditor.core.detect import Generation
from auditor.core.passes import future_dated, in_flight
from auditor.core.query import Query, text

__all__ = ["BUILD_DIFFS_AGAINST_LATEST_UNTIL", "CONFIG_SET_MERGES_OVER_LATEST_UNTIL", "consequence", "latest_count_sql",
           "latest_levels", "latest_passes", "latest_sql"]

# The template's own placeholders are filled by ``latest_sql`` with constant table and pass
# names and constant texts; what remains (``%(grace_seconds)s``, ``%%``) is for the runner.
_LATEST_SQL = """
WITH bad AS (
    SELECT lx.app_id, lx.uuid, lx.created, lx.ties, {future} AS future,
           l.uuid AS live_uuid, l.version AS live_version, l.created AS live_created,
           l.{kind}_id AS live_row, lr.created AS live_row_created,
           lr.app_id AS live_row_app
    {bad}
    WHERE {bad_where}
), users AS (
    SELECT r.{kind}_id AS uuid, count(*) AS releases,
           count(CASE WHEN r.failed THEN NULL ELSE 1 END) AS ok_releases,
           (array_agg(r.version ORDER BY r.version, r.created, r.uuid))[1:50] AS versions,
           array_to_json((array_agg(json_build_object('uuid', r.uuid, 'version', r.version,
                                                      'failed', r.failed, 'created', r.created)
                                    ORDER BY r.version, r.created, r.uuid))[1:100]) AS related
    -- The few flagged rows' users, by the release table's {kind}_id index (not a scan of every
    -- release), in scope as the rel pass is.
    FROM (SELECT o.uuid, o.version, o.created, o.{kind}_id, {failed} AS failed
          FROM api_release o WHERE {scope} AND o.{kind}_id IN (SELECT b.uuid FROM bad b)) r
    GROUP BY r.{kind}_id
), flagged AS (
    -- Why the row is newest, from its users (the few flagged rows' releases, counted as the
    -- config_use and build_use passes count them: a join of such a pass, every row of it, with
    -- the newest rows took two thirds of a second at 1M releases).
    SELECT b.*, CASE WHEN coalesce(us.releases, 0) = 0 THEN 'orphan'
                     WHEN us.ok_releases = 0 THEN 'failed-release'
                     ELSE 'rollback' END AS cause
    FROM bad b LEFT JOIN users us ON us.uuid = b.uuid
)
SELECT {severity} AS severity,
       b.app_id AS app_uuid, a.name AS app_name, {table_name} AS object_table, b.uuid::text AS object_id,
       format('{kind} %%s, the app''s newest ({set}.latest()%%s), %%s; the live release v%%s %%s: {consequence}',
              b.uuid, CASE WHEN b.future THEN ', dated in the future' ELSE '' END,
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
                         'latest_future_dated', b.future,
                         'used_by_releases', coalesce(us.releases, 0), 'used_by_versions', us.versions,
                         'live_release', b.live_uuid, 'live_version', b.live_version,
                         'live_created', b.live_created, 'live_{kind}', b.live_row,
                         'live_{kind}_created', b.live_row_created,
                         'consequence', {effect}) AS evidence,
       CASE WHEN b.live_row IS NULL
            THEN format('the live release v%%s has no {kind}, but {set}.latest() returns %%s: nothing of the live '
                        'release''s to date after it', b.live_version, b.uuid)
            WHEN b.live_row_app IS NULL AND NOT EXISTS (SELECT 1 FROM {table} x WHERE x.uuid = b.live_row)
            THEN format('the live release v%%s points at {kind} %%s, which does not exist (dangling reference)',
                        b.live_version, b.live_row)
            WHEN coalesce(b.live_row_app, (SELECT x.app_id FROM {table} x WHERE x.uuid = b.live_row)) <> b.app_id
            THEN format('the live release v%%s uses {kind} %%s of app %%s (cross-app reference): not re-dating '
                        'another app''s row', b.live_version, b.live_row,
                        coalesce(b.live_row_app, (SELECT x.app_id FROM {table} x WHERE x.uuid = b.live_row)))
       END AS manual
FROM flagged b
LEFT JOIN users us ON us.uuid = b.uuid
LEFT JOIN apps a ON a.uuid = b.app_id
"""


#: The rows flagged: an app's newest row (``lx``) that is not its unambiguous live release's (``l``,
#: whose own row is ``lr``), not in flight.  Shared by the listing and the counting SELECT.
_BAD_FROM = """FROM {latest} lx
    JOIN live l ON l.app_id = lx.app_id AND NOT l.ambiguous
    LEFT JOIN {rows} lr ON lr.uuid = l.{kind}_id"""
_BAD_WHERE = """l.{kind}_id IS DISTINCT FROM lx.uuid
      AND lr.created IS DISTINCT FROM lx.created
      AND NOT {in_flight}"""

#: How many findings, per app, without writing them: the listing's rows (one per flagged row;
#: ``users`` and ``apps`` are left joins of one row per uuid, which change no count) with only their
#: severity.  Its own SQL, not the listing's counted: a check listed and counted was planned twice,
#: and the listing's ``bad`` (a CTE read twice) was materialized with every column.
_LATEST_COUNT = """
SELECT {severity} AS severity, lx.app_id AS app_uuid, count(*) AS n
{bad}
WHERE {bad_where}
GROUP BY lx.app_id
"""


def consequence(kind: str, generation: Generation) -> tuple[str, str, str]:
    """``(severity, consequence, effect)`` of a newest row that is not the live release's:
    what the controller of this generation does with it, and a one-word label for the evidence."""
    if kind == "config":
        if generation.migration <= CONFIG_SET_MERGES_OVER_LATEST_UNTIL:
            return ("critical", "the next config:set merges over it and brings back values nobody released",
                    "config:set")
        return ("warning", "boot (load_db_state_to_k8s) re-saves it, merging the live config under it, so the row "
                           "changes on every restart, and App.create builds v1 on it if the app loses every release",
                "boot")
    if generation.migration <= BUILD_DIFFS_AGAINST_LATEST_UNTIL:
        return ("critical", "the next push diffs its procfile against it and scales down process types the live "
                            "release does not run, so it fails (404 Container type ... does not exist)", "push")
    return ("info", "this controller never reads build_set.latest() (Deis 2.7+ and Hephy), only scripts and older "
                    "controllers do", "none")


def _parts(kind: str) -> dict[str, str]:
    if kind == "config":
        return dict(table="api_config", rows="cfg", latest="latest_cfg", set="config_set")
    return dict(table="api_build", rows="bld", latest="latest_bld", set="build_set")


def _bad(kind: str) -> dict[str, Query]:
    """The flagged rows' FROM and WHERE (:data:`_BAD_FROM`, :data:`_BAD_WHERE`) for ``kind``."""
    parts = _parts(kind)
    return {"bad": Query(_BAD_FROM, {"latest": text(parts["latest"]), "rows": text(parts["rows"]), "kind": text(kind)}),
            "bad_where": Query(_BAD_WHERE, {"kind": text(kind), "in_flight": in_flight("lx.created")})}


def latest_sql(kind: str, generation: Generation) -> Query:
    """The latest-not-live SELECT for ``kind`` ``config`` or ``build`` on ``generation``.

    Its repair is restore-latest, except where the live release has no such row, or points at one
    that does not exist or belongs to another app (the ``manual`` column says so)."""
    parts = _parts(kind)
    severity, effect_text, effect = consequence(kind, generation)
    return Query(_LATEST_SQL, {
        **_bad(kind),
        **{name: text(value) for name, value in parts.items()}, "kind": text(kind),
        "table_name": sql.Literal(parts["table"]), "severity": sql.Literal(severity),
        "consequence": text(effect_text), "effect": sql.Literal(effect),
        "future": future_dated("lx.created"),
        "failed": text("o.failed" if generation.has_failed else "false"),
    })


def latest_count_sql(kind: str, generation: Generation) -> Query:
    """How many findings :func:`latest_sql` gives for ``kind``, per severity and app (``severity``,
    ``app_uuid``, ``n``)."""
    severity, _, _ = consequence(kind, generation)
    return Query(_LATEST_COUNT, {**_bad(kind), "severity": sql.Literal(severity)})


def latest_levels(kind: str) -> Callable[[Generation], tuple[str, ...]]:
    """The one level :func:`latest_sql` gives for ``kind`` on a generation (its consequence there)."""
    return lambda generation: consequence(kind, generation)[:1]


def latest_passes(kind: str) -> tuple[str, ...]:
    """The shared passes the latest-not-live SELECT reads."""
    if kind == "config":
        return ("latest_cfg", "live", "apps", "cfg")
    return ("latest_bld", "live", "apps", "bld")
