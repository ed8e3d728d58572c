"""The fused floor: one hand-written statement that counts every finding the audit reports.

The least work any implementation of the current checks must do, per check and severity,
in one pass: one ordered pass over the releases (a window sort by app and position, read
by the per-app ``GROUP BY`` as its rows come: the live release, ``release_set.latest()``,
release order, gaps), each app's ``latest()`` of the configs and of the builds (a hash
aggregate of the newest ``created`` per app, then only the rows at it ordered), and for each
of those tables the releases grouped by (row, app) into lines, as the audit's use passes do,
each line fully joined with its row and counted per line (orphans, dangling and foreign
references, rows shared inside their app), the few rows other apps use grouped per row in the
same aggregate (the cross-app classes), and a few per-app joins.  It builds no message, no
``related`` list and no evidence: it counts, per check and severity, what the default report
counts.  With ``reasons`` it also tells the rows shared inside an app apart by hazard class
(their contiguity needs each release's running count of non-failed releases from the ordered
pass: every release then goes through the joins, grouped by row), as the listing of every
finding does; ``tests/test_bench.py`` compares both.

It follows the checks' definitions on main (``auditor/passes.py``, ``checks/*.py``): live
release = newest by ``created`` among non-failed releases (the highest version, then uuid,
among ties), ``latest()`` = greatest ``created`` (the smallest uuid among ties), the
in-flight window ``(now() - grace, now() + skew]``, sharing counted by row across apps,
severities per controller generation.  ``tests/test_bench.py`` checks that its counts equal
the audit's on damaged databases of generations 0019 and 0028.

JSON validation (``invalid-json``): from PostgreSQL 16 with ``pg_input_is_valid`` (and a
first-character test for "is an object", so a valid value is parsed once).  Before 16 the
floor casts every candidate value on the server (``value::json``), which fails the whole
statement only where a value does not parse: then it rolls back to a savepoint, finds the
offending rows with narrower queries (the uuid space of each table bisected with savepoints
down to ranges of 2,000 rows, which are parsed here the way the audit parses them on those
servers) and runs the statement again with their ids.  This
works on a hot standby (savepoints are allowed there; no function is created).

Two counts are exact only through a fallback that costs nothing on a database without
that damage: a release with two missing parents (app, config, build) is one
``dangling-reference`` finding, and a release using another app's config *and* build one
``cross-app-reference`` finding; the grouped passes count references, so when more than one
kind is present the releases are counted again by a narrower query.  ``missing-constraint``
reads only ``pg_catalog`` (17 expected constraints, independent of the data): the floor
runs the check's own query for it.  SQL_ASCII databases (the ``not UTF-8`` case) are not
handled: the floor assumes a UTF8 database.

Run: ``python -m bench.fused --dsn DSN [--json-check cast|pg_input_is_valid] [--explain] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import psycopg
from psycopg import sql

from auditor.core.connection import DEFAULT_WORK_MEM, JIT_OFF
from auditor.core.controller import BUILD_DIFFS_AGAINST_LATEST_UNTIL, CONFIG_SET_MERGES_OVER_LATEST_UNTIL
from auditor.core.detect import Generation, detect
from auditor.core.settings import DEFAULT_GRACE_SECONDS, DEFAULT_SKEW_SECONDS
from checks.invalid_json import json_problem

#: How the floor validates JSON: ``cast`` (every server: ``value::json`` fails the statement on an
#: unparsable value, then the offenders are looked up) or ``pg_input_is_valid`` (16 and later).
JsonCheck = Literal["cast", "pg_input_is_valid"]

#: The JSON columns ``invalid-json`` reads, per table (those the generation has are used).
JSON_COLUMNS: dict[str, tuple[str, ...]] = {
    "api_config": ("values", "memory", "cpu", "tags", "registry", "healthcheck", "lifecycle_post_start",
                   "lifecycle_pre_stop", "termination_grace_period"),
    "api_build": ("procfile",),
    "api_app": ("structure", "procfile_structure"),
    "api_appsettings": ("autoscale", "label"),
}

_IN_FLIGHT = ("({c} > now() - %(grace_seconds)s::float8 * interval '1 second'"
              " AND {c} <= now() + %(skew_seconds)s::float8 * interval '1 second')")
_FUTURE = "({c} > now() + %(skew_seconds)s::float8 * interval '1 second')"

# {failed}: the release's failed flag (false before 0020); {future_r}/{in_flight_*}: the
# window tests above; {app_bad}/{set_bad} (and {bad} of _ROWS_LATEST): "this row has a bad JSON value"
# per table; {settings}: the app settings part (empty before the table exists).  Counts come
# out as (check, severity, reason, n); reason is the shared rows' hazard class, else ''.
_STATEMENT = """
WITH r AS (
    -- The ordered pass: one sort of the releases by app and position (version, created, uuid).
    SELECT r.app_id, r.version, r.created, {failed} AS failed, r.config_id, r.build_id,
           (row_number() OVER w)::int AS pos,
           (sum(CASE WHEN {failed} THEN 0 ELSE 1 END) OVER w)::int AS ok_through,
           r.version = lag(r.version) OVER w AS repeats,
           r.version > coalesce(lag(r.version) OVER w, 0) + 1 AS gap_before,
           r.created = max(r.created) OVER a AS newest,
           NOT {failed} AND r.created = max(CASE WHEN {failed} THEN NULL ELSE r.created END) OVER a AS live_candidate
    FROM api_release r
    WINDOW w AS (PARTITION BY r.app_id ORDER BY r.version, r.created, r.uuid), a AS (PARTITION BY r.app_id)
), ra AS (
    -- Per app: the live release's config and build (the last live candidate in position
    -- order: highest version, then uuid; picked without sorting the input: the position is
    -- prefixed to the id), release order, gaps, future-dated releases.
    SELECT r.app_id, count(*) AS releases, max(r.version) AS max_version,
           count(*) FILTER (WHERE r.newest) AS newest_count,
           max(r.version) FILTER (WHERE r.newest) AS newest_top,
           max(r.created) FILTER (WHERE r.newest) AS newest_created,
           max(r.created) FILTER (WHERE r.live_candidate) AS live_created,
           count(*) FILTER (WHERE r.live_candidate) AS live_count,
           substr(max(lpad(r.pos::text, 10, '0') || r.config_id::text) FILTER (WHERE r.live_candidate), 11)::uuid
               AS live_config,
           nullif(substr(max(lpad(r.pos::text, 10, '0') || coalesce(r.build_id::text, ''))
                         FILTER (WHERE r.live_candidate), 11), '')::uuid AS live_build,
           bool_or(r.repeats) AS repeated, bool_or(r.gap_before) AS gap,
           count(*) FILTER (WHERE {future_r}) AS future,
           count(*) FILTER (WHERE {future_r} AND r.newest) AS future_newest
    FROM r GROUP BY r.app_id
){rows_latest}{use_counted}, lx AS (
    -- Per app: latest() of each table with its ties, and the live release's row (by primary key).
    SELECT 'config'::text AS kind, w.app_id, w.uuid, w.created, w.tied,
           l.live_count = 1 AS clear_live, l.live_config AS live_row,
           (SELECT x.created FROM api_config x WHERE x.uuid = l.live_config) AS live_row_created
    FROM cn w LEFT JOIN ra l ON l.app_id = w.app_id
    UNION ALL
    SELECT 'build', w.app_id, w.uuid, w.created, w.tied, l.live_count = 1, l.live_build,
           (SELECT x.created FROM api_build x WHERE x.uuid = l.live_build)
    FROM bn w LEFT JOIN ra l ON l.app_id = w.app_id
), latest AS (
    SELECT count(*) FILTER (WHERE kind = 'config' AND clear_live AND NOT {in_flight_l}
                            AND live_row IS DISTINCT FROM uuid AND live_row_created IS DISTINCT FROM created)
               AS cfg_not_live,
           count(*) FILTER (WHERE kind = 'build' AND clear_live AND NOT {in_flight_l}
                            AND live_row IS DISTINCT FROM uuid AND live_row_created IS DISTINCT FROM created)
               AS bld_not_live,
           count(*) FILTER (WHERE kind = 'config' AND tied) AS cfg_ties,
           count(*) FILTER (WHERE kind = 'build' AND tied) AS bld_ties
    FROM lx
), apps_counted AS (
    SELECT count(*) FILTER (WHERE l.app_id IS NULL AND NOT {in_flight_a}) AS without_release,
           count(*) FILTER (WHERE {app_bad} AND l.live_created IS NOT NULL) AS bad_used,
           count(*) FILTER (WHERE {app_bad} AND l.live_created IS NULL) AS bad_other
    FROM api_app a LEFT JOIN ra l ON l.app_id = a.uuid
), releases_counted AS (
    SELECT count(*) FILTER (WHERE l.gap) AS gaps,
           count(*) FILTER (WHERE l.newest_count > 1 OR l.newest_top < l.max_version OR l.future_newest > 0
                                  OR (l.live_count > 1 AND l.live_created <> l.newest_created)) AS order_critical,
           count(*) FILTER (WHERE l.repeated AND NOT (l.newest_count > 1 OR l.newest_top < l.max_version
                                  OR l.future_newest > 0
                                  OR (l.live_count > 1 AND l.live_created <> l.newest_created))) AS order_warning,
           coalesce(sum(l.future_newest), 0) AS future_newest,
           coalesce(sum(l.future - l.future_newest), 0) AS future_other,
           coalesce(sum(l.releases) FILTER (WHERE NOT EXISTS (SELECT 1 FROM api_app p WHERE p.uuid = l.app_id)), 0)
               AS gone_app_refs
    FROM ra l
){settings_cte}
SELECT v.check_id, v.severity, v.reason, v.n
FROM cc c, bc b, apps_counted a, releases_counted o, latest l{settings_from},
     LATERAL (VALUES
        ('orphan-config', {cfg_latest_sev}, '', c.orphan_latest), ('orphan-config', 'info', '', c.orphan_other),
        ('orphan-build', {bld_latest_sev}, '', b.orphan_latest), ('orphan-build', 'info', '', b.orphan_other),
        ('latest-config-not-live', {cfg_latest_sev}, '', l.cfg_not_live),
        ('latest-build-not-live', {bld_latest_sev}, '', l.bld_not_live),
        ('latest-ambiguous', 'warning', '', l.cfg_ties), ('latest-ambiguous', {bld_tie_sev}, '', l.bld_ties),
{shared_config_info}
        ('shared-config', 'critical', 'cross-app', c.cross_live),
        ('shared-config', 'warning', 'cross-app', c.cross_all - c.cross_live),
{shared_build_info}
        ('shared-build', 'critical', 'cross-app', b.cross_live),
        ('shared-build', 'warning', 'cross-app', b.cross_all - b.cross_live),
        ('cross-app-reference', 'critical', 'config', c.foreign_refs),
        ('cross-app-reference', 'critical', 'build', b.foreign_refs),
        ('dangling-reference', 'critical', 'release:app', o.gone_app_refs),
        ('dangling-reference', 'critical', 'release:config', c.missing_refs),
        ('dangling-reference', 'critical', 'release:build', b.missing_refs),
        ('dangling-reference', 'critical', 'config', c.app_gone),
        ('dangling-reference', 'critical', 'build', b.app_gone),
        ('release-version-gap', 'warning', '', o.gaps),
        ('release-order', 'critical', '', o.order_critical), ('release-order', 'warning', '', o.order_warning),
        ('future-dated', 'critical', 'release', o.future_newest), ('future-dated', 'warning', 'release', o.future_other),
        ('future-dated', 'critical', 'config', c.future_newest), ('future-dated', 'warning', 'config', c.future_other),
        ('future-dated', {bld_future_sev}, 'build', b.future_newest), ('future-dated', 'warning', 'build', b.future_other),
        ('invalid-json', 'critical', 'api_config', c.bad_used), ('invalid-json', 'warning', 'api_config', c.bad_other),
        ('invalid-json', 'critical', 'api_build', b.bad_used), ('invalid-json', 'warning', 'api_build', b.bad_other),
        ('invalid-json', 'critical', 'api_app', a.bad_used), ('invalid-json', 'warning', 'api_app', a.bad_other){settings_values},
        ('app-without-release', 'warning', '', a.without_release)
     ) AS v(check_id, severity, reason, n)
