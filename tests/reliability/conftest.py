"""Fixtures for fault and privilege tests: a hot standby, a SELECT-only role; hypothesis profiles."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from psycopg import sql

from tests.helpers import login_role_dsn

#: Property tests (tests/reliability/test_property_loop.py): a bounded run per CI build, a long
#: one on demand with ``HYPOTHESIS_PROFILE=long``.  Examples use real databases: no deadline.
PROPERTY_EXAMPLES = {"ci": 25, "long": 500}
for _name, _examples in PROPERTY_EXAMPLES.items():
    settings.register_profile(_name, max_examples=_examples, deadline=None, print_blob=True,
                              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def select_only_dsn(hephy_db) -> Iterator[str]:
    """A DSN for a role that may only SELECT the controller's tables of ``hephy_db``."""
    role = f"ro_{hephy_db.name[-8:]}"
    conn = hephy_db.conn
    yield login_role_dsn(hephy_db, role, "ro-pw-1234", "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}")
    conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
    conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
