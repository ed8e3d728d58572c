"""The passes over the controller tables that checks share, as named CTEs.

Every check reads these instead of the base tables, so one audit scans each table once
and groups ``api_release`` by ``config_id`` and by ``build_id`` once, whatever the number
of checks (PostgreSQL materialises a CTE that several checks reference).

Definitions used throughout (documented in the README):

* **live release** of an app: its highest-version release that is not failed; on the old
  generation (no ``api_release.failed``, before 0020) simply its highest-version release.
* **latest config / build**: the app's row with the greatest ``created``: what the
  controller's ``config_set.latest()`` / ``build_set.latest()`` return
  (``ORDER BY created DESC LIMIT 1``; on a tie PostgreSQL may return either row).
* **in flight**: a config or build younger than the grace period: the controller inserts
  it before its release, so it is not (yet) an orphan.

A pass body may use ``{scope}`` (a predicate on an unqualified ``app_id`` column) and
``{app_scope}`` (on ``api_app.uuid``); a literal brace in SQL is written ``{{`` / ``}}``.
Named parameters: ``%(grace_seconds)s`` and ``%(app_uuids)s``; a literal percent sign (as in
``format()``) is written ``%%``.
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor.detect import Generation


@dataclass(frozen=True)
class Pass:
    """A named CTE and the passes it reads."""

    name: str
    body: str
    needs: tuple[str, ...] = ()


#: Releases with their ``failed`` flag; before migration 0020 no release is failed.
_RELEASES_WITH_FAILED = """
    SELECT r.uuid, r.app_id, r.version, r.created, r.config_id, r.build_id, r.failed
    FROM api_release r WHERE {scope}"""
_RELEASES_NEVER_FAILED = """
    SELECT r.uuid, r.app_id, r.version, r.created, r.config_id, r.build_id, false AS failed
    FROM api_release r WHERE {scope}"""


#: How many releases use each config (build): the one GROUP BY every sharing/orphan check reads.
#: Filled in below with constant column names only.
_USE = """
    SELECT {pointer} AS uuid, count(*) AS releases,
           sum(CASE WHEN failed THEN 0 ELSE 1 END) AS ok_releases,
           min(version) AS first_version, max(version) AS last_version
    FROM rel WHERE {where} GROUP BY {pointer}"""

#: Each app's newest config (build): what ``latest()`` returns, and how many rows tie with it.
_LATEST = """
    SELECT app_id, uuid, created, ties FROM (
        SELECT app_id, uuid, created,
               row_number() OVER (PARTITION BY app_id ORDER BY created DESC, uuid) AS rn,
               count(*) OVER (PARTITION BY app_id, created) AS ties
        FROM {rows}) s
    WHERE rn = 1"""


def passes_for(generation: Generation) -> dict[str, Pass]:
    """Every shared pass, written for this generation's columns."""
    defs = [
        Pass("apps", "SELECT uuid, id AS name, created FROM api_app WHERE {app_scope}"),
        Pass("rel", _RELEASES_WITH_FAILED if generation.has_failed else _RELEASES_NEVER_FAILED),
        Pass("cfg", "SELECT uuid, app_id, created FROM api_config WHERE {scope}"),
        Pass("bld", "SELECT uuid, app_id, created FROM api_build WHERE {scope}"),
        Pass(
            "live",
            """
            SELECT DISTINCT ON (app_id) app_id, uuid, version, created, config_id, build_id
            FROM rel WHERE NOT failed
            ORDER BY app_id, version DESC""",
            ("rel",),
        ),
        Pass("config_use", _USE.format(pointer="config_id", where="true"), ("rel",)),
        Pass("build_use", _USE.format(pointer="build_id", where="build_id IS NOT NULL"), ("rel",)),
        Pass("latest_cfg", _LATEST.format(rows="cfg"), ("cfg",)),
        Pass("latest_bld", _LATEST.format(rows="bld"), ("bld",)),
        Pass(
            # Each release's position in its app's history: ``pos`` (row_number in version
            # order; old Deis may reuse versions, so positions, not raw numbers), ``ok_through``
            # (non-failed releases up to and including it), the previous version, and the
            # app's release count and maximum version.
            "rel_pos",
            """
            SELECT uuid, app_id, version, created, failed, config_id, build_id,
                   row_number() OVER w AS pos,
                   sum(CASE WHEN failed THEN 0 ELSE 1 END) OVER w AS ok_through,
                   lag(version) OVER w AS prev_version,
                   count(*) OVER (PARTITION BY app_id) AS app_releases,
                   max(version) OVER (PARTITION BY app_id) AS app_max_version
            FROM rel
            WINDOW w AS (PARTITION BY app_id ORDER BY version, created, uuid)""",
            ("rel",),
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
