"""``explain APP --format json``: the machine-readable form of what the text shows.

Schema: ``auditor/explain_schema.json`` (documented in docs/report-format.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

from auditor.audit.story import AppStory, Latest, ReleaseRow, RowUse
from auditor.audit.verdict import verdict

EXPLAIN_VERSION = 1


def explain_schema() -> dict[str, Any]:
    """The JSON Schema of the ``explain --format json`` document."""
    schema: dict[str, Any] = json.loads(resources.files("auditor").joinpath("explain_schema.json").read_text(encoding="utf-8"))
    return schema


def _others(uses: dict[str, RowUse], row: str | None, version: int) -> list[int] | None:
    use = uses.get(row) if row else None
    return None if use is None else [v for v in use.versions if v != version]


def _release(story: AppStory, rel: ReleaseRow) -> dict[str, Any]:
    return {
        "version": rel.version, "uuid": rel.uuid, "created": rel.created.isoformat(), "failed": rel.failed,
        "summary": rel.summary, "config": rel.config, "build": rel.build,
        "live": story.live is not None and rel.uuid == story.live.uuid,
        "config_in_app": rel.config in story.configs,
        "build_in_app": None if rel.build is None else rel.build in story.builds,
        "config_shared_with": _others(story.configs, rel.config, rel.version) or [],
        "build_shared_with": _others(story.builds, rel.build, rel.version) or [],
        "future_dated": story.future_dated(rel.created),
    }


def _row(use: RowUse, latest: Latest) -> dict[str, Any]:
    return {"uuid": use.uuid, "created": use.created.isoformat(), "used_by_versions": list(use.versions),
            "foreign_uses": use.foreign_uses, "foreign_apps": list(use.foreign_apps), "orphan": use.orphan,
            "is_latest": latest.today is not None and latest.today.uuid == use.uuid}


def _latest(latest: Latest, migration: int | None) -> dict[str, Any]:
    code, sentence = verdict(latest, migration)
    today = latest.today
    return {
        "returns": today.uuid if today else None,
        "returns_created": today.created.isoformat() if today else None,
        "returns_used_by_versions": list(today.versions) if today else [],
        "returns_orphan": today.orphan if today else False,
        "ties": latest.ties, "should_return": latest.expected, "ok": latest.ok,
        "verdict": code, "message": sentence,
    }


def _short(rel: ReleaseRow | None) -> dict[str, Any] | None:
    return None if rel is None else {"version": rel.version, "uuid": rel.uuid, "created": rel.created.isoformat()}


def _release_order(story: AppStory) -> dict[str, Any]:
    return {
        "broken": story.order_broken,
        "newest": _short(story.newest),
        "newest_tied": [rel.version for rel in story.newest_tied],
        "highest": _short(story.highest),
        "next_version": story.next_version,
        "repeated_versions": story.repeated_versions,
    }


def explain_document(story: AppStory, findings: Sequence[dict[str, Any]], generation: str,
                     next_steps: Sequence[str]) -> dict[str, Any]:
    """The whole document (findings in their report JSON form, ``next`` as commands)."""
    return {
        "version": EXPLAIN_VERSION,
        "app": {"name": story.name, "uuid": story.uuid},
        "generation": generation,
        "live": None if story.live is None else {"version": story.live.version, "uuid": story.live.uuid,
                                                 "config": story.live.config, "build": story.live.build},
        "releases": [_release(story, rel) for rel in story.releases],
        "configs": [_row(use, story.latest["config"]) for use in story.configs.values()],
        "builds": [_row(use, story.latest["build"]) for use in story.builds.values()],
        "latest": {kind: _latest(found, story.migration or None) for kind, found in story.latest.items()},
        "release_order": _release_order(story),
        "findings": list(findings),
        "next": [line.strip() for line in next_steps],
    }