WHERE v.n > 0
"""

#: One pass over a table's rows (configs or builds) with their users: orphans, dangling and
#: foreign references, sharing by hazard class (the shared-* checks' reason), future-dated
#: rows, bad JSON ({used}: when the row matters now).
_ROWS_COUNTED = """
    SELECT count(*) FILTER (WHERE g.exists AND g.n = 0 AND NOT {in_flight_g} AND g.is_latest) AS orphan_latest,
           count(*) FILTER (WHERE g.exists AND g.n = 0 AND NOT {in_flight_g} AND NOT g.is_latest) AS orphan_other,
           coalesce(sum(g.n) FILTER (WHERE NOT g.exists), 0) AS missing_refs,
           coalesce(sum(g.foreign_n) FILTER (WHERE g.exists), 0) AS foreign_refs,
           count(*) FILTER (WHERE g.exists AND g.owner NOT IN (SELECT p.uuid FROM api_app p)) AS app_gone,
           count(*) FILTER (WHERE g.foreign_live) AS cross_live,
           count(*) FILTER (WHERE g.exists AND g.crossed AND g.n > 1) AS cross_all,
{shared_counts}
           count(*) FILTER (WHERE {future_g} AND g.at_newest) AS future_newest,
           count(*) FILTER (WHERE {future_g} AND NOT g.at_newest) AS future_other,
           count(*) FILTER (WHERE g.bad_json AND {used}) AS bad_used,
           count(*) FILTER (WHERE g.bad_json AND NOT {used}) AS bad_other"""

#: The shared rows inside one app, by hazard class (``reasons``: their contiguity needs each release's
#: running count of non-failed releases, ``ok_through`` of the ordered pass, for every release) or as
#: one ``info`` class, ``own`` (what the default report counts: every hazard class of a row shared
#: inside its app is ``info``).
_SHARED_CLASSES = """
           count(*) FILTER (WHERE g.shared_own AND NOT g.contiguous AND g.includes_live) AS rollback_reuse_live,
           count(*) FILTER (WHERE g.shared_own AND g.is_latest AND g.has_live AND NOT g.includes_live)
               AS shared_latest_not_live,
           count(*) FILTER (WHERE g.shared_own AND NOT g.contiguous AND NOT g.includes_live
                            AND NOT (g.is_latest AND g.has_live)) AS rollback_reuse,
           count(*) FILTER (WHERE g.shared_own AND g.contiguous
                            AND NOT (g.is_latest AND g.has_live AND NOT g.includes_live)) AS adjacent,"""
_SHARED_OWN = """
           count(*) FILTER (WHERE g.shared_own) AS shared_own_count,"""
_SHARED_CLASS_VALUES = """
        ('shared-{kind}', 'info', 'adjacent', {t}.adjacent), ('shared-{kind}', 'info', 'rollback-reuse', {t}.rollback_reuse),
        ('shared-{kind}', 'info', 'rollback-reuse-live', {t}.rollback_reuse_live),
        ('shared-{kind}', 'info', 'shared-latest-not-live', {t}.shared_latest_not_live),"""
_SHARED_OWN_VALUES = """
        ('shared-{kind}', 'info', 'own', {t}.shared_own_count),"""
#: Each row's span of non-failed releases among its own app's (``reasons`` only).
_OWN_SPAN = """,
           max(r.ok_through) FILTER (WHERE r.app_id = w.app_id)
             - min(r.ok_through - CASE WHEN r.failed THEN 0 ELSE 1 END) FILTER (WHERE r.app_id = w.app_id) AS own_span"""
#: The configs (builds) with their JSON flag (``{t}b``), each app's ``latest()`` (``{t}n``: the smallest uuid
#: among its newest rows, whether another row ties with it) and each row's place (``{t}w``: latest, at
#: the newest ``created``).  No sort of every row: the newest ``created`` per app by a hash aggregate,
#: then only the rows at it ordered (as the audit's ``latest_*`` passes); a sort of every row by app
#: and ``created`` with three windows took ~300 ms more per table at 1M releases.  Rows without an app
#: (constraint dropped) have no ``latest()``.
_ROWS_LATEST = """, {t}b AS (
    SELECT c.uuid, c.app_id, c.created, {bad} AS bad_json FROM {table} c
), {t}n AS (
    SELECT DISTINCT ON (c.app_id) c.app_id, c.uuid, c.created, count(*) OVER (PARTITION BY c.app_id) > 1 AS tied
    FROM (SELECT app_id, max(created) AS created FROM {t}b WHERE app_id IS NOT NULL GROUP BY app_id) m
    JOIN {t}b c ON c.app_id = m.app_id AND c.created = m.created
    ORDER BY c.app_id, c.uuid
), {t}w AS (
    SELECT c.uuid, c.app_id, c.created, coalesce(n.uuid = c.uuid, false) AS is_latest,
           coalesce(c.created = n.created, false) AS at_newest, c.bad_json
    FROM {t}b c LEFT JOIN {t}n n ON n.app_id = c.app_id
)"""

#: Without ``reasons``: each app's ``latest()`` (``{t}n``) read from the table (the newest ``created`` per
#: app by a hash aggregate, then only the rows at it ordered); the rows themselves are read once more,
#: with their JSON flag, by the join with their lines (``_ROWS_BY_LINE``).
_LATEST_BY_APP = """, {t}n AS (
    SELECT DISTINCT ON (c.app_id) c.app_id, c.uuid, c.created, count(*) OVER (PARTITION BY c.app_id) > 1 AS tied
    FROM (SELECT app_id, max(created) AS created FROM {table} WHERE app_id IS NOT NULL GROUP BY app_id) m
    JOIN {table} c ON c.app_id = m.app_id AND c.created = m.created
    ORDER BY c.app_id, c.uuid
)"""

#: Each config (build) with the releases pointing at it (full join: orphans and dangling ids too),
#: grouped by row: its users, those of its own app.  With ``reasons`` (``{own_span}``: their
#: contiguity) every release of the ordered pass is joined, then grouped by row.
_USE_BY_RELEASE = """, {g} AS (
    SELECT coalesce(w.uuid, r.{pointer}) AS uuid, w.app_id AS owner, bool_or(w.uuid IS NOT NULL) AS exists,
           max(w.created) AS created, bool_or(w.is_latest) AS is_latest, bool_or(w.at_newest) AS at_newest,
           bool_or(w.bad_json) AS bad_json,
           count(r.app_id) AS n,
           count(*) FILTER (WHERE r.app_id = w.app_id) AS own_n,
           count(*) FILTER (WHERE r.app_id <> w.app_id) AS foreign_n,
           count(*) FILTER (WHERE r.app_id = w.app_id AND NOT r.failed) AS own_ok{own_span}
    FROM {w} w FULL JOIN (SELECT * FROM r WHERE {where}) r ON r.{pointer} = w.uuid
    GROUP BY 1, 2
)"""
#: With ``reasons``: each row's releases grouped by row (``{use_groups}``), then per row its flags from
#: the owner app's live release, then counted.
_ROWS_BY_ROW = """{use_groups}{flags_c}{flags_b}, cc AS ({rows_counted_c}
    FROM cf g
), bc AS ({rows_counted_b}
    FROM bf g
)"""
#: Per config (``cf``, from ``cg``) or build (``bf``, from ``bg``): flags from the owner app's live
#: release (a hash of the ~10k apps).
_ROW_FLAGS = """, {f} AS (
    SELECT g.*, g.foreign_n > 0 AS crossed,
           g.exists AND g.own_n > 1 AND g.foreign_n = 0 AS shared_own,
           {contiguous} AS contiguous,
           coalesce(l.{live} = g.uuid, false) AS includes_live,
           coalesce(l.live_created IS NOT NULL, false) AS has_live,
           g.exists AND g.foreign_n > 0 AND g.n > 1
               AND EXISTS (SELECT 1 FROM ra x WHERE x.{live} = g.uuid AND x.app_id <> g.owner) AS foreign_live
    FROM {g} g LEFT JOIN ra l ON l.app_id = g.owner
)"""

#: Without ``reasons`` (what the default report counts): the audit's shape, counted by line.  The
#: releases are grouped by (row, user app) first (a hash of two uuids, ~480k lines at 1M releases, far
#: fewer than the releases), each line is joined to its row, and the lines are counted, never merged
#: per row: orphans, dangling and foreign references are facts of a line, and a row's own facts
#: (future-dated, bad JSON, owner gone) are counted on the one line that stands for the row.  Only
#: the few rows used by another app (cross-app) are grouped per row, inside the same aggregate.
#: Releases without an app count nowhere (as in the grouping by row, which counts ``r.app_id``).
_ROWS_BY_LINE = """, {g}u AS (
    -- One line per (row, user app) with its release count, from the release table itself.
    SELECT r.{pointer} AS row_id, r.app_id AS user_app, count(*) AS n
    FROM api_release r WHERE {where} AND r.app_id IS NOT NULL
    GROUP BY r.{pointer}, r.app_id
), {t}a AS (
    -- Per app a row names (every one has a latest()): whether the app exists, its latest() row and
    -- newest ``created``, its live release's row.
    SELECT n.app_id, p.uuid IS NOT NULL AS app_exists, n.uuid AS latest, n.created AS newest, l.{live} AS live
    FROM {t}n n LEFT JOIN api_app p ON p.uuid = n.app_id LEFT JOIN ra l ON l.app_id = n.app_id
), {g} AS (
    -- Each line with its row (full join: a row nobody uses is one line without a user, a line
    -- whose row is missing has no owner).  The rows are read from the table, not from a CTE: a
    -- CTE's columns have no statistics before PostgreSQL 17, and the join of the lines with one
    -- was estimated at 700M rows on 15 (sorts planned on disk).  A row's own facts come from one
    -- probe of its app (``{t}a``) and are computed below a fence (OFFSET 0), once per row: above
    -- it each reference to the JSON flag repeated the casts, over the JSON text carried up the join.
    -- ``regular``: the line stands for its row (its own app's line, or the empty line of an unused
    -- row) or belongs to a missing row.  The others are another app's lines (or any line of a row
    -- without an app): few.
    SELECT coalesce(w.uuid, u.row_id) AS uuid, w.uuid IS NOT NULL AS exists, w.app_id AS owner, w.created,
           w.is_latest, w.at_newest, w.includes_live, w.app_gone, w.future, w.bad_json,
           u.row_id IS NOT NULL AS used, u.user_app, coalesce(u.n, 0) AS n,
           coalesce(w.uuid IS NULL OR u.row_id IS NULL OR u.user_app = w.app_id, false) AS regular
    FROM (SELECT w.uuid, w.app_id, w.created, {bad} AS bad_json, {future_w} AS future,
                 coalesce(a.latest = w.uuid, false) AS is_latest, coalesce(a.newest = w.created, false) AS at_newest,
                 coalesce(a.live = w.uuid, false) AS includes_live, NOT coalesce(a.app_exists, true) AS app_gone
          FROM {table} w LEFT JOIN {t}a a ON a.app_id = w.app_id
          OFFSET 0) w
    FULL JOIN {g}u u ON u.row_id = w.uuid
), {g}x AS (
    -- One hash aggregate over the lines: every regular line falls in one group (key NULL) and is
    -- counted there; the other lines are grouped by their row (one group per cross-app row).
    SELECT CASE WHEN g.regular THEN NULL ELSE g.uuid END AS uuid,
           CASE WHEN g.regular THEN NULL ELSE g.owner END AS owner,
           -- facts of a line (the rare condition first: most lines test one column per count)
           count(*) FILTER (WHERE NOT g.used AND g.exists AND NOT {in_flight_g} AND g.is_latest) AS orphan_latest,
           count(*) FILTER (WHERE NOT g.used AND g.exists AND NOT {in_flight_g} AND NOT g.is_latest) AS orphan_other,
           coalesce(sum(g.n) FILTER (WHERE NOT g.exists), 0) AS missing_refs,
           coalesce(sum(g.n) FILTER (WHERE g.user_app <> g.owner), 0) AS foreign_n,
           count(*) FILTER (WHERE g.n > 1 AND g.user_app = g.owner) AS own_shared,
           -- facts of a row, on the line that stands for it
           count(*) FILTER (WHERE g.app_gone AND g.regular) AS app_gone,
           count(*) FILTER (WHERE g.future AND g.regular AND g.at_newest) AS future_newest,
           count(*) FILTER (WHERE g.future AND g.regular AND NOT g.at_newest) AS future_other,
           count(*) FILTER (WHERE g.bad_json AND g.regular AND {used_g}) AS bad_used,
           count(*) FILTER (WHERE g.bad_json AND g.regular AND NOT {used_g}) AS bad_other,
           -- a cross-app row's own facts (the same on each of its lines)
           bool_or(g.app_gone) FILTER (WHERE NOT g.regular) AS row_app_gone,
           bool_or(g.future) FILTER (WHERE NOT g.regular) AS row_future,
           bool_or(g.at_newest) FILTER (WHERE NOT g.regular) AS row_at_newest,
           bool_or(g.bad_json) FILTER (WHERE NOT g.regular) AS row_bad_json,
           bool_or({used_g}) FILTER (WHERE NOT g.regular) AS row_used
    FROM {g} g
    GROUP BY 1, 2
), {t}c AS (
    -- The regular group's counts, plus per cross-app row: its own app's releases (an index probe
    -- of the few rows), sharing across apps, and its row facts when no own line stood for it.
    SELECT coalesce(sum(x.orphan_latest), 0) AS orphan_latest, coalesce(sum(x.orphan_other), 0) AS orphan_other,
           coalesce(sum(x.missing_refs), 0) AS missing_refs, coalesce(sum(x.foreign_n), 0) AS foreign_refs,
           coalesce(sum(x.own_shared), 0) - count(*) FILTER (WHERE x.foreign_n > 0 AND x.own_n > 1) AS shared_own_count,
           count(*) FILTER (WHERE x.foreign_n > 0 AND x.own_n + x.foreign_n > 1) AS cross_all,
           count(*) FILTER (WHERE x.foreign_n > 0 AND x.own_n + x.foreign_n > 1
                            AND EXISTS (SELECT 1 FROM ra y WHERE y.{live} = x.uuid AND y.app_id <> x.owner)) AS cross_live,
           coalesce(sum(x.app_gone), 0) + count(*) FILTER (WHERE x.own_n = 0 AND x.row_app_gone) AS app_gone,
           coalesce(sum(x.future_newest), 0) + count(*) FILTER (WHERE x.own_n = 0 AND x.row_future AND x.row_at_newest)
               AS future_newest,
           coalesce(sum(x.future_other), 0)
             + count(*) FILTER (WHERE x.own_n = 0 AND x.row_future AND NOT x.row_at_newest) AS future_other,
           coalesce(sum(x.bad_used), 0) + count(*) FILTER (WHERE x.own_n = 0 AND x.row_bad_json AND x.row_used)
               AS bad_used,
           coalesce(sum(x.bad_other), 0) + count(*) FILTER (WHERE x.own_n = 0 AND x.row_bad_json AND NOT x.row_used)
               AS bad_other
    FROM (SELECT x.*, CASE WHEN x.uuid IS NOT NULL THEN
                          (SELECT count(*) FROM api_release r WHERE r.{pointer} = x.uuid AND r.app_id = x.owner)
                      END AS own_n
          FROM {g}x x) x
)"""

_SETTINGS_CTE = """, settings_counted AS (
    SELECT count(*) FILTER (WHERE s.bad AND s.is_latest) AS bad_used,
           count(*) FILTER (WHERE s.bad AND NOT s.is_latest) AS bad_other
    FROM (SELECT {set_bad} AS bad, created = max(created) OVER (PARTITION BY app_id) AS is_latest
          FROM api_appsettings) s
)"""
_SETTINGS_VALUES = """,
        ('invalid-json', 'critical', 'api_appsettings', s.bad_used),
        ('invalid-json', 'warning', 'api_appsettings', s.bad_other)"""

#: The releases behind the reference counts, counted once each (run only when a release may
#: have two missing or two foreign parents: cheap on a healthy database, where it never runs).
_DANGLING_RELEASES = """
SELECT count(*) FROM api_release r
WHERE NOT EXISTS (SELECT 1 FROM api_app p WHERE p.uuid = r.app_id)
   OR NOT EXISTS (SELECT 1 FROM api_config c WHERE c.uuid = r.config_id)
   OR (r.build_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM api_build b WHERE b.uuid = r.build_id))"""
_FOREIGN_RELEASES = """
SELECT count(*) FROM api_release r
LEFT JOIN api_config c ON c.uuid = r.config_id
LEFT JOIN api_build b ON b.uuid = r.build_id
WHERE c.app_id <> r.app_id OR b.app_id <> r.app_id"""


@dataclass
class FusedCounts:
    """What the fused floor counted: findings per (check, severity), and per (check, reason)."""

    by_severity: Counter = field(default_factory=Counter)
    #: shared-*: the hazard class (``adjacent``, ``rollback-reuse`` ...); others: the part counted.
    by_reason: Counter = field(default_factory=Counter)
    #: Statements run, a failed one included (1 on a database without the damage that needs a
    #: second look).
    statements: int = 0
    #: invalid-json before PostgreSQL 16: whether the optimistic cast failed (offenders looked up).
    json_fallback: bool = False


def _bad_json(columns: tuple[str, ...], json_check: JsonCheck, alias: str) -> str:
    """SQL: one of ``columns`` (of ``alias``) holds a value other than ``'{}'`` that is not a JSON object."""
    tests = []
    for column in columns:
        value = f'{alias}."{column}"::text'
        if json_check == "cast":
            # Every candidate is cast on the server: an unparsable value fails the statement.
            test = f"json_typeof({value}::json) <> 'object'"
        else:
            # Parsed once: a valid value is an object exactly when its first character is '{'.
            test = (f"NOT (pg_input_is_valid({value}, 'json')"
                    f" AND left(ltrim({value}, E' \\t\\n\\r'), 1) = '{{')")
        tests.append(f"({value} <> '{{}}' AND {test})")
    return "(" + " OR ".join(tests) + ")" if tests else "false"


def _by_ids(table: str, alias: str) -> str:
    """SQL: the row is one of the offenders found after a failed cast (a parameter per table)."""
    return f"({alias}.uuid = ANY(%(bad_{table})s::uuid[]))"


def statement(generation: Generation, json_check: JsonCheck = "cast", offenders: bool = False,
              reasons: bool = False) -> sql.SQL:
    """The fused statement for ``generation``, validating JSON with ``json_check``;
    ``offenders`` takes the rows with bad JSON as parameters ``bad_<table>`` instead.

    ``reasons``: count the rows shared inside an app per hazard class (as the listing of every
    finding tells them apart), which needs every release's position in the joins; without it they
    are counted as one ``info`` class, as the default report counts them (the floor it is held to)."""
    def cols(table: str) -> tuple[str, ...]:
        present = generation.columns.get(table, ())
        return tuple(c for c in JSON_COLUMNS[table] if c in present)

    def bad(table: str, alias: str) -> str:
        if offenders:
            return _by_ids(table, alias)
        return _bad_json(cols(table), json_check, alias)

    settings = "api_appsettings" in generation.columns and bool(cols("api_appsettings"))
    migration = generation.migration
    failed = "r.failed" if generation.has_failed else "false"
    shared_counts = _SHARED_CLASSES if reasons else _SHARED_OWN
    shared_values = _SHARED_CLASS_VALUES if reasons else _SHARED_OWN_VALUES
    text = _STATEMENT.format(
        rows_latest="".join((_ROWS_LATEST if reasons else _LATEST_BY_APP).format(t=t, table=table, bad=bad(table, "c"))
                            for t, table in (("c", "api_config"), ("b", "api_build"))),
        use_counted=_rows_by_row(failed, shared_counts) if reasons else _rows_by_line(bad("api_config", "w"), bad("api_build", "w")),
        shared_config_info=shared_values.format(kind="config", t="c"),
        shared_build_info=shared_values.format(kind="build", t="b"),
        failed=failed,
        future_r=_FUTURE.format(c="r.created"), in_flight_a=_IN_FLIGHT.format(c="a.created"),
        in_flight_l=_IN_FLIGHT.format(c="created"),
        app_bad=bad("api_app", "a"),
        settings_cte=_SETTINGS_CTE.format(set_bad=bad("api_appsettings", "api_appsettings")) if settings else "",
        settings_from=", settings_counted s" if settings else "",
        settings_values=_SETTINGS_VALUES if settings else "",
        cfg_latest_sev="'critical'" if migration <= CONFIG_SET_MERGES_OVER_LATEST_UNTIL else "'warning'",
        bld_latest_sev="'critical'" if migration <= BUILD_DIFFS_AGAINST_LATEST_UNTIL else "'info'",
        bld_tie_sev="'warning'" if migration <= BUILD_DIFFS_AGAINST_LATEST_UNTIL else "'info'",
        bld_future_sev="'critical'" if migration <= BUILD_DIFFS_AGAINST_LATEST_UNTIL else "'warning'",
    )
    # Only constant table, column and pass names are substituted: no input reaches this SQL.
    return sql.SQL(text)  # type: ignore[arg-type]


def _rows_by_row(failed: str, shared_counts: str) -> str:
    """``reasons``: the configs and builds each joined with every release pointing at it, grouped by row."""
    in_flight, future = _IN_FLIGHT.format(c="g.created"), _FUTURE.format(c="g.created")
    return _ROWS_BY_ROW.format(
        use_groups="".join(_USE_BY_RELEASE.format(g=g, w=w, pointer=pointer, where=where, failed=failed,
                                                  own_span=_OWN_SPAN)
                           # A release without a config is a dangling reference; one without a build is not.
                           for g, w, pointer, where in (("cg", "cw", "config_id", "true"),
                                                        ("bg", "bw", "build_id", "r.build_id IS NOT NULL"))),
        flags_c=_ROW_FLAGS.format(f="cf", g="cg", live="live_config", contiguous="g.own_span = g.own_ok"),
        flags_b=_ROW_FLAGS.format(f="bf", g="bg", live="live_build", contiguous="g.own_span = g.own_ok"),
        rows_counted_c=_ROWS_COUNTED.format(in_flight_g=in_flight, future_g=future,
                                            used="(g.includes_live OR g.is_latest)", shared_counts=shared_counts),
        rows_counted_b=_ROWS_COUNTED.format(in_flight_g=in_flight, future_g=future, used="g.includes_live",
                                            shared_counts=shared_counts))


def _rows_by_line(config_bad: str, build_bad: str) -> str:
    """The default report's counts: the configs and builds joined with their (row, app) lines, counted
    by line; ``*_bad``: a row's JSON flag (alias ``w``)."""
    return "".join(_ROWS_BY_LINE.format(
        g=g, t=t, table=table, bad=bad, pointer=pointer, where=where, live=live,
        in_flight_g=_IN_FLIGHT.format(c="g.created"), future_w=_FUTURE.format(c="w.created"),
        used_g=used.format(a="g"))
        # A release without a config is a dangling reference; one without a build is not.  A config
        # matters now when the live release uses it or it is latest() (config:set merges over it).
        for g, t, table, bad, pointer, where, live, used in (
            ("cg", "c", "api_config", config_bad, "config_id", "true", "live_config", "({a}.includes_live OR {a}.is_latest)"),
            ("bg", "b", "api_build", build_bad, "build_id", "r.build_id IS NOT NULL", "live_build", "{a}.includes_live")))


