"""Actions stored compactly: one row of scalars per action, repeated strings kept once.

A plan or undo can hold hundreds of thousands of actions.  An :class:`ActionTable` keeps each
as a short list (see :data:`FIELDS`) whose ``op``, ``app`` and ``why`` are indexes into small
tables (``(repair, kind, table)`` triples, ``(uuid, name)`` pairs, distinct reasons), and the
full row images of prunes and re-inserts apart.  That list is what the plan file stores and
what is streamed into ``COPY``; :class:`repairs.model.Action` objects are made only for the
actions a person reads (``plan show``, ``plan sql``, messages).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from repairs.model import REPOINTS, ROW_DELTA, Action

#: The fields of an action row, in order.  Plans store the first :data:`PLAN_WIDTH`; undo
#: actions (built in memory from an undo file) also carry the fingerprints their rows must have
#: afterwards and, for a re-date, the ``created`` the row must have now.
FIELDS: tuple[str, ...] = (
    "id", "op", "app", "row", "fingerprint", "release", "release_version", "release_fingerprint",
    "new_uuid", "new_created", "why", "post_fingerprint", "release_post_fingerprint", "current_created",
)
PLAN_WIDTH = 11
(ID, OP, APP, ROW, FP, RELEASE, VERSION, RELEASE_FP, NEW_UUID, NEW_CREATED, WHY, POST_FP,
 RELEASE_POST_FP, CURRENT_CREATED) = range(len(FIELDS))


@dataclass
class ActionTable:
    """Actions as rows of :data:`FIELDS` (``op``, ``app``, ``why`` are indexes)."""

    ops: list[tuple[str, str, str]] = field(default_factory=list)  # (repair, kind, table)
    apps: list[tuple[str, str | None]] = field(default_factory=list)  # (uuid, name)
    whys: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    images: dict[int, dict[str, Any]] = field(default_factory=dict)  # action id -> full row

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Action]:
        return (self.action(row) for row in self.rows)

    @classmethod
    def of(cls, actions: Iterable[Action]) -> ActionTable:
        """The table of ``actions`` (each repeated string stored once)."""
        table = cls()
        ops: dict[tuple[str, str, str], int] = {}
        apps: dict[str, int] = {}
        whys: dict[str, int] = {}
        for a in actions:
            op = ops.setdefault((a.repair, a.kind, a.table), len(ops))
            app = apps.get(a.app_uuid)
            if app is None:
                app = apps[a.app_uuid] = len(table.apps)
                table.apps.append((a.app_uuid, a.app_name))
            why = whys.setdefault(a.why, len(whys))
            row = [a.id, op, app, a.row, a.fingerprint, a.release, a.release_version, a.release_fingerprint,
                   a.new_uuid, a.new_created, why]
            if a.post_fingerprint is not None or a.release_post_fingerprint is not None:
                row += [a.post_fingerprint, a.release_post_fingerprint]
            table.rows.append(row)
            if a.image is not None:
                table.images[a.id] = a.image
        table.ops = list(ops)
        table.whys = list(whys)
        return table

    def action(self, row: list[Any]) -> Action:
        """One row as an :class:`Action`."""
        repair, kind, tbl = self.ops[row[OP]]
        app_uuid, app_name = self.apps[row[APP]]
        post = (row[POST_FP], row[RELEASE_POST_FP]) if len(row) > PLAN_WIDTH else (None, None)
        return Action(id=row[ID], repair=repair, kind=kind, table=tbl, app_uuid=app_uuid, app_name=app_name,
                      row=row[ROW], fingerprint=row[FP], why=self.whys[row[WHY]], release=row[RELEASE],
                      release_version=row[VERSION], release_fingerprint=row[RELEASE_FP], new_uuid=row[NEW_UUID],
                      new_created=row[NEW_CREATED], image=self.images.get(row[ID]), post_fingerprint=post[0],
                      release_post_fingerprint=post[1])

    def find(self, action_id: int) -> Action | None:
        """The action with this id (ids are 1..n in order; any order is searched)."""
        if 0 < action_id <= len(self.rows) and self.rows[action_id - 1][ID] == action_id:
            return self.action(self.rows[action_id - 1])
        return next((self.action(r) for r in self.rows if r[ID] == action_id), None)

    def app_uuids(self) -> set[str]:
        """The apps the actions touch."""
        return {self.apps[i][0] for i in {row[APP] for row in self.rows}}

    def repair_counts(self) -> Counter[str]:
        """Actions per repair."""
        per_op = Counter(row[OP] for row in self.rows)
        out: Counter[str] = Counter()
        for op, n in per_op.items():
            out[self.ops[op][0]] += n
        return out

    def expected_changes(self) -> dict[str, dict[str, int]]:
        """Rows inserted, updated and deleted per table (as :func:`repairs.model.expected_changes`)."""
        out: dict[str, dict[str, int]] = {}
        for op, n in Counter(row[OP] for row in self.rows).items():
            _, kind, tbl = self.ops[op]
            delta = ROW_DELTA[kind]
            what = "insert" if delta > 0 else "delete" if delta < 0 else "update"
            out.setdefault(tbl, {"insert": 0, "update": 0, "delete": 0})[what] += n
        repoint = {i for i, (_, kind, _) in enumerate(self.ops) if kind in REPOINTS}
        releases = {row[RELEASE] for row in self.rows if row[OP] in repoint and row[RELEASE] is not None}
        if releases:
            out.setdefault("api_release", {"insert": 0, "update": 0, "delete": 0})["update"] += len(releases)
        return dict(sorted(out.items()))

    def load_rows(self) -> Iterator[tuple[Any, ...]]:
        """The rows of ``ca_plan`` (:data:`repairs.statements.PLAN_COLUMNS` order)."""
        ops = [(kind, tbl, repair == "undo") for repair, kind, tbl in self.ops]
        apps = [uuid for uuid, _ in self.apps]
        images = {k: json.dumps(v, sort_keys=True) for k, v in self.images.items()}
        for r in self.rows:
            post = (r[POST_FP], r[RELEASE_POST_FP]) if len(r) > PLAN_WIDTH else (None, None)
            current = r[CURRENT_CREATED] if len(r) > CURRENT_CREATED else None
            kind, tbl, undo = ops[r[OP]]
            yield (r[ID], kind, tbl, apps[r[APP]], r[ROW], r[FP], r[NEW_UUID], r[NEW_CREATED], r[RELEASE],
                   r[RELEASE_FP], images.get(r[ID]), *post, undo, current)

    def only_apps(self, keep: set[str]) -> ActionTable:
        """The actions of the apps whose uuids are in ``keep`` (same ids, same tables)."""
        keep_index = {i for i, (uuid, _) in enumerate(self.apps) if uuid in keep}
        rows = [r for r in self.rows if r[APP] in keep_index]
        ids = {r[ID] for r in rows}
        return ActionTable(ops=self.ops, apps=self.apps, whys=self.whys, rows=rows,
                           images={k: v for k, v in self.images.items() if k in ids})

    def to_json(self) -> dict[str, Any]:
        """The actions as a plan file stores them."""
        return {"fields": list(FIELDS[:PLAN_WIDTH]), "ops": [list(op) for op in self.ops],
                "apps": [list(app) for app in self.apps], "whys": self.whys, "rows": self.rows,
                "images": {str(k): v for k, v in self.images.items()}}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ActionTable:
        """Inverse of :meth:`to_json`; raises ValueError on rows that do not fit the tables."""
        if list(doc["fields"]) != list(FIELDS[:PLAN_WIDTH]):
            raise ValueError(f"unknown action fields {doc['fields']!r}")
        table = cls(ops=[(str(r), str(k), str(t)) for r, k, t in doc["ops"]],
                    apps=[(str(u), n) for u, n in doc["apps"]], whys=list(doc["whys"]), rows=doc["rows"],
                    images={int(k): v for k, v in doc.get("images", {}).items()})
        n_ops, n_apps, n_whys = len(table.ops), len(table.apps), len(table.whys)
        ids: set[int] = set()
        for row in table.rows:
            if (len(row) != PLAN_WIDTH or not all(isinstance(row[i], int) for i in (ID, OP, APP, WHY))
                    or not 0 <= row[OP] < n_ops or not 0 <= row[APP] < n_apps or not 0 <= row[WHY] < n_whys):
                raise ValueError(f"action row {str(row)[:80]} does not fit the plan's tables")
            if row[ID] in ids:
                raise ValueError(f"action id {row[ID]} appears twice")
            ids.add(row[ID])
        return table
