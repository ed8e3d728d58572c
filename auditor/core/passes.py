"""The passes over the controller tables that checks share, as named CTEs.

Every check reads these instead of the base tables, so one audit scans each table once
and groups ``api_release`` by ``config_id`` and by ``build_id`` once, whatever the number
of checks (PostgreSQL materialises a CTE that several checks reference).

Definitions used throughout (documented in the README):

* **live release** of an app: the controller's, its newest release by ``created`` that is not
  failed (``release_set.filter(failed=False).latest()``); on the old generation (no
  ``api_release.failed``, before 0020) its newest release by ``created``.  Not the highest
  version: the two differ when releases tie on ``created``, a clock went backwards or a
  version repeats (``release-order`` reports that).  When several releases tie for it the
  controller may pick any of them: the pass keeps the highest version and counts the tied
  rows (``ties``), and checks that compare with the live release skip or report such apps.
* **newest release**: what ``release_set.latest()`` returns over *all* releases, failed
  ones too; the controller numbers the next release from it (its version + 1).
* **latest config / build**: the app's row with the greatest ``created``: what the
  controller's ``config_set.latest()`` / ``build_set.latest()`` return
  (``ORDER BY created DESC LIMIT 1``; on a tie PostgreSQL may return either row).
* **in flight**: a row created within ``[now() - grace, now() + skew]``: the controller
  inserts a config or build before its release, so a young row is not (yet) an orphan, and
  a controller host's clock may run a little ahead of the database's (the skew).  A row
  created after ``now() + skew`` is **future-dated** (the ``future-dated`` check): never in
  flight, never hidden.

A pass body (a :class:`~auditor.core.query.Query`) may use ``{scope}`` (a predicate on an
unqualified ``app_id`` column) and ``{app_scope}`` (on ``api_app.uuid``) and ``{partial}``
(``true`` when the audit is limited to some apps: rows of other apps must then be looked up in
the base tables); a literal brace in SQL is written ``{{`` / ``}}``.  Named parameters:
``%(grace_seconds)s``, ``%(skew_seconds)s`` and ``%(app_uuids)s``; a literal percent sign (as in
``format()``) is written ``%%``.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from auditor.core.detect import Generation
from auditor.core.query import Query, text


@dataclass(frozen=True)
class Pass:
    """A named CTE and the passes it reads."""

    name: str
    body: Query
    needs: tuple[str, ...] = ()


#: Releases with their ``failed`` flag; before migration 0020 no release is failed.
_RELEASES_WITH_FAILED = """
    SELECT r.uuid, r.app_id, r.version, r.created, r.config_id, r.build_id, r.failed
    FROM api_release r WHERE {scope}"""
_RELEASES_NEVER_FAILED = """
    SELECT r.uuid, r.app_id, r.version, r.created, r.config_id, r.build_id, false AS failed
    FROM api_release r WHERE {scope}"""


#: Each config (build) with the releases pointing at it: the scoped releases, read from the table
#: (``{releases}``; reading the ``rel`` pass instead wrote every release to a tuplestore, 88 MB on
#: disk at 1M releases, read back by each use pass), grouped by (row, app) once (a hash aggregate, as
#: many groups as rows), fully joined with the scoped rows: one line per
#: row nothing uses (``releases`` 0: an orphan), per row and app of its users (almost always one:
#: its own app; ``user_app`` differs from the row's ``app_id`` for a cross-app use) and per id used
#: that is not a row in scope (``present`` false: dangling, or under ``--app`` another app's row).  The
#: orphan, dangling, cross-app and latest checks all read it: no other join of the releases with
#: the configs (builds).  Its placeholders are constant pass and column names.
_USE = """
    SELECT coalesce(c.uuid, u.row_id) AS uuid, c.uuid IS NOT NULL AS present, c.app_id, c.created,
           u.app_id AS user_app, coalesce(u.releases, 0) AS releases, coalesce(u.ok_releases, 0) AS ok_releases
    FROM {rows} c
    FULL JOIN (SELECT {pointer} AS row_id, app_id, count(*) AS releases,
                      count(CASE WHEN failed THEN NULL ELSE 1 END) AS ok_releases
               FROM ({releases}) r WHERE {where} GROUP BY {pointer}, app_id) u ON u.row_id = c.uuid"""

#: Each app's newest config (build): what ``latest()`` returns (of the rows tied at the newest
#: ``created``, the least uuid stands for them), and how many rows tie with it (``ties``).  No sort of
#: every row: each app's newest ``created`` by a hash aggregate, then only the rows at it (joined
#: back: ``created`` is NOT NULL in every schema the tool reads) are ordered.  A sort of every row
#: with two windows took 2.2 times as long at 1M releases and 3 times for the largest app.  The join
#: is a LEFT JOIN from the apps so that the planner expects a row per app: an inner join of two CTEs
#: on two columns is estimated at one row, and the checks joined with it became nested loops (the
#: whole audit at 1M took 1.4 times as long).  Rows without an app (constraint dropped) have no
#: ``latest()``: every reader joins on ``app_id``.
_LATEST = """
    SELECT DISTINCT ON (c.app_id) c.app_id, c.uuid, c.created, count(*) OVER (PARTITION BY c.app_id) AS ties
    FROM (SELECT app_id, max(created) AS created FROM {rows} WHERE app_id IS NOT NULL GROUP BY app_id) m
    LEFT JOIN {rows} c ON c.app_id = m.app_id AND c.created = m.created
    ORDER BY c.app_id, c.uuid"""


#: Each release's position in its app's history (the window pass, one sort of the releases in scope:
#: ``{releases}`` is the ``rel`` pass, or under ``rel_notable`` the release table itself, whose
#: ``(app_id, version)`` unique index then feeds an incremental sort).  ``{app}`` is the column the
#: window partitions by (the app, or its position in the scope), ``{frame}`` the window's frame and
#: ``{positions}`` the columns only the shared rows' listing reads (:data:`_POSITIONS`, or nothing).
_REL_POS = """
            SELECT uuid, app_id, version, created, failed, config_id, build_id,{positions}
                   lag(version) OVER w AS prev_version,
                   lead(version) OVER w AS next_version,
                   count(*) OVER a AS app_releases,
                   max(version) OVER a AS app_max_version,
                   max(created) OVER a AS app_newest_created,
                   max(CASE WHEN failed THEN NULL ELSE created END) OVER a AS app_live_created
            FROM {releases} rel
            WINDOW w AS (PARTITION BY {app} ORDER BY version, created, uuid{frame}), a AS (PARTITION BY {app})"""

#: Each release's position in its app's history and its app's non-failed releases up to it: read by the
#: shared rows' listing (contiguity) alone, so ``rel_notable``'s own window does without them (a running
#: sum and a row number over every release, about 5 percent of that window's CPU at 1M releases).
_POSITIONS = """
                   row_number() OVER w AS pos,
                   sum(CASE WHEN failed THEN 0 ELSE 1 END) OVER w AS ok_through,"""

#: Under ``--app``, the releases of the apps in scope for ``rel_notable``'s window, each with its app's
#: position in the scope's array (``app_n``): the window partitions by that number instead of the
#: app's uuid, so its sort compares integers first (every comparison of the sort began with two equal
#: uuids), and its frame is ``ROWS`` (``uuid`` ends the order: no two rows are peers, so the running
#: sum is the same, without the peer tests).  The apps' uuids are distinct (one per app name).
_SCOPED_RELEASES = """
    SELECT r.uuid, r.app_id, r.version, r.created, r.config_id, r.build_id, {failed} AS failed, s.n AS app_n
    FROM unnest(%(app_uuids)s::uuid[]) WITH ORDINALITY AS s(id, n) JOIN api_release r ON r.app_id = s.id"""


#: The releases of :data:`_REL_POS` the per-app checks and ``live`` read (``{rel_pos}``: the window
#: itself, or the ``rel_pos`` pass when the statement reads it anyway).
_REL_NOTABLE = """
            SELECT p.* FROM {rel_pos} p
            WHERE p.created = p.app_newest_created OR p.version = p.app_max_version
               OR (NOT p.failed AND p.created = p.app_live_created)
               OR p.version = p.prev_version OR p.version > coalesce(p.prev_version, 0) + 1
               OR {future}"""

#: Under ``--app``, :data:`_REL_POS`'s columns for ``rel_notable``'s own window, without a window over the whole of each
#: app's partition (``a``: it held every release of the app in a tuplestore until the partition ended, then
#: read them back, about half of the window pass's time).  One running window ``d`` in the reverse order
#: (``version DESC, created DESC, uuid DESC``: the exact reverse of ``(version, created, uuid)``, a total
#: order; so ``lead`` there is the previous version and ``lag`` the next) keeps only the candidates: a
#: release whose ``created`` is the greatest so far (the app's newest rows are among them: none later in this
#: order is newer), the same among releases that did not fail, the highest version (the running maximum
#: from the first row is the app's maximum), the last row (its running count is the app's count of releases)
#: and the per-row terms of :data:`_REL_NOTABLE`.  When ``created`` grows with the version (every sound
#: history) that is a few rows per app; the per-app window ``a`` then runs over them alone and gives the
#: same maxima and count, and :data:`_REL_NOTABLE`'s filter keeps the same rows with the same columns.  The
#: whole database's window keeps :data:`_REL_POS`: there the ``(app_id, version)`` index gives its order (the
#: reverse order cannot use it: the partitions come in ascending order), and the pass alone took as long either
#: way at 1M releases (1.34 against 1.36 s), while its readers' plans changed with its smaller estimate.
_NOTABLE_WINDOW = """
            SELECT uuid, app_id, version, created, failed, config_id, build_id, prev_version, next_version,
                   max(seen) OVER a AS app_releases,
                   max(version) OVER a AS app_max_version,
                   max(created) OVER a AS app_newest_created,
                   max(CASE WHEN failed THEN NULL ELSE created END) OVER a AS app_live_created
            FROM (SELECT rel.*,
                         lead(version) OVER d AS prev_version,
                         lag(version) OVER d AS next_version,
                         count(*) OVER d AS seen,
                         max(version) OVER d AS top_version,
                         max(created) OVER d AS newest_so_far,
                         max(CASE WHEN failed THEN NULL ELSE created END) OVER d AS live_so_far,
                         lead(true) OVER d AS more
                  FROM {releases} rel
                  WINDOW d AS (PARTITION BY {app} ORDER BY version DESC, created DESC, uuid DESC ROWS UNBOUNDED PRECEDING)) c
            WHERE created = newest_so_far OR (NOT failed AND created = live_so_far) OR version = top_version
               OR more IS NULL OR version = prev_version OR version > coalesce(prev_version, 0) + 1 OR {future}
            WINDOW a AS (PARTITION BY {app})"""


def in_flight(column: str) -> sql.Composed:
    """SQL: ``column`` (a ``created``) lies in the in-flight window ``[now() - grace, now() + skew]``."""
    return sql.SQL("({column} > now() - %(grace_seconds)s::float8 * interval '1 second'"
                   " AND {column} <= now() + %(skew_seconds)s::float8 * interval '1 second')").format(
        column=text(column))


def future_dated(column: str) -> sql.Composed:
    """SQL: ``column`` (a ``created``) lies after ``now() + skew``: written by a clock ahead of ours."""
    return sql.SQL("({column} > now() + %(skew_seconds)s::float8 * interval '1 second')").format(column=text(column))


def passes_for(generation: Generation, window_listed: bool = False, scoped: bool = False) -> dict[str, Pass]:
    """Every shared pass, written for this generation's columns.

    ``window_listed``: the statement reads ``rel_pos`` itself (the shared rows' info findings are
    listed); ``rel_notable`` then filters it instead of running the window over every release again.
    ``scoped``: the audit is limited to some apps (``--app``); ``rel_notable``'s own window then reads
    :data:`_SCOPED_RELEASES`."""
    releases = _RELEASES_WITH_FAILED if generation.has_failed else _RELEASES_NEVER_FAILED
    window: Query = Query(_REL_POS, {"releases": Query("(" + releases + ")"), "app": text("app_id"), "frame": text(""),
                                     "positions": text("")})
    if scoped:
        window = Query(_NOTABLE_WINDOW, {"releases": Query("(" + _SCOPED_RELEASES + ")",
                                                           {"failed": text("r.failed" if generation.has_failed else "false")}),
                                         "app": text("app_n"), "future": future_dated("created")})
    defs = [
        Pass("apps", Query("SELECT uuid, id AS name, created FROM api_app WHERE {app_scope}")),
        Pass("rel", Query(releases)),
        Pass("cfg", Query("SELECT uuid, app_id, created FROM api_config WHERE {scope}")),
        Pass("bld", Query("SELECT uuid, app_id, created FROM api_build WHERE {scope}")),
        Pass(
            # The controller's live release: newest by ``created`` among the releases that did
            # not fail.  Read from the window pass (no second sort of every release): only the
            # rows at the app's newest non-failed ``created`` are kept, and the few that tie
            # are counted; the highest version among them stands for the app.  Checks test
            # ``ambiguous`` (a boolean the planner estimates at one half), not ``ties = 1``
            # (estimated at 0.5 percent, which turns later joins into nested loops).
            "live",
            Query("""
            SELECT DISTINCT ON (app_id) app_id, uuid, version, created, config_id, build_id,
                   count(*) OVER (PARTITION BY app_id) AS ties,
                   count(*) OVER (PARTITION BY app_id) > 1 AS ambiguous
            FROM rel_notable WHERE NOT failed AND created = app_live_created
            ORDER BY app_id, version DESC, uuid DESC"""),
            ("rel_notable",),
        ),
        Pass("config_use", Query(_USE, {"pointer": text("config_id"), "rows": text("cfg"), "where": text("true"),
                                        "releases": Query(releases)}), ("cfg",)),
        Pass("build_use", Query(_USE, {"pointer": text("build_id"), "rows": text("bld"),
                                       "where": text("build_id IS NOT NULL"), "releases": Query(releases)}),
             ("bld",)),
        Pass("latest_cfg", Query(_LATEST, {"rows": text("cfg")}), ("cfg",)),
        Pass("latest_bld", Query(_LATEST, {"rows": text("bld")}), ("bld",)),
        Pass(
            # Each release's position in its app's history: ``pos`` (row_number in version
            # order; old Deis may reuse versions, so positions, not raw numbers), ``ok_through``
            # (non-failed releases up to and including it), the previous and next version, and
            # per app (same sort: the whole partition): its release count, maximum version,
            # newest ``created`` (what ``release_set.latest()`` returns) and newest ``created``
            # among the releases that did not fail (the live release's).
            "rel_pos",
            Query(_REL_POS, {"releases": text("rel"), "app": text("app_id"), "frame": text(""),
                             "positions": text(_POSITIONS)}),
            ("rel",),
        ),
        Pass(
            # The few releases the per-app checks and ``live`` read, with their ``rel_pos`` columns:
            # an app's newest (by ``created``), its highest version, its live candidates (the
            # newest ``created`` among the releases that did not fail), a repeated version, a
            # release after a gap in the versions and a future-dated one (some tens of thousands
            # of rows at 1M releases; each reader's condition is one of these terms).  The window
            # runs here, filtered as its rows come: unless shared rows' info findings are listed,
            # nothing else reads ``rel_pos``, which then never runs (it was written to a tuplestore,
            # 150 MB on disk at 1M releases, and read back by each of these readers).  When they are
            # listed (``window_listed``), this filters the ``rel_pos`` pass instead of sorting again.
            # It reads the release table itself, as the use passes do: then nothing reads ``rel`` at
            # the default floor, and with every finding listed only ``rel_pos`` does (PostgreSQL 12
            # and later run a CTE read once in-line): no tuplestore of every release either way.
            "rel_notable",
            Query(_REL_NOTABLE, {"rel_pos": text("rel_pos") if window_listed else Query("(" + window.template + ")", window.parts),
                                 "future": future_dated("p.created")}),
            ("rel_pos",) if window_listed else (),
        ),
        Pass(
            # Releases whose config or build is not one of their own app's rows (scoped): a
            # cross-app reference or a dangling one.  The use passes have already found them (the
            # few lines whose users are not the row's app): only those releases are read, from
            # the release table (semi-joins; a test per release in scope against a hashed subquery
            # is planned as a rescan per release when the server cannot tell the subquery is small).
            # A release without a config or an app (constraints dropped) is read only when the
            # use pass saw one.
            "foreign_rel",
            Query("""
            SELECT o.* FROM ({releases}) o
            WHERE (o.config_id, o.app_id) IN (SELECT u.uuid, u.user_app FROM config_use u
                                              WHERE u.user_app IS DISTINCT FROM u.app_id)
            UNION
            SELECT o.* FROM ({releases}) o
            WHERE (o.build_id, o.app_id) IN (SELECT u.uuid, u.user_app FROM build_use u
                                             WHERE u.user_app IS DISTINCT FROM u.app_id)
            UNION
            SELECT o.* FROM ({releases}) o
            WHERE (o.config_id IS NULL OR o.app_id IS NULL)
              AND EXISTS (SELECT 1 FROM config_use u WHERE u.uuid IS NULL OR (u.user_app IS NULL AND u.releases > 0))
            """, {"releases": Query(releases)}),
            ("config_use", "build_use"),
        ),
        Pass(
            # Cross-app uses, one row per (config or build, release of another app): the
            # releases in scope using another app's existing row (by primary key: a missing
            # row is dangling, never "used"), and under --app the releases of other apps
            # using a row in scope: one scan of the config_id / build_id index for the array
            # of the rows in scope (never a scan of every release; a lateral lookup per row,
            # 9,700 index scans for the largest app, took three times as long).  Under --app the
            # releases of the apps in scope are left out as the table is read (``{others}``): those
            # using another app's row come from ``foreign_rel`` above, and the scope's own ~10,000
            # releases of the largest app no longer fill the hash of the join to be thrown away.
            # Where the whole database is read the last two branches never run.
            "xuse",
            Query("""
            SELECT 'config'::text AS kind, c.uuid AS row_id, c.app_id AS row_app, r.uuid AS release,
                   r.app_id AS release_app
            FROM foreign_rel r JOIN api_config c ON c.uuid = r.config_id
            WHERE c.app_id <> r.app_id
            UNION
            SELECT 'build', b.uuid, b.app_id, r.uuid, r.app_id
            FROM foreign_rel r JOIN api_build b ON b.uuid = r.build_id
            WHERE b.app_id <> r.app_id
            UNION
            SELECT 'config', c.uuid, c.app_id, o.uuid, o.app_id
            FROM api_release o JOIN cfg c ON c.uuid = o.config_id
            WHERE {partial} AND o.config_id = ANY (ARRAY(SELECT uuid FROM cfg)) AND o.app_id <> c.app_id{others}
            UNION
            SELECT 'build', b.uuid, b.app_id, o.uuid, o.app_id
            FROM api_release o JOIN bld b ON b.uuid = o.build_id
            WHERE {partial} AND o.build_id = ANY (ARRAY(SELECT uuid FROM bld)) AND o.app_id <> b.app_id{others}""",
                  {"others": text(" AND o.app_id <> ALL (") + sql.SQL("%(app_uuids)s::uuid[])") if scoped else text("")}),
            ("foreign_rel", "cfg", "bld"),
        ),
    ]
    return {p.name: p for p in defs}


def closure(passes: dict[str, Pass], wanted: set[str]) -> list[Pass]:
    """The passes in ``wanted`` and those they read, dependencies first."""
    ordered: list[Pass] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for dep in passes[name].needs:
            visit(dep)
        ordered.append(passes[name])

    for name in sorted(wanted):
        visit(name)
    return ordered