def _catalogue_counts(conn: psycopg.Connection, generation: Generation, legacy: bool) -> Counter:
    """``missing-constraint`` per severity, by the check's own catalogue query."""
    from auditor.audit.runner import Scope, scope_fragments
    from checks import CATALOGUE

    check = CATALOGUE["missing-constraint"]
    query = sql.SQL("SELECT severity, count(*) FROM ({}) AS m GROUP BY severity").format(
        check.sql_for(generation, legacy).compose(**scope_fragments(Scope())))
    return Counter({("missing-constraint", sev): n for sev, n in conn.execute(query, {}).fetchall()})


#: A uuid range with at most this many rows is shipped and parsed here instead of split again.
_LEAF_ROWS = 2000
_UUID_SPACE = 1 << 128


def _offenders(conn: psycopg.Connection, generation: Generation) -> dict[str, list[str]]:
    """The rows whose JSON does not parse or is not an object, per table (parameters ``bad_<table>``).

    Each table is probed with the optimistic cast inside a savepoint; a range whose cast fails
    is split in two (by uuid value, uniform for the controller's random uuids) until it holds
    at most :data:`_LEAF_ROWS` rows, which are parsed here as the audit parses them before 16.
    One offender in 490k configs costs ~17 probes and ~2k rows shipped (no function is created:
    this works on a hot standby).
    """
    found: dict[str, list[str]] = {}
    for table, wanted in JSON_COLUMNS.items():
        present = tuple(c for c in wanted if c in generation.columns.get(table, ()))
        found[f"bad_{table}"] = _bisect(conn, table, present, 0, _UUID_SPACE) if present else []
    return found


