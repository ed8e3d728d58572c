"""The undo file ``apply`` writes before it commits, and the way back it describes.

It holds the pre-image of every row the apply changed or deleted, the uuids of the rows it
inserted, and the fingerprint each row has after the apply.  ``undo`` turns it into actions
for the same checked transaction: the current rows must still be the recorded post-images
(else the undo is stale), and afterwards every row must be its pre-image again.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from typing import Any

from auditor import __version__
from auditor.errors import BadInput
from repairs.executor import RowImages
from repairs.identity import Identity
from repairs.model import POINTER, Action
from repairs.sealed import read_sealed, write_sealed

FORMAT = "controller-audit-undo"
FORMAT_VERSION = 1


def undo_document(actions: list[Action], images: RowImages, identity: Identity, plan_checksum: str | None) -> dict:
    """The undo file's content for an apply of ``actions`` that produced ``images``."""
    entries: list[dict[str, Any]] = []
    for a in actions:
        entry: dict[str, Any] = {"action": a.id, "repair": a.repair, "kind": a.kind, "table": a.table,
                                 "app": {"uuid": a.app_uuid, "name": a.app_name}, "row": a.row}
        if a.kind == "copy":
            before, before_fp = images.release_before[a.id]
            entry.update(inserted={"uuid": a.new_uuid, "fingerprint_after": images.copy_after[a.id]},
                         release={"uuid": a.release, "version": a.release_version, "before": json.loads(before),
                                  "fingerprint_before": before_fp,
                                  "fingerprint_after": images.release_after[a.id]})
        elif a.kind == "redate":
            before, before_fp = images.row_before[a.id]
            entry.update(before=json.loads(before), fingerprint_before=before_fp,
                         fingerprint_after=images.row_after[a.id])
        elif a.kind == "prune":
            before, before_fp = images.row_before[a.id]
            entry.update(before=json.loads(before), fingerprint_before=before_fp)
        else:
            continue
        entries.append(entry)
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "tool_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
        "plan_checksum": plan_checksum, "database": identity.to_json(), "changes": entries,
    }


def write_undo(path: str | os.PathLike[str], doc: dict) -> str:
    """Write the sealed undo file atomically (mode 0600: it holds config values)."""
    return write_sealed(path, doc)


def load_undo(path: str | os.PathLike[str]) -> tuple[Identity, list[Action], str]:
    """Read and verify an undo file; returns the database identity, the undo actions, the checksum."""
    doc = read_sealed(path, FORMAT, FORMAT_VERSION)
    try:
        identity = Identity.from_json(doc["database"])
        actions = [_reverse(i + 1, entry) for i, entry in enumerate(reversed(doc["changes"]))]
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"{path} is not a valid undo file ({type(exc).__name__}: {exc})", kind="bad undo file") from None
    return identity, actions, doc["checksum"]


def _reverse(number: int, entry: dict[str, Any]) -> Action:
    """The action that takes one recorded change back."""
    common = dict(id=number, repair="undo", table=entry["table"], app_uuid=entry["app"]["uuid"],
                  app_name=entry["app"].get("name"))
    kind, table = entry["kind"], entry["table"]
    if kind == "copy":
        release = entry["release"]
        original = release["before"][POINTER[table]]
        return Action(kind="uncopy", row=entry["inserted"]["uuid"], fingerprint=entry["inserted"]["fingerprint_after"],
                      release=release["uuid"], release_version=release.get("version"),
                      release_fingerprint=release["fingerprint_after"], new_uuid=original,
                      release_post_fingerprint=release["fingerprint_before"],
                      why=f"undo #{entry['action']}: point v{release.get('version')} back at {original} "
                          f"and delete the copy", **common)
    if kind == "redate":
        return Action(kind="redate", row=entry["row"], fingerprint=entry["fingerprint_after"],
                      new_created=entry["before"]["created"], post_fingerprint=entry["fingerprint_before"],
                      why=f"undo #{entry['action']}: created back to {entry['before']['created']}", **common)
    if kind == "prune":
        return Action(kind="reinsert", row=entry["row"], fingerprint=None, image=entry["before"],
                      post_fingerprint=entry["fingerprint_before"],
                      why=f"undo #{entry['action']}: re-insert the pruned row", **common)
    raise ValueError(f"unknown change kind {kind!r}")
