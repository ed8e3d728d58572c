"""The undo file ``apply`` writes before it commits, and the way back it describes.

It records every change the apply made: for each copy the release, the original it pointed at,
the release's fingerprint before, the copy's uuid, and (``copies_after``, read from the
database in one statement) the fingerprints of the copy and the release afterwards; for each
re-dated or pruned row its whole pre-image.  The file is mode 0600: pre-images hold config
values.  ``undo`` turns it into actions for the same checked transaction: the current rows must
still be the recorded post-images (else the undo is stale), and afterwards every row must be
its pre-image again.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from auditor import __version__
from auditor.errors import BadInput
from auditor.fileio import discard_output
from repairs.actions import APP, ID, NEW_UUID, OP, RELEASE, RELEASE_FP, ROW, VERSION, ActionTable
from repairs.executor import RowImages
from repairs.identity import Identity
from repairs.model import POINTER
from repairs.sealed import dump, read_sealed, write_sealed_parts

FORMAT = "controller-audit-undo"
#: 2: copies as compact rows, their post-image fingerprints as one array.
FORMAT_VERSION = 2
#: The fields of a row of ``copies``.
COPY_FIELDS = ("action", "op", "app", "original", "release", "release_version", "release_fingerprint_before",
               "inserted")


class UndoRecorder:
    """Builds the undo file of one apply: the copies from the plan (serialised in a thread while
    the database applies the changes), the fingerprints afterwards from the database."""

    def __init__(self, path: str | os.PathLike[str], actions: ActionTable, identity: Identity,
                 plan_checksum: str | None) -> None:
        self.path = path
        self.actions = actions
        self.header = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "tool_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            "plan_checksum": plan_checksum, "database": identity.to_json(),
            "ops": [list(op) for op in actions.ops], "apps": [list(app) for app in actions.apps],
            "copy_fields": list(COPY_FIELDS),
        }
        self._copies: Future[str] | None = None
        self.written = False
        self._pool = ThreadPoolExecutor(max_workers=1)

    def discard(self) -> None:
        """Remove the undo file of a transaction that did not commit."""
        if self.written:
            discard_output(self.path)  # a regular file only: never a FIFO, a device or a link itself
            self.written = False

    def start(self, images: RowImages) -> None:
        """Serialise the copies in the background (they need nothing from the database)."""
        self._copies = self._pool.submit(lambda: dump(copies(self.actions)))

    def finish(self, images: RowImages) -> None:
        """Add the fingerprints after the change and write the sealed file (before COMMIT)."""
        assert self._copies is not None
        try:
            parts = {key: dump(value) for key, value in self.header.items()}
            parts["copies"] = self._copies.result()
            parts["copies_after"] = images.copies_after
            parts["rows"] = dump(rows(self.actions, images))
            write_sealed_parts(self.path, parts)
            self.written = True
        finally:
            self._pool.shutdown()


def copies(actions: ActionTable) -> list[list[Any]]:
    """One row of :data:`COPY_FIELDS` per copy: everything undo needs but the fingerprints after."""
    copy_ops = {i for i, (_, kind, _) in enumerate(actions.ops) if kind == "copy"}
    return [[r[ID], r[OP], r[APP], r[ROW], r[RELEASE], r[VERSION], r[RELEASE_FP], r[NEW_UUID]]
            for r in actions.rows if r[OP] in copy_ops]


def rows(actions: ActionTable, images: RowImages) -> list[dict[str, Any]]:
    """The re-dated and pruned rows: their pre-images and fingerprints before and after."""
    out = []
    for r in actions.rows:
        if r[ID] not in images.row_before:
            continue
        before, before_fp = images.row_before[r[ID]]
        out.append({"action": r[ID], "op": r[OP], "app": r[APP], "row": r[ROW], "before": before,
                    "fingerprint_before": before_fp, "fingerprint_after": images.row_after.get(r[ID])})
    return out


def load_undo(path: str | os.PathLike[str]) -> tuple[Identity, ActionTable, str]:
    """Read and verify an undo file; returns the database identity, the undo actions, the checksum."""
    doc = read_sealed(path, FORMAT, FORMAT_VERSION)
    sealed = doc["checksum"]
    try:
        identity = Identity.from_json(doc["database"])
        if doc["format_version"] == 1:
            doc = _from_version_1(doc)
        if list(doc["copy_fields"]) != list(COPY_FIELDS):
            raise ValueError(f"unknown copy fields {doc['copy_fields']!r}")
        actions = _reverse(doc)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise BadInput(f"{path} is not a valid undo file ({type(exc).__name__}: {exc})", kind="bad undo file") from None
    return identity, actions, sealed


def _from_version_1(doc: dict[str, Any]) -> dict[str, Any]:
    """A version 1 undo file (one object per change, whole release pre-images) in the version 2 layout."""
    ops: dict[tuple[str, str, str], int] = {}
    apps: dict[str, int] = {}
    names: list[list[Any]] = []
    out: dict[str, Any] = {"copy_fields": list(COPY_FIELDS), "copies": [], "copies_after": [], "rows": []}
    for entry in doc["changes"]:
        op = ops.setdefault((entry["repair"], entry["kind"], entry["table"]), len(ops))
        app = apps.get(entry["app"]["uuid"])
        if app is None:
            app = apps[entry["app"]["uuid"]] = len(names)
            names.append([entry["app"]["uuid"], entry["app"].get("name")])
        after = doc["after"].get(str(entry["action"]), {})
        if entry["kind"] == "copy":
            release = entry["release"]
            original = release["before"][POINTER[entry["table"]]]
            out["copies"].append([entry["action"], op, app, original, release["uuid"], release.get("version"),
                                  release["fingerprint_before"], entry["inserted"]])
            out["copies_after"].append([entry["action"], after["inserted"], after["release"]])
        else:
            out["rows"].append({"action": entry["action"], "op": op, "app": app, "row": entry["row"],
                                "before": entry["before"], "fingerprint_before": entry["fingerprint_before"],
                                "fingerprint_after": after.get("row")})
    out["ops"] = [list(op) for op in ops]
    out["apps"] = names
    return out


def _reverse(doc: dict[str, Any]) -> ActionTable:
    """The actions that take the recorded changes back, newest change first."""
    forward = [(str(r), str(k), str(t)) for r, k, t in doc["ops"]]
    table = ActionTable(apps=[(str(u), n) for u, n in doc["apps"]])
    ops: dict[tuple[str, str, str], int] = {}

    def op(kind: str, forward_op: int) -> int:
        return ops.setdefault(("undo", kind, forward[forward_op][2]), len(ops))

    after = {a: (copy_fp, release_fp) for a, copy_fp, release_fp in doc["copies_after"]}
    changes: list[tuple[int, list[Any], Any]] = []
    for action, fop, app, original, release, version, before_fp, inserted in doc["copies"]:
        copy_fp, release_fp = after[action]
        why = f"undo #{action}: point v{version} back at {original} and delete the copy"
        changes.append((action, [op("uncopy", fop), app, inserted, copy_fp, release, version, release_fp, original,
                                 None, why, None, before_fp], None))
    for entry in doc["rows"]:
        action, kind = entry["action"], forward[entry["op"]][1]
        if kind == "redate":
            created = entry["before"]["created"]
            changes.append((action, [op("redate", entry["op"]), entry["app"], entry["row"], entry["fingerprint_after"],
                                     None, None, None, None, created, f"undo #{action}: created back to {created}",
                                     entry["fingerprint_before"], None], None))
        elif kind == "prune":
            changes.append((action, [op("reinsert", entry["op"]), entry["app"], entry["row"], None, None, None, None,
                                     None, None, f"undo #{action}: re-insert the pruned row",
                                     entry["fingerprint_before"], None], entry["before"]))
        else:
            raise ValueError(f"unknown change kind {kind!r}")
    changes.sort(key=lambda c: c[0], reverse=True)
    for number, (_, row, image) in enumerate(changes, start=1):
        table.rows.append([number, *row[:9], len(table.whys), *row[10:]])
        table.whys.append(row[9])
        if image is not None:
            table.images[number] = image
    table.ops = list(ops)
    return table
