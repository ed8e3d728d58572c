"""The oldest supported server, what is degraded below each threshold, and the refusal.

No server older than 14 can be started here, so the refusal is tested at its seam (the
function that takes the server's version number, which :func:`auditor.core.connection.connect`
calls with ``conn.info.server_version``); every major of the matrix runs the real-server
tests (this module is in ``COMPAT``).
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from auditor.cli import cli
from auditor.core.connection import connect, resolve_target
from auditor.core.errors import EXIT_UNKNOWN
from auditor.core.server_support import (
    DEGRADATIONS,
    MINIMUM,
    UnsupportedServer,
    degradations,
    require_supported,
    support_statement,
    version_text,
)


@pytest.mark.parametrize("number", [90400, 90401, 90624, 100000, 110022, 150019, 180006])
def test_the_minimum_and_newer_are_accepted(number):
    require_supported(number)


@pytest.mark.parametrize("number, shown", [(90399, "9.3"), (90326, "9.3"), (90024, "9.0"), (80423, "8.4")])
def test_older_servers_are_refused_with_one_clear_line(number, shown):
    with pytest.raises(UnsupportedServer) as caught:
        require_supported(number)
    assert caught.value.exit_code == EXIT_UNKNOWN == 3
    assert caught.value.one_line() == (
        f"unsupported server: PostgreSQL {shown} is older than 9.4, the oldest server controller-audit supports")


def test_the_minimum_is_9_4_the_sql_floor():
    assert MINIMUM == 90400 and version_text(MINIMUM) == "9.4"


@pytest.mark.parametrize("number, text", [(90400, "9.4"), (90624, "9.6"), (100023, "10"), (140023, "14")])
def test_version_text_names_the_major(number, text):
    assert version_text(number) == text


def test_what_is_degraded_below_each_threshold():
    assert [d.since for d in degradations(180000)] == []
    assert [d.since for d in degradations(160000)] == []
    assert [d.since for d in degradations(150019)] == [160000]
    assert [d.since for d in degradations(110000)] == [160000]
    assert [d.since for d in degradations(100023)] == [160000, 110000]
    assert [d.since for d in degradations(90600)] == [160000, 110000, 100000]
    assert [d.since for d in degradations(90400)] == [160000, 110000, 100000, 90600]
    statement = support_statement()
    assert statement.startswith("PostgreSQL 9.4 and newer; before 16 (pg_input_is_valid())")
    assert all(d.feature in statement for d in DEGRADATIONS)


def test_the_session_server_is_accepted(pg_server):
    with connect(resolve_target(pg_server.admin_dsn)) as conn:
        assert conn.info.server_version >= MINIMUM


def _info(db) -> str:
    result = CliRunner().invoke(cli, ["info", "--dsn", db.dsn])
    assert result.exit_code == 0, result.output
    return result.output


def test_info_states_the_minimum(hephy_db):
    assert "supported:       yes (controller-audit supports PostgreSQL 9.4 and newer)" in _info(hephy_db)


@pytest.mark.pg(">= 16")
def test_info_on_16_and_newer_reports_nothing_degraded(hephy_db):
    assert "degraded:        nothing (every server-side path is used)" in _info(hephy_db)


@pytest.mark.pg("< 16")
def test_info_before_16_reports_client_side_json_validation(hephy_db):
    lines = [line for line in _info(hephy_db).splitlines() if line.startswith("degraded:")]
    assert lines == ["degraded:        invalid-json validates JSON by casting every value in a savepoint "
                     "first; when a value does not cast, more probes find the rows the cast refuses, and only "
                     "those and the rows whose values are not objects by their first character are parsed and "
                     "rendered on the client (needs PostgreSQL 16: pg_input_is_valid())"]
