"""The undo file ``apply`` writes before it commits, and the way back it describes.

It holds the pre-image of every row the apply changed or deleted, the uuids of the rows it
inserted, and the fingerprint each row has after the apply (``after``).  The file is mode
0600: pre-images hold config values.  ``undo`` turns it into actions
for the same checked transaction: the current rows must still be the recorded post-images
(else the undo is stale), and afterwards every row must be its pre-image again.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from auditor import __version__
from auditor.errors import BadInput
from repairs.executor import RowImages
from repairs.identity import Identity
from repairs.model import POINTER, Action
from repairs.sealed import dump, read_sealed, write_sealed_parts

FORMAT = "controller-audit-undo"
FORMAT_VERSION = 1


class UndoRecorder:
    """Builds the undo file of one apply: pre-images as soon as they are read (serialised in a
    thread while the database applies the changes), post-image fingerprints at the end."""

    def __init__(self, path: str | os.PathLike[str], actions: list[Action], identity: Identity,
                 plan_checksum: str | None) -> None:
        self.path = path
        self.actions = actions
        self.header = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "tool_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            "plan_checksum": plan_checksum, "database": identity.to_json(),
        }
        self._changes: Future[str] | None = None
        self.written = False
        self._pool = ThreadPoolExecutor(max_workers=1)

    def discard(self) -> None:
        """Remove the undo file of a transaction that did not commit."""
        if self.written:
            Path(self.path).unlink(missing_ok=True)
            self.written = False

    def start(self, images: RowImages) -> None:
        """Serialise the pre-images in the background."""
        self._changes = self._pool.submit(lambda: dump(changes(self.actions, images)))

    def finish(self, images: RowImages) -> None:
        """Add the post-image fingerprints and write the sealed file (before COMMIT)."""
        assert self._changes is not None
        try:
            parts = {key: dump(value) for key, value in self.header.items()}
            parts["changes"] = self._changes.result()
            parts["after"] = dump(after(self.actions, images))
            write_sealed_parts(self.path, parts)
            self.written = True
        finally:
            self._pool.shutdown()


def changes(actions: list[Action], images: RowImages) -> list[dict[str, Any]]:
    """One entry per change: what it was, and the pre-image of every row it changed or deleted."""
    entries: list[dict[str, Any]] = []
    for a in actions:
        entry: dict[str, Any] = {"action": a.id, "repair": a.repair, "kind": a.kind, "table": a.table,
                                 "app": {"uuid": a.app_uuid, "name": a.app_name}, "row": a.row}
        if a.kind == "copy":
            before, before_fp = images.release_before[a.id]
            entry.update(inserted=a.new_uuid, release={"uuid": a.release, "version": a.release_version,
                                                       "before": before, "fingerprint_before": before_fp})
        elif a.kind in ("redate", "prune"):
            before, before_fp = images.row_before[a.id]
            entry.update(before=before, fingerprint_before=before_fp)
        else:
            continue
        entries.append(entry)
    return entries


def after(actions: list[Action], images: RowImages) -> dict[str, dict[str, str]]:
    """Per action id, the fingerprints its rows have after the apply (what undo expects to find)."""
    out: dict[str, dict[str, str]] = {}
    for a in actions:
        if a.kind == "copy":
            out[str(a.id)] = {"inserted": images.copy_after[a.id], "release": images.release_after[a.id]}
        elif a.kind == "redate":
            out[str(a.id)] = {"row": images.row_after[a.id]}
    return out


def load_undo(path: str | os.PathLike[str]) -> tuple[Identity, list[Action], str]:
    """Read and verify an undo file; returns the database identity, the undo actions, the checksum."""
    doc = read_sealed(path, FORMAT, FORMAT_VERSION)
    try:
        identity = Identity.from_json(doc["database"])
        post = doc["after"]
        actions = [_reverse(i + 1, entry, post.get(str(entry["action"]), {}))
                   for i, entry in enumerate(reversed(doc["changes"]))]
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"{path} is not a valid undo file ({type(exc).__name__}: {exc})", kind="bad undo file") from None
    return identity, actions, doc["checksum"]


def _reverse(number: int, entry: dict[str, Any], post: dict[str, str]) -> Action:
    """The action that takes one recorded change back."""
    common = dict(id=number, repair="undo", table=entry["table"], app_uuid=entry["app"]["uuid"],
                  app_name=entry["app"].get("name"))
    kind, table = entry["kind"], entry["table"]
    if kind == "copy":
        release = entry["release"]
        original = release["before"][POINTER[table]]
        return Action(kind="uncopy", row=entry["inserted"], fingerprint=post["inserted"],
                      release=release["uuid"], release_version=release.get("version"),
                      release_fingerprint=post["release"], new_uuid=original,
                      release_post_fingerprint=release["fingerprint_before"],
                      why=f"undo #{entry['action']}: point v{release.get('version')} back at {original} "
                          f"and delete the copy", **common)
    if kind == "redate":
        return Action(kind="redate", row=entry["row"], fingerprint=post["row"],
                      new_created=entry["before"]["created"], post_fingerprint=entry["fingerprint_before"],
                      why=f"undo #{entry['action']}: created back to {entry['before']['created']}", **common)
    if kind == "prune":
        return Action(kind="reinsert", row=entry["row"], fingerprint=None, image=entry["before"],
                      post_fingerprint=entry["fingerprint_before"],
                      why=f"undo #{entry['action']}: re-insert the pruned row", **common)
    raise ValueError(f"unknown change kind {kind!r}")
