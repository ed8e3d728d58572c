"""Hostile names and values, and NULLs where the controller never leaves them: audits never crash."""

from __future__ import annotations

import json

from click.testing import CliRunner

from auditor.cli import cli
from tests.helpers import audit, by_check

NASTY_NAMES = ["o'brien", 'semi;colon"', "back\\slash", "ünïcødé-αβγ", "x" * 63]
NASTY_VALUES = {
    "QUOTE": "it's \"quoted\"",
    "SQL": "'; DROP TABLE api_release; --",
    "BACKSLASH": "C:\\path\\to\\thing\\",
    "UNICODE": "snowman \u2603 and emoji \U0001f600",
    "LONG": "v" * 100_000,
    "NEWLINE": "line1\nline2\ttab",
}


def test_hostile_app_names_and_config_values(hephy_db):
    ctl = hephy_db.controller()
    for name in NASTY_NAMES:
        app = ctl.create_app(name)
        app.push(image=f"registry/{len(name)}:1")
        app.config_set(**NASTY_VALUES)
        app.orphan_config(EXTRA="'")
    findings = audit(hephy_db)
    orphans = by_check(findings, "orphan-config")
    assert sorted(f.app_name for f in orphans) == sorted(NASTY_NAMES)
    json.dumps([f.to_json() for f in findings])  # every finding serialises
    result = CliRunner().invoke(cli, ["info", "--dsn", hephy_db.dsn])
    assert result.exit_code == 0 and "api_app" in result.output


def test_nulls_the_controller_never_writes(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    web.push()
    web.config_set(A="1")
    web.orphan_config(B="2")
    # api_app.id (the app name) is nullable in the schema; summary too; build_id after a build.
    db.conn.execute("UPDATE api_app SET id = NULL WHERE id = 'web'")
    db.conn.execute("UPDATE api_release SET summary = NULL")
    db.conn.execute("UPDATE api_release SET build_id = NULL WHERE version = 3")
    findings = audit(db)
    (orphan,) = by_check(findings, "orphan-config")
    assert orphan.app_name is None and orphan.app_uuid == web.uuid
    json.dumps([f.to_json() for f in findings])
