"""missing-constraint: the foreign keys and uniques the controller relies on, from pg_catalog."""

from __future__ import annotations

import uuid

from psycopg import conninfo as pg_conninfo
from psycopg import sql

from auditor.audit import open_audit
from auditor.core.settings import Selection, Settings
from tests.helpers import audit

CHECK = "missing-constraint"
RELEASE_CONFIG_FK = "api_release(config_id) -> api_config(uuid)"


def _constraint(db, table: str, contype: str, columns: list[str]) -> str:
    """The name of the constraint of ``contype`` on exactly ``columns`` of ``table``."""
    return db.scalar(
        "SELECT k.conname FROM pg_constraint k WHERE k.conrelid = %s::regclass AND k.contype = %s "
        "AND ARRAY(SELECT attname::text FROM pg_attribute a JOIN unnest(k.conkey) n ON a.attnum = n "
        "WHERE a.attrelid = k.conrelid ORDER BY attname) = %s",
        (table, contype, sorted(columns)),
    )


def _alter(db, table: str, action: str, name: str) -> None:
    db.conn.execute(sql.SQL("ALTER TABLE {} {} {}").format(sql.Identifier(table), sql.SQL(action),
                                                            sql.Identifier(name)))


def _found(db) -> dict[str, tuple[str, list[str]]]:
    return {f.object_id: (f.severity, f.evidence["problems"]) for f in audit(db, [CHECK])}


def test_controller_schema_has_every_constraint(db):
    ctl = db.controller()
    ctl.create_app("web").push()
    assert audit(db, [CHECK]) == []


def test_dropped_release_fk_is_critical(db):
    _alter(db, "api_release", "DROP CONSTRAINT", _constraint(db, "api_release", "f", ["config_id"]))
    (finding,) = audit(db, [CHECK])
    assert (finding.severity, finding.object_table, finding.object_id) == ("critical", "api_release", RELEASE_CONFIG_FK)
    assert finding.app_name is None and finding.evidence["problems"] == ["absent"]
    assert finding.message.startswith(f"foreign key {RELEASE_CONFIG_FK} is missing: ")
    assert finding.object_json() == {"table": "api_release", "name": RELEASE_CONFIG_FK}


def test_dropped_config_and_owner_fks_are_warnings(db):
    _alter(db, "api_config", "DROP CONSTRAINT", _constraint(db, "api_config", "f", ["app_id"]))
    _alter(db, "api_build", "DROP CONSTRAINT", _constraint(db, "api_build", "f", ["owner_id"]))
    assert _found(db) == {
        "api_config(app_id) -> api_app(uuid)": ("warning", ["absent"]),
        "api_build(owner_id) -> auth_user(id)": ("warning", ["absent"]),
    }


def test_not_valid_fk(db):
    _alter(db, "api_release", "DROP CONSTRAINT", _constraint(db, "api_release", "f", ["build_id"]))
    db.conn.execute("ALTER TABLE api_release ADD CONSTRAINT build_fk_restored FOREIGN KEY (build_id) "
                    "REFERENCES api_build (uuid) DEFERRABLE INITIALLY DEFERRED NOT VALID")
    (finding,) = audit(db, [CHECK])
    assert finding.object_id == "api_release(build_id) -> api_build(uuid)"
    assert (finding.severity, finding.evidence["problems"]) == ("critical", ["NOT VALID"])
    assert finding.evidence["constraint"] == "build_fk_restored"
    db.conn.execute("ALTER TABLE api_release VALIDATE CONSTRAINT build_fk_restored")
    assert audit(db, [CHECK]) == []


def test_fk_under_another_name_is_recognised(db):
    _alter(db, "api_release", "DROP CONSTRAINT", _constraint(db, "api_release", "f", ["app_id"]))
    db.conn.execute("ALTER TABLE api_release ADD CONSTRAINT api_release_app_id_fk FOREIGN KEY (app_id) "
                    "REFERENCES api_app (uuid) DEFERRABLE INITIALLY DEFERRED")
    assert audit(db, [CHECK]) == []


