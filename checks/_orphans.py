"""The orphan query, shared by orphan-config and orphan-build (one table each).

An orphan matters only when it is the app's newest row (``latest()``), and then as much as
``latest()`` matters to the controller generation (see :mod:`checks._latest`); any other
orphan is clutter nothing reads (``info``).  A row is an orphan when no release at all uses it:
under ``--app`` the releases of other apps using it are those of the ``xuse`` pass (looked up by
the pointer's index, once, for the shared checks too; an ``EXISTS`` over ``api_release`` here was
planned as a hash of every release of every app), so an audit of one app reports what an audit of
all reports.

``prune-orphans`` deletes every orphan but two kinds, which the finding says are to be fixed by
hand (its ``manual`` column): a row whose app does not exist (dangling reference), and the newest
config of an app without releases, which is not an orphan but the app's only state (``App.create``
and the next ``config:set`` build release v1 on it; the app is the app-without-release finding).
"""

from __future__ import annotations

from collections.abc import Callable

from psycopg import sql

from auditor.core.detect import Generation
from auditor.core.passes import in_flight
from auditor.core.query import Query, text
from checks._latest import consequence

#: Why prune-orphans never deletes the newest config of an app without releases.
PROTECTED_CONFIG = ("the newest config of an app without releases: App.create builds the next v1 on it "
                    "(see app-without-release); not an orphan to delete")

_ORPHAN_SQL = """
SELECT CASE WHEN lc.uuid = c.uuid THEN {latest_severity} ELSE 'info' END AS severity,
       c.app_id AS app_uuid, a.name AS app_name, {table_name} AS object_table, c.uuid::text AS object_id,
       format('{kind} %%s is used by no release%%s', c.uuid,
              CASE WHEN lc.uuid = c.uuid THEN ' and is the app''s newest ({set}.latest()): {why}'
                   ELSE ': nothing reads it' END) AS message,
       '[]'::json AS related,
       json_build_object('created', c.created, 'is_latest', lc.uuid = c.uuid,
                         'live_version', l.version, 'live_{kind}', l.{kind}_id,
                         'live_created', l.created) AS evidence,
       CASE WHEN a.uuid IS NULL
            THEN format('{kind} %%s belongs to app %%s, which does not exist (dangling reference): not deleting '
                        'rows of an app that is not there', c.uuid, c.app_id)
            WHEN {protected} THEN {protected_why} END AS manual
FROM {use} c
LEFT JOIN apps a ON a.uuid = c.app_id
LEFT JOIN {latest} lc ON lc.app_id = c.app_id
LEFT JOIN live l ON l.app_id = c.app_id
WHERE {orphan}
"""

#: An orphan: a row in scope no release uses (nor, under ``--app``, a release of another app), not in flight.
_ORPHAN = """c.present AND c.releases = 0
  AND NOT EXISTS (SELECT 1 FROM xuse x WHERE x.kind = '{kind}' AND x.row_id = c.uuid)
  AND NOT {in_flight}"""

#: How many orphans, per severity and app, without writing them: the rows of the listing (``apps``
#: and ``live`` are one row per app: left joins that change no count) with only their severity.
#: Its own SQL, not the listing's counted: the statement is planned once per audit, and a check
#: listed and counted was planned twice.
_ORPHAN_COUNT = """
SELECT CASE WHEN lc.uuid = c.uuid THEN {latest_severity} ELSE 'info' END AS severity, c.app_id AS app_uuid,
       count(*) AS n
FROM {use} c
LEFT JOIN {latest} lc ON lc.app_id = c.app_id
WHERE {orphan}
GROUP BY 1, 2
"""

#: The newest config (every one tied for it) of an app without releases: what App.create builds v1 on.
#: Looked up by the release table's ``app_id`` index for these few rows (a scan of the ``rel`` pass per
#: row, which the planner may choose for a correlated test, reads every release each time).
_PROTECTED = "(c.created = lc.created AND NOT EXISTS (SELECT 1 FROM api_release r WHERE r.app_id = c.app_id))"


def _parts(kind: str) -> dict[str, str]:
    if kind == "config":
        return dict(table="api_config", rows="cfg", use="config_use", latest="latest_cfg", set="config_set")
    return dict(table="api_build", rows="bld", use="build_use", latest="latest_bld", set="build_set")


def _orphan(kind: str) -> Query:
    return Query(_ORPHAN, {"kind": text(kind), "in_flight": in_flight("c.created")})


def orphan_sql(kind: str, generation: Generation) -> Query:
    """The orphan SELECT for ``kind`` ``config`` or ``build`` on ``generation``."""
    parts = _parts(kind)
    severity, why, _ = consequence(kind, generation)
    return Query(_ORPHAN_SQL, {
        **{name: text(value) for name, value in parts.items() if name != "table"},
        "kind": text(kind), "table_name": sql.Literal(parts["table"]), "latest_severity": sql.Literal(severity),
        "why": text(why), "orphan": _orphan(kind),
        "protected": text(_PROTECTED if kind == "config" else "false"),
        "protected_why": sql.Literal(PROTECTED_CONFIG),
    })


def orphan_count_sql(kind: str, generation: Generation) -> Query:
    """How many findings :func:`orphan_sql` gives for ``kind``, per severity and app (``severity``,
    ``app_uuid``, ``n``)."""
    parts = _parts(kind)
    severity, _, _ = consequence(kind, generation)
    return Query(_ORPHAN_COUNT, {"use": text(parts["use"]), "latest": text(parts["latest"]),
                                 "latest_severity": sql.Literal(severity), "orphan": _orphan(kind)})


def orphan_levels(kind: str) -> Callable[[Generation], tuple[str, ...]]:
    """The levels :func:`orphan_sql` gives for ``kind`` on a generation: the newest row's consequence
    there, and ``info``."""
    return lambda generation: (consequence(kind, generation)[0], "info")


def orphan_passes(kind: str) -> tuple[str, ...]:
    """The shared passes the orphan SELECT reads."""
    return ("config_use", "apps", "latest_cfg", "live", "xuse") if kind == "config" else (
        "build_use", "apps", "latest_bld", "live", "xuse")