def _bisect(conn: psycopg.Connection, table: str, columns: tuple[str, ...], lo: int, hi: int) -> list[str]:
    """Offending uuids of ``table`` in the uuid range ``[lo, hi)``."""
    where = sql.SQL("t.uuid >= {} AND ({} OR t.uuid < {})").format(
        sql.Literal(str(uuid_from_int(lo))), sql.Literal(hi >= _UUID_SPACE),
        sql.Literal(str(uuid_from_int(min(hi, _UUID_SPACE - 1)))))
    bad = sql.SQL(_bad_json(columns, "cast", "t"))  # type: ignore[arg-type]
    try:
        with conn.transaction():
            rows = conn.execute(sql.SQL("SELECT t.uuid::text FROM {} t WHERE {} AND {}").format(
                sql.Identifier(table), where, bad)).fetchall()
        return [r[0] for r in rows]
    except psycopg.errors.InvalidTextRepresentation:
        pass
    (count,) = conn.execute(sql.SQL("SELECT count(*) FROM {} t WHERE {}").format(sql.Identifier(table), where)).fetchone()
    if count <= _LEAF_ROWS or hi - lo <= 1:
        values = sql.SQL(", ").join(sql.SQL("t.{}::text").format(sql.Identifier(c)) for c in columns)
        rows = conn.execute(sql.SQL("SELECT t.uuid::text, {} FROM {} t WHERE {}").format(
            values, sql.Identifier(table), where)).fetchall()
        return [r[0] for r in rows if any(v is not None and v != "{}" and json_problem(v) for v in r[1:])]
    mid = (lo + hi) // 2
    return _bisect(conn, table, columns, lo, mid) + _bisect(conn, table, columns, mid, hi)


