"""The shared checks' info rows build ``related`` and ``evidence`` as text (issue 16n): the lines are
byte for byte what ``json_build_object`` rendered, whatever the generation, the failed releases, a
missing live release or the session's time zone."""

from __future__ import annotations

from collections import Counter

import pytest

import checks._shared as shared
from auditor.audit import open_audit
from auditor.core.settings import Selection, Settings

CHECKS = ("shared-config", "shared-build")

# What main rendered with: a JSON object per release, and the evidence's nested objects.
JSON_ITEM = "json_build_object('uuid', q.uuid, 'version', q.version, 'failed', q.failed, 'created', q.created)::text"
JSON_EVIDENCE = """json_build_object('reason', r.reason,
                         'blast_radius', json_build_object('releases', r.releases,
                                                           'includes_live', r.includes_live,
                                                           'versions', r.versions,
                                                           'versions_truncated', r.releases > 50),
                         'ok_releases', r.ok_releases, 'failed_releases', r.releases - r.ok_releases,
                         'contiguous', r.contiguous, 'first_position', r.first_pos,
                         'last_position', r.last_pos, 'is_latest', r.is_latest,
                         'KIND_created', r.row_created, 'live_release', r.live_uuid,
                         'live_version', r.live_version, 'cross_app', false)"""


def _story(db) -> None:
    ctl = db.controller()
    web = ctl.create_app("web")
    web.config_set(A="1")
    web.push(image="web:2")
    web.push(image="web:3")
    web.rollback(2)  # reuses v2's config and build, live
    web.failed_config_set(B='quote " backslash \\ tab\t ü')
    for n in range(8):  # more than six versions: the message's "..."
        web.push(image=f"web:{4 + n}")
    odd = ctl.create_app("ödd-名前")
    odd.config_set(X="y")
    odd.push(image="odd:1")
    odd.config_set(X="z")
    odd.rollback(2)
    odd.config_set(Y="w")  # the reused pair is not live


def _lines(db) -> Counter[str]:
    with open_audit(Settings(dsn=db.dsn, grace_seconds=0), selection=Selection(include=CHECKS)) as run:
        return Counter(f.json_text() for f in run.streamed("json"))


@pytest.mark.parametrize("time_zone", ["UTC", "Asia/Kathmandu"])
def test_info_rows_render_as_json_build_object_did(db, monkeypatch, time_zone):
    _story(db)
    monkeypatch.setenv("PGTZ", time_zone)
    text_rendered = _lines(db)
    assert sum(text_rendered.values()) >= 3
    assert all('"severity": "info"' in line for line in text_rendered)
    assert any(('+05:45"' in line) == (time_zone != "UTC") for line in text_rendered)
    monkeypatch.setattr(shared, "_RELATED_ITEM", JSON_ITEM)
    monkeypatch.setattr(shared, "_EVIDENCE", JSON_EVIDENCE + "::text")
    assert _lines(db) == text_rendered
