"""App histories the picture tests draw (written with the test bed's data builder)."""

from __future__ import annotations

from dataclasses import dataclass

from tests.conftest import ControllerDB


@dataclass
class Story:
    """What the pictures must show of one app."""

    name: str
    releases: int
    references: int  # config_id + non-null build_id of the app's releases
    live_version: int
    failed_versions: list[int]
    rollback_version: int | None
    orphan: str | None  # uuid of an orphan build
    shared_config: str | None  # uuid of a config used by several releases


def counts(db: ControllerDB, name: str) -> tuple[int, int]:
    """Releases of app ``name`` and their references (config + non-null build)."""
    row = db.conn.execute(
        "SELECT count(*), count(r.config_id) + count(r.build_id) FROM api_release r"
        " JOIN api_app a ON a.uuid = r.app_id WHERE a.id = %s", (name,)).fetchone()
    assert row is not None
    return row[0], row[1]


def rolled_back(db: ControllerDB, name: str = "api") -> Story:
    """v1 create, v2 push, v3 config:set, v4 push, v5 rollback to v3 (live), v6 failed push, then an
    orphan build, which is the newest build: what ``build_set.latest()`` returns."""
    app = db.controller().create_app(name)
    app.push(image=f"{name}:1")
    third = app.config_set(A="1")
    app.push(image=f"{name}:2")
    app.rollback(3)
    app.failed_push(image=f"{name}:3")
    orphan = app.orphan_build(image=f"{name}:never-released")
    releases, references = counts(db, name)
    return Story(name, releases, references, live_version=5, failed_versions=[6], rollback_version=5,
                 orphan=orphan, shared_config=third.config)


def repairable(db: ControllerDB, name: str = "web") -> Story:
    """Needs all three repairs: a rollback sharing rows (unshare), a failed ``config:set`` whose
    config is the newest while the live release owns its config (restore-latest re-dates it),
    and an orphan build (prune)."""
    app = db.controller().create_app(name)
    app.push(image=f"{name}:1")
    app.config_set(A="1")
    app.push(image=f"{name}:2")
    app.rollback(2)  # v5 shares v2's config (v1's) and build
    app.config_set(B="2")  # v6, live, its own config
    app.failed_config_set(C="3")  # v7 failed: its config is config_set.latest()
    orphan = app.orphan_build(image=f"{name}:never-released")
    first = app.release(1)
    releases, references = counts(db, name)
    return Story(name, releases, references, live_version=6, failed_versions=[7], rollback_version=5,
                 orphan=orphan, shared_config=first.config)
