"""The order of a finding's ``related`` releases is a function of the rows, not of the plan.

Two releases tie on ``(version, created)`` when versions repeat without ``UNIQUE(app_id, version)``
and a script or restore dates them alike.  Each ``related`` array orders its releases by the
check's keys and then by the release's uuid, so the report is one byte sequence for one
database state: moving a tied release to another place in the heap (a dump and restore, a
``VACUUM FULL``, a deleted and re-inserted row) changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from auditor.audit.blast import row_blast_radius
from auditor.core.detect import detect
from tests.helpers import audit, by_check


def tied_story(db):
    """web: v1, v2 (push), v3 (config:set) and a second v3 dated exactly as the first (two deploys
    raced without the unique constraint); api's v2 points at web's v3 config (a hand "fix")."""
    ctl = db.controller()
    ctl.drop_release_unique()
    web = ctl.create_app("web")
    web.push()
    v3 = web.config_set(A="1")
    web.duplicate_version(3, at=v3.created)
    api = ctl.create_app("api")
    api.push()
    api.point_at(2, web, "config")
    return ctl, web, v3


def move_to_heap_end(db, release_uuid: str) -> None:
    """Delete the release and insert it again, as it was: same row, another place in the heap and
    in every index (what a restore or VACUUM FULL can do to the rows' physical order)."""
    db.conn.execute("WITH gone AS (DELETE FROM api_release WHERE uuid = %s RETURNING *) "
                    "INSERT INTO api_release SELECT * FROM gone", (release_uuid,))


def _key_order(items: list[dict], keys: tuple[str, ...], descending: bool = False) -> list[dict]:
    return sorted(items, key=lambda item: tuple(str(item[k]) if k == "uuid" else item[k] for k in keys),
                  reverse=descending)


def _related(findings, check: str, object_id: str) -> list[dict]:
    (finding,) = [f for f in by_check(findings, check) if f.object_id == object_id]
    return list(finding.related)


def assert_one_order(db, web, listed: Callable[[], list[dict]], keys: tuple[str, ...], descending: bool = False) -> None:
    """``listed()`` (web's releases as a report lists them) is in ``keys`` order with the two tied v3
    releases lying in the heap in uuid order and then in the reverse order (a plan reads them in heap
    order or, through a hash table, in the reverse: either way one of the two is out of order unless
    the query orders ties itself), and lists the tie the same way both times."""
    tied = sorted(str(r[0]) for r in db.conn.execute(
        "SELECT uuid FROM api_release WHERE app_id = %s AND version = 3", (web.uuid,)).fetchall())
    assert len(tied) == 2
    seen = []
    for physical in (tied, tied[::-1]):
        for release in physical:
            move_to_heap_end(db, release)
        related = listed()
        assert related == _key_order(related, keys, descending)
        seen.append([str(r["uuid"]) for r in related if r["version"] == 3])
    assert seen[0] == seen[1]


def test_cross_app_sharing_lists_tied_releases_by_uuid_wherever_the_rows_lie(hephy_db):
    ctl, web, v3 = tied_story(hephy_db)
    assert_one_order(hephy_db, web, lambda: [r for r in _related(audit(hephy_db, ["shared-config"]), "shared-config",
                                                                 v3.config) if r.get("app") == "web"],
                     ("version", "created", "uuid"))


def test_the_latest_rows_users_list_tied_releases_by_uuid_wherever_the_rows_lie(hephy_db):
    ctl, web, v3 = tied_story(hephy_db)
    web.rollback(2)  # v4 reuses v2's config: config_set.latest() (v3's) is not the live release's
    assert_one_order(hephy_db, web, lambda: _related(audit(hephy_db, ["latest-config-not-live"], apps=["web"]),
                                                     "latest-config-not-live", v3.config), ("version", "created", "uuid"))


def test_release_order_lists_tied_newest_releases_by_uuid_wherever_the_rows_lie(hephy_db):
    ctl, web, v3 = tied_story(hephy_db)
    # newest first, then highest version, then uuid (descending, as the live release is picked); the
    # whole database's window and the one-app window (--app) feed the aggregate in opposite orders
    for scope in ([], ["web"]):
        def listed(scope: list[str] = scope) -> list[dict]:
            return _related(audit(hephy_db, ["release-order"], apps=scope), "release-order", web.uuid)

        assert_one_order(hephy_db, web, listed, ("created", "version", "uuid"), descending=True)


def test_blast_radius_lists_tied_releases_by_uuid_wherever_the_rows_lie(hephy_db):
    ctl, web, v3 = tied_story(hephy_db)

    def listed() -> list[dict]:
        with psycopg.connect(hephy_db.dsn) as conn:
            radius = row_blast_radius(conn, detect(conn), "config", v3.config)
        assert [r.app for r in radius.releases] == sorted(r.app or "" for r in radius.releases)
        return [{"uuid": r.uuid, "version": r.version} for r in radius.releases if r.app == "web"]

    assert_one_order(hephy_db, web, listed, ("version", "uuid"))
