"""The rows a repair transaction locks (``Statements.locks``), seen from another session."""

from __future__ import annotations

import psycopg
import pytest

from auditor.core.detect import detect
from repairs.statements import Statements
from tests.repairs.helpers import story

_PLAN = ("INSERT INTO ca_plan (action, kind, tbl, app, uuid, release, undo) VALUES "
         "(1, 'copy', 'api_config', %(app)s, %(config)s, %(first)s, false), "
         "(2, 'redate', 'api_release', %(app)s, %(first)s, %(first)s, false), "
         "(3, 'redate', 'api_release', %(app)s, %(second)s, NULL, false)")


@pytest.mark.compat  # row locks and the planner's choices differ between majors
def test_every_release_the_actions_read_is_locked_and_seen_once(hephy_db):
    """The releases are locked in two statements (those of the actions, then the re-dated ones that
    are no action's release): each planned release is locked and in ``ca_seen`` once, whichever
    statement found it (one both re-dated and an action's release too); an unplanned one is free."""
    story(hephy_db.controller())
    first, second, free = (hephy_db.conn.execute(
        "SELECT r.uuid, r.app_id, r.config_id FROM api_release AS r ORDER BY r.created LIMIT 3").fetchall())
    with psycopg.connect(hephy_db.dsn) as conn:  # one transaction, rolled back at the end
        statements = Statements(detect(conn))
        for stmt in statements.setup:
            conn.execute(stmt)
        conn.execute(_PLAN, {"app": first[1], "config": first[2], "first": first[0], "second": second[0]})
        for stmt in (*statements.analyze, *statements.locks):
            conn.execute(stmt)

        seen = conn.execute("SELECT uuid, count(*) FROM ca_seen WHERE tbl = 'api_release' GROUP BY uuid").fetchall()
        assert dict(seen) == {first[0]: 1, second[0]: 1}
        for release in (first[0], second[0]):
            with pytest.raises(psycopg.errors.LockNotAvailable):
                hephy_db.conn.execute("SELECT 1 FROM api_release WHERE uuid = %s FOR UPDATE NOWAIT", (release,))
        hephy_db.conn.execute("SELECT 1 FROM api_release WHERE uuid = %s FOR UPDATE NOWAIT", (free[0],))
        conn.rollback()
