"""Stories and state snapshots for the repair tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from auditor.cli import cli
from auditor.testbed.builder import Controller
from repairs.identity import pin_settings
from repairs.planfile import load_plan
from repairs.sealed import checksum

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


def boot(db) -> list[str]:
    """What the controller's boot does: ``config_set.latest().save()`` for every app (Django's
    save rewrites the row and sets ``updated``); returns the uuids it re-saved."""
    rows = db.conn.execute(
        """UPDATE api_config AS c SET "values" = c."values", updated = now()
           WHERE c.uuid IN (SELECT DISTINCT ON (app_id) uuid FROM api_config ORDER BY app_id, created DESC)
           RETURNING c.uuid::text""").fetchall()
    return [r[0] for r in rows]


def without_updated(rows: dict[str, list[str]], uuids: set[str]) -> dict[str, list]:
    """``rows`` (:func:`contents`) without the ``updated`` of the rows ``uuids`` (re-saved since)."""
    out = {}
    for name, texts in rows.items():
        out[name] = sorted(json.dumps({k: v for k, v in json.loads(t).items()
                                       if not (k == "updated" and json.loads(t)["uuid"] in uuids)},
                                      sort_keys=True) for t in texts)
    return out


def copies_after(db, undo: dict) -> list[list[Any]]:
    """What an undo file of format version 1 to 3 recorded as ``copies_after`` for its copies:
    ``[action, md5 of the copy, md5 of its release]``, read from the database now (with the
    fingerprints' session settings)."""
    out = []
    with db.conn.transaction():
        pin_settings(db.conn)
        for action, op, _, _, release, _, _, inserted in undo["copies"]:
            table = undo["ops"][op][2]
            copy_fp = db.scalar(f"SELECT md5(t::text) FROM {table} t WHERE uuid = %s", (inserted,))
            release_fp = db.scalar("SELECT md5(t::text) FROM api_release t WHERE uuid = %s", (release,))
            out.append([action, copy_fp, release_fp])
    return sorted(out)


def as_older_undo(db, doc: dict, version: int) -> dict:
    """An undo file's document as format version ``version`` (2 or 3) wrote it, re-sealed: with
    ``copies_after`` (read now), and before 3 without the columns and the re-dated rows' new dates."""
    old = {**doc, "format_version": version, "copies_after": copies_after(db, doc)}
    if version == 2:
        old.pop("columns")
        old["rows"] = [{k: v for k, v in entry.items() if k != "created_after"} for entry in doc["rows"]]
    old["checksum"] = checksum(old)
    return old