def uuid_from_int(value: int) -> uuid.UUID:
    return uuid.UUID(int=value)


def run_fused(conn: psycopg.Connection, *, json_check: JsonCheck = "cast",
              grace_seconds: float = DEFAULT_GRACE_SECONDS, skew_seconds: float = DEFAULT_SKEW_SECONDS,
              include_catalogue: bool = True, reasons: bool = False) -> FusedCounts:
    """Count every finding in one snapshot (``conn`` must not be in a transaction); ``reasons``:
    the shared rows inside an app per hazard class too (see :func:`statement`).

    Runs as the audit does (READ ONLY, REPEATABLE READ, the audit's ``work_mem``), with
    ``enable_sort`` off: the planner expects a group per joined row after the full joins and
    would sort 1M rows to disk where hashing ~490k groups is faster (250 ms at 1M).
    """
    generation = detect(conn)
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.rollback()
    legacy = conn.info.server_version < 160000
    if json_check == "pg_input_is_valid" and legacy:
        raise ValueError("pg_input_is_valid needs PostgreSQL 16 or later")
    result = FusedCounts()
    params: dict[str, object] = {"grace_seconds": grace_seconds, "skew_seconds": skew_seconds}
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    with conn.transaction():
        _session(conn, local=True)
        try:
            result.statements += 1
            with conn.transaction():  # a savepoint: the optimistic cast may fail
                rows = conn.execute(statement(generation, json_check, reasons=reasons), params).fetchall()
        except psycopg.errors.InvalidTextRepresentation:
            result.json_fallback = True
            params.update(_offenders(conn, generation))
            rows = conn.execute(statement(generation, json_check, offenders=True, reasons=reasons),
                                params).fetchall()
            result.statements += 1
        for check_id, severity, reason, n in rows:
            result.by_severity[(check_id, severity)] += int(n)
            result.by_reason[(check_id, reason)] += int(n)
        _exact_release_counts(conn, result)
        if include_catalogue:
            result.by_severity.update(_catalogue_counts(conn, generation, legacy))
    return result


