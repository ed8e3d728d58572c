"""The undo file ``apply`` writes before it commits, and the way back it describes.

It records every change the apply made: for each copy the release, the original it pointed at,
the release's fingerprint before and the copy's uuid (all known from the plan: nothing is read
for the copies); for each re-dated or pruned row its whole pre-image and fingerprints (and,
re-dated, the ``created`` the apply gave it); the columns of the tables (so ``undo sql`` can
render the script offline).  Files of format versions 1 to 3 also hold the fingerprints of each
copy and its release after the apply (``copies_after``): they are still read, and kept in the
undo's actions as a record, but never compared (they never were).  The file is mode
0600: pre-images hold config values.  ``undo`` turns it into actions for the same checked
transaction, which checks only what it restores (:meth:`repairs.statements.Statements._undo_checks`)
and afterwards that every re-inserted row is its pre-image again.

An undo file is never overwritten: :func:`reserve` takes its name exclusively before the
transaction starts (the default name gets a fresh suffix when taken; a name given with
``--undo-file`` that exists is refused), and the reservation is removed unless the
transaction commits or its outcome is unknown.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from auditor import __version__
from auditor.core.collector import gc_paused
from auditor.core.detect import Generation
from auditor.core.errors import BadInput, PlanRefused
from auditor.core.fileio import discard_output, resolve_output
from auditor.core.suggest import with_hint
from repairs.actions import ActionRow, ActionTable
from repairs.executor import RowImages
from repairs.identity import Identity
from repairs.model import POINTER
from repairs.sealed import dump, read_sealed, write_sealed_parts

FORMAT = "controller-audit-undo"
#: 2: copies as compact rows, their post-image fingerprints as one array.
#: 3: the tables' columns, and the ``created`` each re-dated row got (``created_after``).
#: 4: no ``copies_after`` (undo never compared them; reading them was ~10% of an apply).
FORMAT_VERSION = 4
#: The first format version without ``copies_after``.
WITHOUT_COPIES_AFTER = 4
#: How many fresh names (``PLAN.undo-2.json`` ...) are tried before giving up.
FRESH_NAMES = 1000
class CopyRow(NamedTuple):
    """A row of the undo file's ``copies``: a copy the apply made, and what undoing it needs."""

    action: int
    op: int
    app: int
    original: str
    release: str
    release_version: int | None
    release_fingerprint_before: str | None
    inserted: str


#: The fields of a row of ``copies``, as the file names them.
COPY_FIELDS: tuple[str, ...] = CopyRow._fields


def default_undo_path(plan_file: str | os.PathLike[str]) -> Path:
    """``PLAN.undo.json``: where ``apply PLAN`` writes its undo file unless told otherwise."""
    return Path(f"{plan_file}.undo.json")


