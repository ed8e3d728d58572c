"""Roles and privileges for repairs (issue #12 case 8): the README's roles exactly as printed, the
schema level compared like with like when ``django_migrations`` is unreadable on one side, and
every missing privilege named in one refusal before any lock is taken."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo, sql

from tests.helpers import login_role_dsn, messages, psql_file
from tests.reliability.faults import full_dump
from tests.repairs.helpers import contents, run, story

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
PASSWORD = "role-pw-8642"


def _readme_roles() -> dict[str, str]:
    """role -> the SQL block of the README's section on roles that creates it."""
    section = README.split("## Connecting, and a least-privilege role", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)
    return {re.search(r"CREATE ROLE (\w+)", block).group(1): block for block in blocks}


def _dsn_as(db, role: str) -> str:
    params = conninfo.conninfo_to_dict(db.dsn)
    params.update(user=role, password=PASSWORD)
    return conninfo.make_conninfo(**params)


def _drop_roles(db, roles) -> None:
    for role in roles:
        db.conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
        db.conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        db.conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def readme_roles(make_db) -> Iterator[tuple]:
    """A storied database with the README's roles, created by its SQL exactly as printed."""
    db = make_db(28)
    story(db.controller())
    roles = _readme_roles()
    assert set(roles) == {"controller_audit", "controller_repair"}
    made = []
    try:
        for role, block in roles.items():
            db.conn.execute(block.replace("'...'", f"'{PASSWORD}'").replace("DATABASE deis", f'DATABASE "{db.name}"'))
            made.append(role)
        yield db, _dsn_as(db, "controller_audit"), _dsn_as(db, "controller_repair")
    finally:
        _drop_roles(db, made)


def test_plan_as_the_readme_audit_role_apply_and_undo_as_its_repair_role(readme_roles, tmp_path):
    db, audit_dsn, repair_dsn = readme_roles
    before = contents(db)
    plan = tmp_path / "p.json"
    made = run("plan", "--dsn", audit_dsn, "-o", str(plan), "--detailed-exitcode")
    assert made.exit_code == 2, made.output
    applied = run("apply", str(plan), "--dsn", repair_dsn, "--yes", "--undo-file", str(tmp_path / "u.json"))
    assert applied.exit_code == 0, applied.output
    assert run("plan", "--dsn", audit_dsn, "-o", str(tmp_path / "again.json"), "--detailed-exitcode").exit_code == 0
    undone = run("undo", str(tmp_path / "u.json"), "--dsn", repair_dsn, "--yes")
    assert undone.exit_code == 0, undone.output
    assert contents(db) == before
    # the same plan as a script, run by the repair role with psql
    assert run("plan", "sql", str(plan), "-o", str(tmp_path / "p.sql")).exit_code == 0
    done = psql_file(repair_dsn, tmp_path / "p.sql")
    assert done.returncode == 0, done.stderr
    assert run("plan", "--dsn", audit_dsn, "-o", str(tmp_path / "again.json"), "--detailed-exitcode").exit_code == 0


REPAIR_WITHOUT_MIGRATIONS = (
    "GRANT SELECT ON api_app TO {}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON api_config, api_build TO {}",
    "GRANT SELECT, UPDATE ON api_release TO {}",
)


@pytest.mark.parametrize("unreadable_at", ["apply", "plan"])
@pytest.mark.parametrize("migration", [23, 28])
def test_migrations_unreadable_on_one_side_compare_the_schema_level(make_db, tmp_path, migration, unreadable_at):
    """0023 is the sharp case: the columns show 0020 (the last migration with a marker)."""
    db = make_db(migration)
    story(db.controller())
    role = f"nomig_{db.name[-8:]}"
    blind = login_role_dsn(db, role, PASSWORD, *REPAIR_WITHOUT_MIGRATIONS)
    try:
        before = contents(db)
        planner, applier = (db.dsn, blind) if unreadable_at == "apply" else (blind, db.dsn)
        plan = tmp_path / "p.json"
        assert run("plan", "--dsn", planner, "-o", str(plan)).exit_code == 0
        applied = run("apply", str(plan), "--dsn", applier, "--yes", "--undo-file", str(tmp_path / "u.json"))
        assert applied.exit_code == 0, applied.output
        assert run("undo", str(tmp_path / "u.json"), "--dsn", applier, "--yes").exit_code == 0
        assert contents(db) == before
        assert run("plan", "sql", str(plan), "-o", str(tmp_path / "p.sql")).exit_code == 0
        done = psql_file(applier, tmp_path / "p.sql")
        assert done.returncode == 0, done.stderr
    finally:
        _drop_roles(db, [role])


def test_every_missing_privilege_is_named_in_one_refusal_before_any_lock(make_db, tmp_path):
    db = make_db(28)
    story(db.controller())
    role = f"nolock_{db.name[-8:]}"
    dsn = login_role_dsn(db, role, PASSWORD,
                         "GRANT SELECT, INSERT, UPDATE, DELETE ON api_config, api_build, api_release, django_migrations TO {}")
    db.conn.execute(sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC").format(sql.Identifier(db.name)))
    plan = tmp_path / "p.json"
    assert run("plan", "--dsn", db.dsn, "-o", str(plan)).exit_code in (0, 2)
    before = full_dump(db.conn)
    holder = psycopg.connect(db.dsn)
    try:
        holder.execute("SELECT 1 FROM api_release FOR UPDATE")  # a lock the apply would wait for
        result = run("apply", str(plan), "--dsn", dsn, "--yes", "--lock-timeout", "60s")
    finally:
        holder.rollback()
        holder.close()
        _drop_roles(db, [role])
    assert result.exit_code == 4, result.output
    line = messages(result.stderr).strip()
    assert line.startswith(f"controller-audit: missing privileges: role {role} lacks privileges")
    assert line.endswith(f"GRANT SELECT ON api_app TO {role}; GRANT TEMPORARY ON DATABASE {db.name} TO {role}")
    assert full_dump(db.conn) == before and not list(tmp_path.glob("*.undo*"))