def _session(conn: psycopg.Connection, local: bool) -> None:
    """The audit's ``work_mem``, hash aggregation where the planner would sort (see :func:`run_fused`), and
    no parallel workers: the floor is measured by its backend's CPU, which a worker's share would escape
    (the audit's statement launches none; the floor's ``latest()`` scans did, 4 workers at 1M releases),
    and JIT off for the transaction, as in the audit's session (``JIT_OFF``: compiling costs seconds where
    the server has LLVM, and ``enable_sort = off`` inflates the estimates past ``jit_above_cost``)."""
    conn.execute("SELECT set_config('work_mem', %s, %s), set_config('enable_sort', 'off', %s),"
                 # Read from pg_settings, as JIT_OFF: a server before 9.6 has no parallel query.
                 " (SELECT set_config(name, '0', %s) FROM pg_settings WHERE name = 'max_parallel_workers_per_gather'), "
                 + JIT_OFF,
                 (DEFAULT_WORK_MEM, local, local, local))


def _exact_release_counts(conn: psycopg.Connection, result: FusedCounts) -> None:
    """Releases with two missing (or two foreign) parents are one finding: recount when needed."""
    reasons = result.by_reason
    for check, parts, query in (
        ("dangling-reference", ("release:app", "release:config", "release:build"), _DANGLING_RELEASES),
        ("cross-app-reference", ("config", "build"), _FOREIGN_RELEASES),
    ):
        if sum(1 for p in parts if reasons[(check, p)]) < 2:
            continue
        (releases,) = conn.execute(query).fetchone() or (0,)
        result.by_severity[(check, "critical")] += releases - sum(reasons[(check, p)] for p in parts)
        result.statements += 1