def reserve(path: str | os.PathLike[str], *, fresh: bool) -> Path:
    """Take the undo file's name: create it empty (mode 0600) only if no file has that name.

    The path goes through the one output writer's rules (:func:`auditor.core.fileio.resolve_output`):
    a FIFO or a character device is written through (nothing there to overwrite), a symbolic
    link is followed, a directory is refused.  A regular file, or a link to one, is never
    overwritten: ``fresh`` (the default name) tries ``NAME.undo-2.json``, ``-3``... and returns the
    first free one; a name the user gave is refused (exit 4).
    """
    wanted = Path(path)
    if resolve_output(wanted).how == "stdout":
        raise BadInput("the undo file cannot be standard output (apply writes its messages there): give a "
                       "file path", kind="bad output")
    if resolve_output(wanted).streamed:
        return wanted
    candidates = [wanted]
    if fresh:
        stem = str(wanted)[: -len(".json")] if str(wanted).endswith(".json") else str(wanted)
        candidates += [Path(f"{stem}-{n}.json") for n in range(2, FRESH_NAMES + 1)]
    for candidate in candidates:
        target = resolve_output(candidate)
        if target.streamed:
            return candidate
        try:
            fd = os.open(target.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate
    if fresh:
        raise PlanRefused(f"{wanted} and {FRESH_NAMES - 1} fresh names beside it exist; give --undo-file",
                          kind="undo file exists")
    raise PlanRefused(f"undo file {wanted} exists (it may be the only way back of an earlier apply): "
                      "nothing was changed; give another --undo-file or move it away", kind="undo file exists")


class UndoRecorder:
    """Builds the undo file of one apply: the copies from the plan (serialised in a thread while
    the database applies the changes), the re-dated and pruned rows' images from the database."""

    def __init__(self, path: str | os.PathLike[str], actions: ActionTable, identity: Identity,
                 plan_checksum: str | None, columns: dict[str, list[str]]) -> None:
        self.path = path
        self.actions = actions
        self.header = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "tool_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            "plan_checksum": plan_checksum, "database": identity.to_json(),
            "ops": [list(op) for op in actions.ops], "apps": [list(app) for app in actions.apps],
            "copy_fields": list(COPY_FIELDS), "columns": columns,
        }
        self._copies: Future[bytes] | None = None
        self.written = False
        self._pool = ThreadPoolExecutor(max_workers=1)

    def discard(self) -> None:
        """Remove the undo file (or its reserved, empty name) of a transaction that did not commit."""
        self._pool.shutdown(wait=True)
        discard_output(self.path)  # a regular file only: never a FIFO, a device or a link itself
        self.written = False

    def start(self, images: RowImages) -> None:
        """Serialise the copies in the background (they need nothing from the database)."""
        self._copies = self._pool.submit(lambda: dump(copies(self.actions)).encode())

    def finish(self, images: RowImages) -> None:
        """Add the re-dated and pruned rows and write the sealed file (before COMMIT)."""
        assert self._copies is not None
        try:
            parts: dict[str, str | bytes] = {key: dump(value) for key, value in self.header.items()}
            parts["copies"] = self._copies.result()
            parts["rows"] = dump(rows(self.actions, images))
            write_sealed_parts(self.path, parts)
            self.written = True
        finally:
            self._pool.shutdown()


def copies(actions: ActionTable) -> list[CopyRow]:
    """One :class:`CopyRow` per copy: everything undo needs of it."""
    copy_ops = {i for i, (_, kind, _) in enumerate(actions.ops) if kind == "copy"}
    return [CopyRow(r.id, r.op, r.app, r.row, str(r.release), r.release_version, r.release_fingerprint,
                    str(r.new_uuid)) for r in actions.rows if r.op in copy_ops]


def rows(actions: ActionTable, images: RowImages) -> list[dict[str, Any]]:
    """The re-dated and pruned rows: their pre-images and fingerprints before and after."""
    out = []
    for r in actions.rows:
        if r.id not in images.row_before:
            continue
        before, before_fp = images.row_before[r.id]
        entry = {"action": r.id, "op": r.op, "app": r.app, "row": r.row, "before": before,
                 "fingerprint_before": before_fp, "fingerprint_after": images.row_after.get(r.id)}
        if r.id in images.row_after:
            entry["created_after"] = r.new_created  # a re-date: the created the apply gave the row
        out.append(entry)
    return out


@dataclass
class UndoFile:
    """An undo file, read and verified."""

    identity: Identity
    actions: ActionTable
    checksum: str
    #: The columns of api_config, api_build, api_release (format version 3; None before).
    columns: dict[str, list[str]] | None
    created: str
    plan_checksum: str | None

    def generation(self) -> Generation | None:
        """The schema generation the undo file was written for (None before format version 3)."""
        if self.columns is None:
            return None
        release = tuple(self.columns["api_release"])
        return Generation(name=self.identity.generation, migration=self.identity.migration,
                          migration_name=self.identity.migration_name, has_failed="failed" in release,
                          has_exception="exception" in release,
                          columns={t: tuple(c) for t, c in self.columns.items()})

    def app_uuids(self, names: Iterable[str]) -> set[str]:
        """The uuids of the apps named (by name or uuid); :class:`BadInput` for one the file lacks."""
        wanted, found = list(names), set()
        for name in wanted:
            match = {uuid for uuid, app in self.actions.apps if name in (uuid, app)}
            if not match:
                apps = sorted(str(app or uuid) for uuid, app in self.actions.apps)
                raise BadInput(with_hint(f"app {name!r} has no change in this undo file", name, apps)
                               + f" (its apps: {', '.join(apps) or 'none'})", kind="unknown app")
            found |= match
        return found


