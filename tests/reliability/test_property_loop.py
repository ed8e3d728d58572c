"""Property: for ANY app history the controller can write, check -> plan -> apply -> plan -> undo
keeps every promise.

Histories are drawn from the controller's own operations (create, config:set, push, rollback to
an earlier non-failed version, failed deploys of the schema's era, failures that leave orphans)
on Deis 0019 (era A: failed deploys delete their release) and Hephy 0028 (era C: they stay,
failed).  Each example gets its own database, cloned from the template.  Profiles ("ci": 25
examples per generation, "long": 500 with ``HYPOTHESIS_PROFILE=long``) are in conftest.py.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from auditor.testbed.builder import App, Controller
from repairs.planfile import load_plan
from tests.conftest import ControllerDB
from tests.helpers import audit
from tests.reliability.faults import full_dump
from tests.repairs.helpers import ledger, run

REPAIRABLE = ("orphan-config", "orphan-build", "shared-config", "shared-build",
              "latest-config-not-live", "latest-build-not-live")
OPERATIONS = ("config_set", "unset", "push", "rollback", "failed_config_set", "failed_push", "failed_rollback",
              "orphan_config", "orphan_build")


@dataclass(frozen=True)
class Step:
    """One controller operation on app number ``app``; ``pick`` chooses keys and versions."""

    operation: str
    app: int
    pick: int


histories = st.tuples(
    st.integers(min_value=1, max_value=3),
    st.lists(st.builds(Step, st.sampled_from(OPERATIONS), st.integers(0, 2), st.integers(0, 10_000)),
             min_size=1, max_size=24),
)


def _rollback_targets(app: App) -> list[int]:
    """Versions the controller lets a rollback go to: not failed; era C refuses v1 (no build)."""
    failed = "failed" if app.ctl.generation.has_failed else "false"
    lowest = 2 if app.ctl.era == "C" else 1
    rows = app.ctl.conn.execute(
        f"SELECT version FROM api_release WHERE app_id = %s AND NOT {failed} AND version >= %s ORDER BY version",
        (app.uuid, lowest)).fetchall()
    return [r[0] for r in rows]


def write_history(ctl: Controller, apps: int, steps: list[Step]) -> None:
    """Play the drawn history through the data builder (the controller's writes)."""
    created = [ctl.create_app(f"app{i}") for i in range(apps)]
    for step in steps:
        app = created[step.app % apps]
        key = f"K{step.pick % 4}"
        if step.operation == "config_set":
            app.config_set(**{key: str(step.pick)})
        elif step.operation == "unset":
            app.config_set(**{key: None})
        elif step.operation == "push":
            app.push(image=f"{app.name}:{step.pick}")
        elif step.operation in ("rollback", "failed_rollback"):
            targets = _rollback_targets(app)
            if targets:
                getattr(app, step.operation)(targets[step.pick % len(targets)])
        elif step.operation == "failed_config_set":
            app.failed_config_set(**{key: "broken"})
        elif step.operation == "failed_push":
            app.failed_push()
        elif step.operation == "orphan_config":
            app.orphan_config(**{key: "orphan"})
        else:
            app.orphan_build()


def live_and_latest(db: ControllerDB) -> list[tuple]:
    """Per app: the live release's config and build, and every row newest by ``created``."""
    failed = "NOT r.failed" if db.controller().generation.has_failed else "true"
    return db.conn.execute(f"""
        SELECT a.id, l.config_id::text, l.build_id::text,
               (SELECT array_agg(c.uuid::text) FROM api_config c WHERE c.app_id = a.uuid
                AND c.created = (SELECT max(created) FROM api_config WHERE app_id = a.uuid)),
               (SELECT array_agg(b.uuid::text) FROM api_build b WHERE b.app_id = a.uuid
                AND b.created = (SELECT max(created) FROM api_build WHERE app_id = a.uuid))
        FROM api_app a JOIN LATERAL (SELECT config_id, build_id FROM api_release r
                                     WHERE r.app_id = a.uuid AND {failed} ORDER BY version DESC LIMIT 1) l ON true
        ORDER BY a.id""").fetchall()


def check_the_loop(db: ControllerDB, workdir: Path) -> None:
    """Every promise of the repair loop, on the history written into ``db``."""
    pre_image = full_dump(db.conn)
    contents = ledger(db, dates=False)["releases"]  # per release: its own columns, its config's and build's
    audit(db)  # the whole catalogue runs on any history

    plan_path, undo_path = workdir / "p.json", workdir / "u.json"
    planned = run("plan", "--dsn", db.dsn, "-o", str(plan_path))
    assert planned.exit_code == 0, planned.output
    plan = load_plan(plan_path)
    # the only refusal a controller-written history can earn: a live release without a build
    assert all(r.table == "api_build" and "has no build" in r.why for r in plan.refusals), plan.refusals
    no_build = {r.app_name for r in plan.refusals}
    event("plan actions: " + next(label for least, label in ((20, "20+"), (10, "10-19"), (5, "5-9"), (1, "1-4"),
                                                            (0, "none")) if len(plan.actions) >= least))
    event(f"apps with a live release without a build: {len(no_build)}")
    applied = run("apply", str(plan_path), "--dsn", db.dsn, "--yes", "--undo-file", str(undo_path))
    assert applied.exit_code == 0, applied.output

    left = [(f.check, f.app_name) for f in audit(db, REPAIRABLE)]
    assert [x for x in left if not (x[0] == "latest-build-not-live" and x[1] in no_build)] == []
    assert ledger(db, dates=False)["releases"] == contents
    for app, config, build, newest_configs, newest_builds in live_and_latest(db):
        assert newest_configs == [config], app
        if build is not None:
            assert newest_builds == [build], app
        elif newest_builds is not None:
            assert app in no_build

    again = run("plan", "--dsn", db.dsn, "-o", str(workdir / "again.json"), "--detailed-exitcode")
    assert again.exit_code == 0, again.output  # nothing left to repair

    if len(plan.actions):
        undone = run("undo", str(undo_path), "--dsn", db.dsn, "--yes")
        assert undone.exit_code == 0, undone.output
    assert full_dump(db.conn) == pre_image


@pytest.mark.parametrize("migration", [19, 28], ids=["era-A-0019", "era-C-0028"])
@given(history=histories)
def test_any_history_repairs_keeps_every_promise_and_undoes_exactly(pg_server, migration, history):
    apps, steps = history
    name = pg_server.create_database(migration)
    try:
        with psycopg.connect(pg_server.dsn(name), autocommit=True) as conn, \
                tempfile.TemporaryDirectory(prefix="ca-property-") as workdir:
            db = ControllerDB(name, pg_server.dsn(name), migration, conn, pg_server)
            write_history(db.controller(), apps, steps)
            check_the_loop(db, Path(workdir))
    finally:
        pg_server.drop_database(name)

