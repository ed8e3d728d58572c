"""Our schema fixtures equal the catalogues of databases the controller's migrations built."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from auditor.testbed.schema import STANDARD_MIGRATIONS, schema_sql
from tests.catalog import catalog

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "shared" / "schema"
REFERENCES = {19: "deis-0019.sql", 23: "deis-0023.sql", 28: "hephy-0028.sql"}


def _reference_catalog(pg_server, migration: int) -> dict[str, list[tuple]]:
    path = REFERENCE_DIR / REFERENCES[migration]
    assert path.exists(), f"reference dump {path} missing: ../shared must lie beside the repository"
    name = pg_server.create_database(None)
    try:
        with psycopg.connect(pg_server.dsn(name), autocommit=True) as conn:
            conn.execute(path.read_bytes())
            conn.execute("SET search_path = public")
            return catalog(conn)
    finally:
        pg_server.drop_database(name)


@pytest.mark.parametrize("migration", STANDARD_MIGRATIONS, ids=lambda m: f"mig{m:04d}")
def test_fixture_matches_reference_dump(pg_server, make_db, migration):
    ours = catalog(make_db(migration).conn)
    reference = _reference_catalog(pg_server, migration)
    for part in reference:
        assert ours[part] == reference[part], f"{part} differ from {REFERENCES[migration]}"
    assert len(ours["columns"]) > 100 and len(ours["constraints"]) > 50


def test_every_buildable_migration_loads(make_db):
    for migration in range(19, 29):
        conn = make_db(migration).conn
        count = conn.execute("SELECT count(*) FROM django_migrations WHERE app = 'api'").fetchone()[0]
        assert count == migration


def test_schema_sql_rejects_unbuildable_migration():
    with pytest.raises(ValueError):
        schema_sql(18)
