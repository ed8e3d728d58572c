"""``blast-radius --format json``: the machine-readable form of what the text shows.

Schema: ``auditor/blast_schema.json`` (documented in docs/report-format.md).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from auditor.audit.blast import BlastRadius, DoomedRelease

BLAST_VERSION = 1


def blast_schema() -> dict[str, Any]:
    """The JSON Schema of the ``blast-radius --format json`` document."""
    schema: dict[str, Any] = json.loads(resources.files("auditor").joinpath("blast_schema.json").read_text(encoding="utf-8"))
    return schema


def _release(rel: DoomedRelease) -> dict[str, Any]:
    return {"app": rel.app, "version": rel.version, "uuid": rel.uuid, "created": rel.created.isoformat(),
            "failed": rel.failed, "live": rel.live}


def blast_document(radius: BlastRadius) -> dict[str, Any]:
    """The whole document: counts per table, the loud warnings as data, the (capped) releases."""
    return {
        "version": BLAST_VERSION,
        "kind": radius.kind,
        "subject": radius.subject,
        "app": radius.app,
        "counts": dict(radius.counts),
        "total": radius.total,
        "release_total": radius.release_total,
        "releases": [_release(r) for r in radius.releases],
        "releases_truncated": len(radius.releases) < radius.release_total,
        "foreign_releases": radius.foreign_releases,
        "foreign_apps": list(radius.foreign_apps),
        "live_hit": [_release(r) for r in radius.live_hit],
        "orm_only": True,
    }
