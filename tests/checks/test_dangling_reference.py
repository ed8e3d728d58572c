"""dangling-reference: references to rows that are gone (constraints dropped or bypassed)."""

from __future__ import annotations

import uuid

from psycopg import sql

from tests.helpers import audit

CHECK = "dangling-reference"


def _fk_name(db, table: str, column: str) -> str:
    return db.scalar(
        "SELECT k.conname FROM pg_constraint k JOIN pg_attribute a ON a.attrelid = k.conrelid "
        "AND a.attnum = k.conkey[1] WHERE k.contype = 'f' AND k.conrelid = %s::regclass AND a.attname = %s",
        (table, column),
    )


def _as_replica(db, statement: str, params: tuple) -> None:
    """Run ``statement`` with FK triggers off, the way pg_restore --disable-triggers does."""
    with db.conn.transaction():
        db.conn.execute("SET LOCAL session_replication_role = replica")
        db.conn.execute(statement, params)


def _web(db, ctl=None):
    web = (ctl or db.controller()).create_app("web")
    web.push()
    web.config_set(A="1")
    return web


def test_config_deleted_with_replication_role_replica(db):
    web = _web(db)
    live = web.current()
    _as_replica(db, "DELETE FROM api_config WHERE uuid = %s", (live.config,))
    (finding,) = audit(db, [CHECK])
    assert (finding.severity, finding.app_name, finding.object_table, finding.object_id) == (
        "critical", "web", "api_release", live.uuid)
    assert finding.related == [{"table": "api_config", "uuid": live.config, "column": "config_id", "exists": False}]
    assert finding.evidence["is_live"] is True
    assert finding.message == f"release v{live.version} points at config {live.config}, which does not exist"


def test_build_deleted_with_triggers_disabled_hits_every_release_sharing_it(db):
    web = _web(db)
    build = web.release(2).build  # shared by v2 (push) and v3 (config:set)
    db.conn.execute("ALTER TABLE api_build DISABLE TRIGGER ALL")
    db.conn.execute("DELETE FROM api_build WHERE uuid = %s", (build,))
    db.conn.execute("ALTER TABLE api_build ENABLE TRIGGER ALL")
    found = audit(db, [CHECK])
    assert sorted(f.evidence["version"] for f in found) == [2, 3]
    assert all(f.related == [{"table": "api_build", "uuid": build, "column": "build_id", "exists": False}]
               for f in found)


def test_dropped_fk_then_release_points_nowhere(db):
    web = _web(db)
    db.conn.execute(sql.SQL("ALTER TABLE api_release DROP CONSTRAINT {}").format(
        sql.Identifier(_fk_name(db, "api_release", "config_id"))))
    ghost_config = str(uuid.uuid4())
    db.conn.execute("UPDATE api_release SET config_id = %s WHERE version = 1 AND app_id = %s", (ghost_config, web.uuid))
    (finding,) = audit(db, [CHECK])
    assert finding.evidence["version"] == 1 and finding.evidence["is_live"] is False
    assert finding.related[0]["uuid"] == ghost_config


def test_app_deleted_under_its_rows(db):
    ctl = db.controller()
    web = _web(db, ctl)
    ctl.create_app("api").push()
    _as_replica(db, "DELETE FROM api_app WHERE uuid = %s", (web.uuid,))
    found = audit(db, [CHECK])
    by_table: dict[str, list] = {}
    for f in found:
        by_table.setdefault(f.object_table, []).append(f)
    assert len(by_table["api_release"]) == 3  # v1..v3, each missing its app
    assert len(by_table["api_config"]) == 2 and len(by_table["api_build"]) == 1
    assert {f.app_uuid for f in found} == {web.uuid} and {f.app_name for f in found} == {None}
    config_rows = {f.object_id: f.evidence["releases"] for f in by_table["api_config"]}
    assert sorted(config_rows.values()) == [1, 2]  # v1+v2 share the first config, v3 has its own
    release = by_table["api_release"][0]
    assert release.related == [{"table": "api_app", "uuid": web.uuid, "column": "app_id", "exists": False}]


def test_several_missing_parents_are_one_finding(db):
    web = _web(db)
    live = web.current()
    _as_replica(db, "DELETE FROM api_config WHERE uuid = %s", (live.config,))
    _as_replica(db, "DELETE FROM api_build WHERE uuid = %s", (live.build,))
    findings = [f for f in audit(db, [CHECK]) if f.object_id == live.uuid]
    (finding,) = findings
    assert [r["table"] for r in finding.related] == ["api_config", "api_build"]
    assert finding.message.endswith(f"config {live.config} and build {live.build}, which do not exist")


def test_release_without_build_is_not_dangling(db):
    web = db.controller().create_app("web")  # v1 has build_id NULL
    web.config_set(A="1")
    assert audit(db, [CHECK]) == []


def test_healthy_history(db):
    ctl = db.controller()
    for name in ("web", "api"):
        app = ctl.create_app(name)
        app.push()
        app.config_set(A="1")
        app.failed_push()
        app.rollback(2)
    assert audit(db, [CHECK]) == []


def test_app_restriction(db):
    ctl = db.controller()
    web = _web(db, ctl)
    api = ctl.create_app("api")
    api.push()
    _as_replica(db, "DELETE FROM api_config WHERE uuid = %s", (web.current().config,))
    _as_replica(db, "DELETE FROM api_build WHERE uuid = %s", (api.current().build,))
    assert {f.app_name for f in audit(db, [CHECK])} == {"web", "api"}
    assert [f.app_name for f in audit(db, [CHECK], apps=["api"])] == ["api"]
