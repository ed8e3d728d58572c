"""A plan's action rows are validated as they are read (one pass, with the garbage collector
paused and restored): every row that does not fit the plan's tables is refused."""

from __future__ import annotations

import gc
import json

import pytest

from auditor.core.collector import gc_paused
from auditor.core.errors import BadInput
from repairs.actions import FIELDS, PLAN_WIDTH, ActionTable
from repairs.planfile import load_plan

GOOD_ROW = [1, 0, 0, "11111111-1111-1111-1111-111111111111", "fp", None, None, None, None, None, 0]


def _doc(*rows: list) -> dict:
    return {"fields": list(FIELDS[:PLAN_WIDTH]), "ops": [["prune-orphans", "prune", "api_config"]],
            "apps": [["22222222-2222-2222-2222-222222222222", "app"]], "whys": ["orphan"], "rows": list(rows)}


def test_good_rows_are_read_with_the_fields_an_undo_adds_empty():
    table = ActionTable.from_json(_doc(GOOD_ROW, [2, *GOOD_ROW[1:]]))
    assert [row.id for row in table.rows] == [1, 2]
    assert table.rows[0].row == GOOD_ROW[3] and table.rows[0].why == 0
    assert table.rows[0].post_fingerprint is None and table.rows[0].current_created is None
    assert table.rows[1]._asdict()["fingerprint"] == "fp"


@pytest.mark.parametrize("row, message", [
    (GOOD_ROW[:-1], "does not fit"),
    ([*GOOD_ROW, None], "does not fit"),
    (["1", *GOOD_ROW[1:]], "does not fit"),
    ([True, *GOOD_ROW[1:]], "does not fit"),
    ([1, 1, *GOOD_ROW[2:]], "does not fit"),
    ([1, 0, -1, *GOOD_ROW[3:]], "does not fit"),
    ([*GOOD_ROW[:-1], 1], "does not fit"),
    ([*GOOD_ROW[:-1], 0.0], "does not fit"),
    ({"id": 1}, "does not fit"),
])
def test_a_row_that_does_not_fit_is_refused(row, message):
    with pytest.raises(ValueError, match=message):
        ActionTable.from_json(_doc(GOOD_ROW, row))


def test_an_action_id_twice_is_refused():
    with pytest.raises(ValueError, match="action id 1 appears twice"):
        ActionTable.from_json(_doc(GOOD_ROW, [2, *GOOD_ROW[1:]], GOOD_ROW))


@pytest.mark.parametrize("enabled", [True, False])
def test_the_garbage_collector_is_restored_after_a_refused_plan(tmp_path, enabled):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"format": "not a plan"}))
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        with pytest.raises(BadInput):
            load_plan(path)
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_gc_paused_restores_the_collector_on_an_exception():
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()
