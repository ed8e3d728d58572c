"""The demo's controller database: seven apps and the damage real ones carry, in two acts.

The first act is the damage a team has lived with for a while (what its nightly job has
accepted in a baseline); the second is tonight's: a push handled by a controller replica
whose clock ran behind, after which no deploy of the app gets through.  Every row is what
the controller itself writes (:mod:`auditor.testbed.builder`); what each damage breaks is
``../shared/controller-schema.md`` section 8, as the checks' severities say per generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import psycopg

from auditor.testbed.builder import App, Controller

#: The apps the walkthrough looks at, by role.
POISONED = "shop"
ROLLED_BACK = "payments"
ORPHAN_BUILD = "checkout"
OUT_OF_ORDER = "search"


@dataclass
class Story:
    """The story being written into one database (the builder keeps its clock)."""

    ctl: Controller
    out_of_order: App

    @property
    def conn(self) -> psycopg.Connection:
        return self.ctl.conn

    def names(self) -> dict[str, str]:
        """The apps the walkthrough looks at, and the config the rolled-back app's live release shares."""
        row = self.conn.execute(
            "SELECT r.config_id::text FROM api_release r JOIN api_app a ON a.uuid = r.app_id "
            "WHERE a.id = %s ORDER BY r.version DESC LIMIT 1", (ROLLED_BACK,)).fetchone()
        assert row is not None
        return {"poisoned": POISONED, "rolled_back": ROLLED_BACK, "orphan_build": ORPHAN_BUILD,
                "shared_config": row[0], "out_of_order": OUT_OF_ORDER}


def write_known_damage(conn: psycopg.Connection) -> Story:
    """Act one: healthy apps, a failed deploy's leftovers, a rollback, widely shared configs and
    an orphan build; the app of act two is still healthy."""
    ctl = Controller(conn)
    for name in ("billing", "frontend"):
        app = ctl.create_app(name, owner="alice")
        app.push(image=f"registry.local/{name}:1.0")
        app.config_set(LOG_LEVEL="info")
        app.push(image=f"registry.local/{name}:1.1")
    worker = ctl.create_app("worker", owner="bob")
    worker.config_set(QUEUE_URL="amqp://queue:5672", CONCURRENCY="4")
    for n in range(1, 9):
        worker.push(image=f"registry.local/worker:{n}.0")
    shop = ctl.create_app(POISONED, owner="carol")
    shop.push(image="registry.local/shop:1.0")
    shop.config_set(DATABASE_URL="postgres://shop-db/shop", WORKERS="4")
    shop.push(image="registry.local/shop:1.1")
    # A config:set whose deploy failed: the new config outlives its release (old Deis) or
    # stays with a failed release (Deis 2.7+, Hephy). Either way config_set.latest() returns it,
    # and every controller restart re-saves it (boot's load_db_state_to_k8s).
    shop.failed_config_set(WORKERS="64", DEBUG="true")
    payments = ctl.create_app(ROLLED_BACK, owner="dave")
    payments.push(image="registry.local/payments:2.0")
    payments.config_set(FEATURE_FLAGS="search")
    payments.push(image="registry.local/payments:2.1-broken")
    payments.rollback(3)
    checkout = ctl.create_app(ORPHAN_BUILD, owner="alice")
    checkout.push(image="registry.local/checkout:1.0")
    checkout.orphan_build(image="registry.local/checkout:1.1-never-released")
    search = ctl.create_app(OUT_OF_ORDER, owner="erin")
    search.push(image="registry.local/search:1.0")
    search.config_set(SHARDS="3")
    return Story(ctl, search)


def write_tonights_damage(story: Story) -> None:
    """Act two: a controller replica whose clock ran 10 minutes behind handles a push of the
    app: its v4 is dated before v3, so the controller (newest by created + 1) numbers every
    next release v4 again, and each config:set, push and rollback fails on UNIQUE(app_id, version)."""
    ctl = story.ctl
    story.out_of_order.push(image="registry.local/search:1.1", at=ctl.clock - timedelta(minutes=10))


def write_story(conn: psycopg.Connection) -> dict[str, str]:
    """Both acts; returns the names of the apps the walkthrough looks at (see :meth:`Story.names`)."""
    story = write_known_damage(conn)
    write_tonights_damage(story)
    return story.names()
