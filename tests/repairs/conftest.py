"""Fixtures for the repair tests: a hot standby of the test server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.standby import hot_standby


@pytest.fixture(scope="session")
def repair_standby(pg_server) -> Iterator[str]:
    """Admin DSN of a hot standby of the test server (embedded test servers only)."""
    if pg_server.data_dir is None:
        pytest.skip("a hot standby needs the embedded test server")
    with hot_standby(pg_server) as dsn:
        yield dsn
