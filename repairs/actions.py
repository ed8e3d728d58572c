"""Actions stored compactly: one row of scalars per action, repeated strings kept once.

A plan or undo can hold hundreds of thousands of actions.  An :class:`ActionTable` keeps each
as a short named row (:class:`ActionRow`) whose ``op``, ``app`` and ``why`` are indexes into small
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
from operator import attrgetter
from typing import Any, NamedTuple

from repairs.model import REPOINTS, ROW_DELTA, Action


class ActionRow(NamedTuple):
    """One action, compact: ``op``, ``app`` and ``why`` are indexes into the table's lists.  Plans
    store the first :data:`PLAN_WIDTH` fields as a JSON array; undo actions (built in memory from an
    undo file) also carry the fingerprints their rows must have afterwards and, for a re-date, the
    ``created`` the row must have now."""

    id: int
    op: int
    app: int
    row: str
    fingerprint: str | None
    release: str | None
    release_version: int | None
    release_fingerprint: str | None
    new_uuid: str | None
    new_created: str | None
    why: int
    post_fingerprint: str | None = None
    release_post_fingerprint: str | None = None
    current_created: str | None = None


_OP, _APP, _RELEASE = attrgetter("op"), attrgetter("app"), attrgetter("release")
#: The fields of an action row, in order (the plan file names them).
FIELDS: tuple[str, ...] = ActionRow._fields
PLAN_WIDTH = 11


@dataclass
class ActionTable:
    """Actions as rows of :data:`FIELDS` (``op``, ``app``, ``why`` are indexes)."""

    ops: list[tuple[str, str, str]] = field(default_factory=list)  # (repair, kind, table)
    apps: list[tuple[str, str | None]] = field(default_factory=list)  # (uuid, name)
    whys: list[str] = field(default_factory=list)
    rows: list[ActionRow] = field(default_factory=list)
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
            table.rows.append(ActionRow(a.id, op, app, a.row, a.fingerprint, a.release, a.release_version,
                                        a.release_fingerprint, a.new_uuid, a.new_created, why, a.post_fingerprint,
                                        a.release_post_fingerprint))
            if a.image is not None:
                table.images[a.id] = a.image
        table.ops = list(ops)
        table.whys = list(whys)
        return table

    def action(self, row: ActionRow) -> Action:
        """One row as an :class:`Action`."""
        repair, kind, tbl = self.ops[row.op]
        app_uuid, app_name = self.apps[row.app]
        return Action(id=row.id, repair=repair, kind=kind, table=tbl, app_uuid=app_uuid, app_name=app_name,
                      row=row.row, fingerprint=row.fingerprint, why=self.whys[row.why], release=row.release,
                      release_version=row.release_version, release_fingerprint=row.release_fingerprint,
                      new_uuid=row.new_uuid, new_created=row.new_created, image=self.images.get(row.id),
                      post_fingerprint=row.post_fingerprint, release_post_fingerprint=row.release_post_fingerprint)

    def find(self, action_id: int) -> Action | None:
        """The action with this id (ids are 1..n in order; any order is searched)."""
        if 0 < action_id <= len(self.rows) and self.rows[action_id - 1].id == action_id:
            return self.action(self.rows[action_id - 1])
        return next((self.action(r) for r in self.rows if r.id == action_id), None)

    def app_uuids(self) -> set[str]:
        """The apps the actions touch."""
        return {self.apps[i][0] for i in set(map(_APP, self.rows))}

    def pairs(self) -> frozenset[tuple[str, str]]:
        """The ``(table, kind)`` pairs of the actions (what :func:`repairs.statements.needed` reads)."""
        return frozenset((self.ops[op][2], self.ops[op][1]) for op in set(map(_OP, self.rows)))

    def repair_counts(self) -> Counter[str]:
        """Actions per repair."""
        per_op = Counter(map(_OP, self.rows))
        out: Counter[str] = Counter()
        for op, n in per_op.items():
            out[self.ops[op][0]] += n
        return out

    def expected_changes(self) -> dict[str, dict[str, int]]:
        """Rows inserted, updated and deleted per table (as :func:`repairs.model.expected_changes`)."""
        out: dict[str, dict[str, int]] = {}
        per_op = Counter(map(_OP, self.rows))  # map over an attrgetter: no Python frame per row
        for op, n in per_op.items():
            _, kind, tbl = self.ops[op]
            delta = ROW_DELTA[kind]
            what = "insert" if delta > 0 else "delete" if delta < 0 else "update"
            out.setdefault(tbl, {"insert": 0, "update": 0, "delete": 0})[what] += n
        repoint = {i for i, (_, kind, _) in enumerate(self.ops) if kind in REPOINTS}
        repointing = self.rows if per_op.keys() <= repoint else [r for r in self.rows if r.op in repoint]
        releases = set(map(_RELEASE, repointing)) - {None}
        if releases:
            out.setdefault("api_release", {"insert": 0, "update": 0, "delete": 0})["update"] += len(releases)
        return dict(sorted(out.items()))

    def load_rows(self) -> Iterator[tuple[Any, ...]]:
        """The rows of ``ca_plan`` (:data:`repairs.statements.PLAN_COLUMNS` order)."""
        ops = [(kind, tbl, repair == "undo") for repair, kind, tbl in self.ops]
        apps = [uuid for uuid, _ in self.apps]
        images = {k: json.dumps(v, sort_keys=True) for k, v in self.images.items()}
        for r in self.rows:
            kind, tbl, undo = ops[r.op]
            yield (r.id, kind, tbl, apps[r.app], r.row, r.fingerprint, r.new_uuid, r.new_created, r.release,
                   r.release_fingerprint, images.get(r.id), r.post_fingerprint, r.release_post_fingerprint, undo,
                   r.current_created)

    def only_apps(self, keep: set[str]) -> ActionTable:
        """The actions of the apps whose uuids are in ``keep`` (same ids, same tables)."""
        keep_index = {i for i, (uuid, _) in enumerate(self.apps) if uuid in keep}
        rows = [r for r in self.rows if r.app in keep_index]
        ids = {r.id for r in rows}
        return ActionTable(ops=self.ops, apps=self.apps, whys=self.whys, rows=rows,
                           images={k: v for k, v in self.images.items() if k in ids})

    def to_json(self) -> dict[str, Any]:
        """The actions as a plan file stores them."""
        return {"fields": list(FIELDS[:PLAN_WIDTH]), "ops": [list(op) for op in self.ops],
                "apps": [list(app) for app in self.apps], "whys": self.whys,
                "rows": [list(row[:PLAN_WIDTH]) for row in self.rows],
                "images": {str(k): v for k, v in self.images.items()}}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ActionTable:
        """Inverse of :meth:`to_json`; raises ValueError on rows that do not fit the tables."""
        if list(doc["fields"]) != list(FIELDS[:PLAN_WIDTH]):
            raise ValueError(f"unknown action fields {doc['fields']!r}")
        table = cls(ops=[(str(r), str(k), str(t)) for r, k, t in doc["ops"]],
                    apps=[(str(u), n) for u, n in doc["apps"]], whys=list(doc["whys"]),
                    images={int(k): v for k, v in doc.get("images", {}).items()})
        n_ops, n_apps, n_whys = len(table.ops), len(table.apps), len(table.whys)
        rows = doc["rows"]
        if not isinstance(rows, list):
            raise ValueError("the plan's action rows are not a list")
        append = table.rows.append
        new, tail = tuple.__new__, (None,) * (len(FIELDS) - PLAN_WIDTH)  # NamedTuple's __new__ costs 3 us a row
        for raw in rows:  # one pass, no per-row helpers: a plan holds hundreds of thousands of rows
            if type(raw) is not list or len(raw) != PLAN_WIDTH:
                raise ValueError(f"action row {str(raw)[:80]} does not fit the plan's tables")
            action_id, op, app, why = raw[0], raw[1], raw[2], raw[10]
            if (type(action_id) is not int or type(op) is not int or type(app) is not int or type(why) is not int
                    or not 0 <= op < n_ops or not 0 <= app < n_apps or not 0 <= why < n_whys):
                raise ValueError(f"action row {str(raw)[:80]} does not fit the plan's tables")
            append(new(ActionRow, (*raw, *tail)))
        ids = {row.id for row in table.rows}
        if len(ids) != len(table.rows):
            seen: set[int] = set()
            for row in table.rows:
                if row.id in seen:
                    raise ValueError(f"action id {row.id} appears twice")
                seen.add(row.id)
        return table