def test_non_deferrable_fk_is_info(db):
    name = _constraint(db, "api_release", "f", ["config_id"])
    db.conn.execute(sql.SQL("ALTER TABLE api_release ALTER CONSTRAINT {} NOT DEFERRABLE").format(sql.Identifier(name)))
    (finding,) = audit(db, [CHECK])
    assert (finding.severity, finding.object_id) == ("info", RELEASE_CONFIG_FK)
    assert "not DEFERRABLE INITIALLY DEFERRED" in finding.message


def test_dropped_uniques(db):
    _alter(db, "api_release", "DROP CONSTRAINT", _constraint(db, "api_release", "u", ["app_id", "version"]))
    _alter(db, "api_app", "DROP CONSTRAINT", _constraint(db, "api_app", "u", ["id"]))
    assert _found(db) == {
        "api_release UNIQUE (app_id, version)": ("critical", ["absent"]),
        "api_app UNIQUE (id)": ("warning", ["absent"]),
    }


def test_unique_index_in_place_of_the_constraint_counts(db):
    _alter(db, "api_release", "DROP CONSTRAINT", _constraint(db, "api_release", "u", ["app_id", "version"]))
    db.conn.execute("CREATE UNIQUE INDEX release_version_by_hand ON api_release (version, app_id) WHERE version > 0")
    assert list(_found(db)) == ["api_release UNIQUE (app_id, version)"]  # a partial index does not count
    db.conn.execute("CREATE UNIQUE INDEX release_version_full ON api_release (version, app_id)")
    assert audit(db, [CHECK]) == []


def test_dropped_primary_key_takes_the_fks_with_it(db):
    name = _constraint(db, "api_config", "p", ["uuid"])
    db.conn.execute(sql.SQL("ALTER TABLE api_config DROP CONSTRAINT {} CASCADE").format(sql.Identifier(name)))
    assert _found(db) == {
        "api_config PRIMARY KEY (uuid)": ("warning", ["absent"]),
        RELEASE_CONFIG_FK: ("critical", ["absent"]),
    }


def test_disabled_triggers_leave_the_fk_unenforced(db):
    db.conn.execute("ALTER TABLE api_release DISABLE TRIGGER ALL")
    found = _found(db)
    assert found == {
        "api_release(app_id) -> api_app(uuid)": ("critical", ["triggers disabled"]),
        "api_release(build_id) -> api_build(uuid)": ("critical", ["triggers disabled"]),
        RELEASE_CONFIG_FK: ("critical", ["triggers disabled"]),
        "api_release(owner_id) -> auth_user(id)": ("warning", ["triggers disabled"]),
    }
    db.conn.execute("ALTER TABLE api_release ENABLE TRIGGER ALL")
    assert audit(db, [CHECK]) == []


def test_database_level_check_is_skipped_under_app_unless_selected(hephy_db):
    hephy_db.controller().create_app("web")
    _alter(hephy_db, "api_release", "DROP CONSTRAINT", _constraint(hephy_db, "api_release", "f", ["config_id"]))
    target = Settings(dsn=hephy_db.dsn)
    with open_audit(target, apps=["web"], selection=Selection()) as run:
        assert CHECK not in [c.id for c in run.checks]
    with open_audit(target, apps=["web"], selection=Selection(include=(CHECK,))) as run:
        assert [f.object_id for f in run.findings()] == [RELEASE_CONFIG_FK]
    assert [f.object_id for f in audit(hephy_db, [CHECK], apps=["web"])] == [RELEASE_CONFIG_FK]


def test_runs_with_a_select_only_role(db):
    db.controller().create_app("web").push()
    _alter(db, "api_release", "DROP CONSTRAINT", _constraint(db, "api_release", "u", ["app_id", "version"]))
    role, password = f"audit_ro_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    db.conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
    try:
        tables = [r[0] for r in db.conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND (tablename LIKE 'api\\_%' OR tablename = 'django_migrations')").fetchall()]
        db.conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(
            sql.SQL(", ").join(map(sql.Identifier, tables)), sql.Identifier(role)))
        params = pg_conninfo.conninfo_to_dict(db.dsn)
        params.update(user=role, password=password)
        (finding,) = audit(db, [CHECK], dsn=pg_conninfo.make_conninfo(**params))
        assert (finding.severity, finding.object_id) == ("critical", "api_release UNIQUE (app_id, version)")
        assert db.scalar("SELECT has_table_privilege(%s, 'auth_user', 'SELECT')", (role,)) is False
    finally:
        db.conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        db.conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