def tool_counts(dsn: str, server_version: int | None = None,
                grace_seconds: float = DEFAULT_GRACE_SECONDS) -> tuple[Counter, Counter]:
    """The audit's own findings, run in-process: counts per (check, severity) as the default report
    counts them (listed from ``warning`` up, the rest counted by the server) and, for the shared-*
    checks, per (check, evidence reason) (of every finding listed: the reason is in the evidence)."""
    from auditor.audit import open_audit
    from auditor.audit.listing import Listing
    from auditor.core.settings import Settings

    by_severity: Counter = Counter()
    reasons: Counter = Counter()
    with open_audit(Settings(dsn=dsn, grace_seconds=grace_seconds), server_version=server_version) as run:
        hidden: list = []
        for finding in run.findings(listing=Listing("warning"), hidden=hidden):
            by_severity[(finding.check, finding.severity)] += 1
        for counted in hidden:
            by_severity[(counted.check, counted.severity)] += counted.findings
        shared = [c for c in run.checks if c.id.startswith("shared-")]
        for finding in run.findings(checks=shared):
            reasons[(finding.check, finding.evidence.get("reason"))] += 1
    return by_severity, reasons


def shared_reasons(counts: FusedCounts) -> Counter:
    """The fused floor's shared-* counts per hazard class (comparable with :func:`tool_counts` when
    counted with ``reasons``)."""
    return Counter({key: n for key, n in counts.by_reason.items() if key[0].startswith("shared-") and n})