def load_undo(path: str | os.PathLike[str]) -> UndoFile:
    """Read and verify an undo file (versions 1 to :data:`FORMAT_VERSION`)."""
    with gc_paused():
        return _load_undo(path)


def _load_undo(path: str | os.PathLike[str]) -> UndoFile:
    doc = read_sealed(path, FORMAT, FORMAT_VERSION)
    sealed = doc["checksum"]
    try:
        identity = Identity.from_json(doc["database"])
        if doc["format_version"] == 1:
            doc = {**_from_version_1(doc), "created": doc.get("created", "?"), "plan_checksum": doc.get("plan_checksum")}
        if list(doc["copy_fields"]) != list(COPY_FIELDS):
            raise ValueError(f"unknown copy fields {doc['copy_fields']!r}")
        columns = doc.get("columns")
        if columns is not None:
            columns = {str(t): [str(c) for c in cols] for t, cols in columns.items()}
        actions = _reverse(doc)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise BadInput(f"{path} is not a valid undo file ({type(exc).__name__}: {exc})", kind="bad undo file") from None
    return UndoFile(identity, actions, sealed, columns, str(doc.get("created", "?")), doc.get("plan_checksum"))


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


def _copies_after(doc: dict[str, Any]) -> dict[int, tuple[str, str]] | None:
    """Format versions 1 to 3: the fingerprints of each copy and its release after the apply, by
    action (a record only: undo checks what it restores, not these); None from version 4 on."""
    if doc.get("format_version", 1) >= WITHOUT_COPIES_AFTER:
        return None
    return {a: (copy_fp, release_fp) for a, copy_fp, release_fp in doc["copies_after"]}


def _reverse(doc: dict[str, Any]) -> ActionTable:
    """The actions that take the recorded changes back, newest change first."""
    forward = [(str(r), str(k), str(t)) for r, k, t in doc["ops"]]
    table = ActionTable(apps=[(str(u), n) for u, n in doc["apps"]])
    ops: dict[tuple[str, str, str], int] = {}

    def op(kind: str, forward_op: int) -> int:
        return ops.setdefault(("undo", kind, forward[forward_op][2]), len(ops))

    after = _copies_after(doc)
    #: (the forward action, its undo as an ActionRow without id and why, the why, the image to re-insert)
    changes: list[tuple[int, ActionRow, str, Any]] = []
    for copy in (CopyRow(*row) for row in doc["copies"]):
        copy_fp, release_fp = (None, None) if after is None else after[copy.action]
        changes.append((copy.action, ActionRow(
            id=0, op=op("uncopy", copy.op), app=copy.app, row=copy.inserted, fingerprint=copy_fp,
            release=copy.release, release_version=copy.release_version, release_fingerprint=release_fp,
            new_uuid=copy.original, new_created=None, why=0, post_fingerprint=None,
            release_post_fingerprint=copy.release_fingerprint_before),
            f"undo #{copy.action}: point v{copy.release_version} back at {copy.original} and delete the copy", None))
    for entry in doc["rows"]:
        action, kind = entry["action"], forward[entry["op"]][1]
        if kind == "redate":
            created = entry["before"]["created"]
            changes.append((action, ActionRow(
                id=0, op=op("redate", entry["op"]), app=entry["app"], row=entry["row"],
                fingerprint=entry["fingerprint_after"], release=None, release_version=None, release_fingerprint=None,
                new_uuid=None, new_created=created, why=0, post_fingerprint=entry["fingerprint_before"],
                current_created=entry.get("created_after")), f"undo #{action}: created back to {created}", None))
        elif kind == "prune":
            changes.append((action, ActionRow(
                id=0, op=op("reinsert", entry["op"]), app=entry["app"], row=entry["row"], fingerprint=None,
                release=None, release_version=None, release_fingerprint=None, new_uuid=None, new_created=None,
                why=0, post_fingerprint=entry["fingerprint_before"]),
                f"undo #{action}: re-insert the pruned row", entry["before"]))
        else:
            raise ValueError(f"unknown change kind {kind!r}")
    changes.sort(key=lambda c: c[0], reverse=True)
    for number, (_, row, why, image) in enumerate(changes, start=1):
        table.rows.append(row._replace(id=number, why=len(table.whys)))
        table.whys.append(why)
        if image is not None:
            table.images[number] = image
    table.ops = list(ops)
    return table
