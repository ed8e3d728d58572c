"""What a repair changes: actions on rows, refusals, and the invariants to verify afterwards.

An :class:`Action` is one row-level change a person reviews.  Forward plans use the kinds
``copy`` (insert a per-release copy of a shared row and point the release at it), ``redate``
(change a row's ``created``: a config or build, or with ``release-order`` a release) and
``prune`` (delete an orphan).  Undo uses ``uncopy`` (point the
release back at the original and delete the copy), ``redate`` (back to the old ``created``)
and ``reinsert`` (insert a pruned row from its recorded image).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Every repair, in the order that makes them compose: defined with the checks that name them.
from auditor.core.catalogue import REPAIRS as REPAIRS

#: What ``plan`` runs without ``--repair``.  ``release-order`` is opt-in: it re-dates releases,
#: which may change which release the controller considers live.
DEFAULT_REPAIRS: tuple[str, ...] = ("prune-orphans", "unshare", "restore-latest")

#: The tables repairs touch, and the release column that points at each.
POINTER: dict[str, str] = {"api_config": "config_id", "api_build": "build_id"}

#: Kinds, and how each changes its table's row count.
ROW_DELTA: dict[str, int] = {"copy": 1, "redate": 0, "prune": -1, "uncopy": -1, "reinsert": 1}
#: Kinds that change a release's pointer (to ``new_uuid``).
REPOINTS: frozenset[str] = frozenset({"copy", "uncopy"})


def kind_of(table: str) -> str:
    """``config`` for api_config, ``build`` for api_build."""
    return table.removeprefix("api_")


@dataclass
class Action:
    """One planned change of one row (and, for copies, of one release's pointer)."""

    id: int
    repair: str
    kind: str
    table: str
    app_uuid: str
    app_name: str | None
    row: str  # the row changed, deleted, re-inserted, or copied from
    fingerprint: str | None  # md5 of the row's text now (None: the row must not exist)
    why: str
    release: str | None = None
    release_version: int | None = None
    release_fingerprint: str | None = None
    new_uuid: str | None = None  # copy: the copy's uuid; uncopy: the row the release points back at
    new_created: str | None = None  # ISO 8601 with microseconds
    image: dict[str, Any] | None = None  # full row (prune, reinsert)
    post_fingerprint: str | None = None  # md5 the row must have afterwards (undo)
    release_post_fingerprint: str | None = None

    def describe(self) -> str:
        """``#3 unshare: web v5 copy config 1b2c...`` - how messages name the action."""
        app = self.app_name or self.app_uuid
        where = f"{app} v{self.release_version}" if self.release_version is not None else app
        return f"#{self.id} {self.repair}: {where} {self.kind} {kind_of(self.table)} {self.row}"

    def to_json(self) -> dict[str, Any]:
        """The action as one JSON object (the plan file stores compact rows: :mod:`repairs.actions`)."""
        reads: list[dict[str, str | None]] = []
        if self.fingerprint is not None:
            reads.append({"table": self.table, "uuid": self.row, "fingerprint": self.fingerprint})
        if self.release is not None:
            reads.append({"table": "api_release", "uuid": self.release, "fingerprint": self.release_fingerprint})
        doc: dict[str, Any] = {
            "id": self.id, "repair": self.repair, "kind": self.kind, "table": self.table,
            "app": {"uuid": self.app_uuid, "name": self.app_name}, "row": self.row,
            "release": None if self.release is None else {"uuid": self.release, "version": self.release_version},
            "new": None if self.new_uuid is None and self.new_created is None
            else {"uuid": self.new_uuid, "created": self.new_created},
            "why": self.why, "reads": reads,
        }
        if self.image is not None:
            doc["image"] = self.image
        if self.post_fingerprint is not None or self.release_post_fingerprint is not None:
            doc["expect_after"] = {"row": self.post_fingerprint, "release": self.release_post_fingerprint}
        return doc


@dataclass(frozen=True)
class Refusal:
    """A repair the planner would not plan, and why (cross-app, dangling, in flight...)."""

    repair: str
    table: str
    app_uuid: str
    app_name: str | None
    row: str | None
    why: str

    def to_json(self) -> dict[str, Any]:
        return {"repair": self.repair, "table": self.table, "app": {"uuid": self.app_uuid, "name": self.app_name},
                "row": self.row, "why": self.why}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Refusal:
        return cls(doc["repair"], doc["table"], doc["app"]["uuid"], doc["app"].get("name"), doc.get("row"),
                   doc["why"])


@dataclass
class Invariants:
    """Apps whose state after the change is checked beyond the universal invariants."""

    unshared: list[str] = field(default_factory=list)  # no config/build used by two releases
    latest_config: list[str] = field(default_factory=list)  # config_set.latest() is the live release's
    latest_build: list[str] = field(default_factory=list)  # build_set.latest() is the live release's
    #: the highest version is strictly the newest release, the live release unambiguous
    release_order: list[str] = field(default_factory=list)

    #: The fields, as the plan file names them.
    FIELDS = (("unshared", "unshared_apps"), ("latest_config", "latest_config_apps"),
              ("latest_build", "latest_build_apps"), ("release_order", "release_order_apps"))

    def to_json(self) -> dict[str, list[str]]:
        doc = {"unshared_apps": self.unshared, "latest_config_apps": self.latest_config,
               "latest_build_apps": self.latest_build}
        if self.release_order:  # written only when release-order planned something: other plans stay as they were
            doc["release_order_apps"] = self.release_order
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Invariants:
        return cls(list(doc.get("unshared_apps", [])), list(doc.get("latest_config_apps", [])),
                   list(doc.get("latest_build_apps", [])), list(doc.get("release_order_apps", [])))

    def rows(self) -> list[tuple[str, str]]:
        """``(invariant, app uuid)`` pairs, as loaded into the transaction."""
        return [(name, app) for name, _ in self.FIELDS for app in getattr(self, name)]


def expected_changes(actions: list[Action]) -> dict[str, dict[str, int]]:
    """Rows inserted, updated and deleted per table, as the actions imply."""
    out: dict[str, dict[str, int]] = {}

    def bump(table: str, what: str) -> None:
        out.setdefault(table, {"insert": 0, "update": 0, "delete": 0})[what] += 1

    releases: set[str] = set()
    for action in actions:
        delta = ROW_DELTA[action.kind]
        bump(action.table, "insert" if delta > 0 else "delete" if delta < 0 else "update")
        if action.kind in REPOINTS and action.release is not None and action.release not in releases:
            releases.add(action.release)
            bump("api_release", "update")
    return dict(sorted(out.items()))
