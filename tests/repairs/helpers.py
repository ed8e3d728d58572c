"""Stories and state snapshots for the repair tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from auditor.cli import cli
from auditor.testbed.builder import Controller
from repairs.planfile import load_plan

TABLES = ("api_app", "api_config", "api_build", "api_release")
#: Columns that name rows (differ between two databases holding the same story).
NAMES = {"uuid", "app_id", "config_id", "build_id", "owner_id"}


def run(*args: str, input: str | None = None) -> Result:
    """Invoke the command line (errors become exit codes, as for a user)."""
    return CliRunner().invoke(cli, list(args), input=input)


def story(ctl: Controller) -> None:
    """Apps with everything a repair meets: linear history, rollbacks, failed deploys, orphans."""
    web = ctl.create_app("web")
    web.push(image="web:1")
    web.config_set(DEBUG="1")
    web.failed_config_set(BROKEN="yes")  # era A: orphan config (poisoned latest); era C: failed release
    web.push(image="web:2")
    web.rollback(3)
    web.orphan_build(image="web:never")
    api = ctl.create_app("api", owner="bob")
    api.push(image="api:1")
    api.config_set(A="1")
    api.failed_push(image="api:broken")
    api.failed_rollback(2)
    api.orphan_config(UNUSED="1")
    calm = ctl.create_app("calm")
    calm.config_set(ONLY="config")


def ledger(db, dates: bool = True) -> dict[str, Any]:
    """What the repairs must keep, independent of row uuids: every release with its own columns
    and its config's and build's content, the row counts, and latest() per app.  Without
    ``dates``: the configs' and builds' content only (what a repair must never change)."""
    releases = db.conn.execute(
        "SELECT a.id, r.version, row_to_json(r)::text, row_to_json(c)::text, row_to_json(b)::text "
        "FROM api_release r JOIN api_app a ON a.uuid = r.app_id "
        "LEFT JOIN api_config c ON c.uuid = r.config_id LEFT JOIN api_build b ON b.uuid = r.build_id "
        "ORDER BY 1, 2"
    ).fetchall()
    latest = db.conn.execute(
        "SELECT a.id, (SELECT row_to_json(c)::text FROM api_config c WHERE c.app_id = a.uuid "
        "ORDER BY created DESC LIMIT 1) FROM api_app a ORDER BY 1"
    ).fetchall()
    return {
        "releases": [(app, version, _unnamed(r), _unnamed(c, dates), _unnamed(b, dates))
                     for app, version, r, c, b in releases],
        "latest": [(app, _unnamed(c, dates)) for app, c in latest],
        "counts": counts(db),
    }


def _unnamed(row: str | None, dates: bool = True) -> dict | None:
    hidden = NAMES if dates else NAMES | {"created", "updated"}
    return None if row is None else {k: v for k, v in json.loads(row).items() if k not in hidden}


def counts(db) -> dict[str, int]:
    return {t: db.scalar(f"SELECT count(*) FROM {t}") for t in TABLES}


def contents(db) -> dict[str, list[str]]:
    """Every row of the tables a repair may touch, exactly."""
    return {t: [r[0] for r in db.conn.execute(f"SELECT row_to_json(t)::text FROM {t} t ORDER BY uuid")]
            for t in TABLES}


def make_plan(db, path: Path, *extra: str) -> dict:
    """Run ``plan`` and return the plan document (actions as objects: :func:`read_plan`)."""
    result = run("plan", "--dsn", db.dsn, "-o", str(path), *extra)
    assert result.exit_code in (0, 2), result.output
    return read_plan(path)


def read_plan(path: Path) -> dict:
    """The plan document, its compact action rows read back as one object each."""
    doc = json.loads(path.read_text())
    doc["actions"] = [action.to_json() for action in load_plan(path).actions]
    return doc


def sharing(db) -> int:
    """How many configs and builds are used by more than one release."""
    return db.scalar(
        "SELECT (SELECT count(*) FROM (SELECT config_id FROM api_release GROUP BY 1 HAVING count(*) > 1) s)"
        " + (SELECT count(*) FROM (SELECT build_id FROM api_release WHERE build_id IS NOT NULL GROUP BY 1 "
        "HAVING count(*) > 1) s)")