def time_fused(dsn: str, repeat: int = 3, json_check: JsonCheck = "cast") -> tuple[float, FusedCounts]:
    """The fastest of ``repeat`` runs of the fused floor (seconds, on one connection), and its counts."""
    best = float("inf")
    counts = FusedCounts()
    with psycopg.connect(dsn) as conn:
        for _ in range(max(1, repeat)):
            began = time.perf_counter()
            counts = run_fused(conn, json_check=json_check)
            best = min(best, time.perf_counter() - began)
    return best, counts


def explain(dsn: str, json_check: JsonCheck = "cast") -> str:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of the fused statement, as text."""
    with psycopg.connect(dsn) as conn:
        generation = detect(conn)
        conn.rollback()
        _session(conn, local=False)
        query = sql.SQL("EXPLAIN (ANALYZE, BUFFERS) {}").format(statement(generation, json_check))
        rows = conn.execute(query, {"grace_seconds": DEFAULT_GRACE_SECONDS,
                                    "skew_seconds": DEFAULT_SKEW_SECONDS}).fetchall()
        return "\n".join(r[0] for r in rows)


def format_counts(counts: Mapping[tuple[str, str], int]) -> str:
    """One line per (check, severity)."""
    return "\n".join(f"{check:24} {severity:9} {n:>9,}" for (check, severity), n in sorted(counts.items()) if n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fused", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--json-check", choices=("cast", "pg_input_is_valid"), default="cast",
                        help="how JSON is validated (default: cast on the server, offenders looked up on failure)")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN (ANALYZE, BUFFERS) of the statement")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    if args.explain:
        print(explain(args.dsn, args.json_check))
        return 0
    seconds, counts = time_fused(args.dsn, args.repeat, args.json_check)
    print(format_counts(counts.by_severity))
    print(f"{sum(counts.by_severity.values()):,} findings counted in {seconds:.3f} s"
          f" ({counts.statements} statement(s){', JSON offenders looked up' if counts.json_fallback else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
