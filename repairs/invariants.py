"""The invariants ``apply`` verifies, computed from the actions themselves (never read from the file).

* **unshared**: every app with a copy - no row of the app is used by two of its releases afterwards;
* **latest()**: every app with a re-date of that table (restore-latest's only purpose) and, when
  the plan includes restore-latest, every app the plan touches - except the apps for which
  restore-latest recorded why it could not fix that table (a live release without a build, a
  deploy in flight, a dangling or cross-app row: :mod:`repairs.restore_latest`).  A refusal can
  only spare an app the plan does not re-date.  Apps with a copy dated after its release get
  the check in SQL too (:attr:`repairs.statements.Statements.expect`).
* **release order**: every app with a re-dated release (release-order's only action) - its
  highest version is strictly the newest release by ``created``, its live release unambiguous.

A plan file that drops or empties its ``invariants`` member changes nothing: that member is
written for the reader only.
"""

from __future__ import annotations

from collections.abc import Iterable

from repairs.actions import ActionTable
from repairs.model import Invariants, Refusal

RESTORE_LATEST = "restore-latest"


def derive(actions: ActionTable, repairs: Iterable[str] = (), refusals: Iterable[Refusal] = ()) -> Invariants:
    """The invariants of a plan (undo files: none beyond the universal ones and the row images)."""
    if any(repair == "undo" for repair, _, _ in actions.ops):
        return Invariants()
    by_kind: dict[tuple[str, str], set[int]] = {}
    for row in actions.rows:
        _, kind, table = actions.ops[row.op]
        by_kind.setdefault((kind, table), set()).add(row.app)

    def apps(indexes: Iterable[int]) -> set[str]:
        return {actions.apps[i][0] for i in indexes}

    touched = apps(i for indexes in by_kind.values() for i in indexes)
    copied = apps(i for (kind, _), indexes in by_kind.items() if kind == "copy" for i in indexes)
    latest: dict[str, set[str]] = {}
    for table in ("api_config", "api_build"):
        wanted = apps(by_kind.get(("redate", table), ()))
        if RESTORE_LATEST in set(repairs):
            spared = {r.app_uuid for r in refusals if r.repair == RESTORE_LATEST and r.table == table}
            wanted |= touched - (spared - wanted)
        latest[table] = wanted
    ordered = apps(by_kind.get(("redate", "api_release"), ()))
    return Invariants(unshared=sorted(copied), latest_config=sorted(latest["api_config"]),
                      latest_build=sorted(latest["api_build"]), release_order=sorted(ordered))
