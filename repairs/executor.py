"""Apply a set of actions in ONE verified transaction (used by ``apply`` and ``undo``).

Order inside the transaction: timeouts; load the actions (COPY); lock every row they read or
change (``SELECT ... FOR UPDATE``); compare fingerprints (stale: refuse, nothing changed);
snapshot what the invariants compare against; read the pre-images; change (set-based); check
deferred constraints and every invariant; read the post-image fingerprints and let the
recorder write the undo file; then COMMIT - or ROLLBACK for a rehearsal or on any failure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

import psycopg
from psycopg import sql

from auditor.connection import Target, connect, set_timeouts
from auditor.detect import Generation, detect
from auditor.errors import AuditorError, PlanRefused, RepairAborted
from repairs.identity import Identity, identify, pin_settings
from repairs.model import Action, Invariants
from repairs.statements import CONSTRAINTS_NOW, EXPECT_COLUMNS, PLAN_COLUMNS, Images, Statements

#: Privileges a repair needs: (table, privilege).
NEEDED_PRIVILEGES: tuple[tuple[str, str], ...] = (
    ("api_config", "INSERT"), ("api_config", "UPDATE"), ("api_config", "DELETE"),
    ("api_build", "INSERT"), ("api_build", "UPDATE"), ("api_build", "DELETE"), ("api_release", "UPDATE"),
)


@dataclass
class RowImages:
    """Fingerprints and JSON images of the rows an apply touched, keyed by action id."""

    release_before: dict[int, tuple[dict, str]] = field(default_factory=dict)  # (row, md5)
    row_before: dict[int, tuple[dict, str]] = field(default_factory=dict)
    release_after: dict[int, str] = field(default_factory=dict)
    copy_after: dict[int, str] = field(default_factory=dict)
    row_after: dict[int, str] = field(default_factory=dict)


class Recorder(Protocol):
    """Receives the images of the rows an apply touches (the undo file)."""

    def start(self, images: RowImages) -> None:
        """Called with the pre-images, before the changes."""

    def finish(self, images: RowImages) -> None:
        """Called with the post-image fingerprints added, before COMMIT."""


@dataclass
class Outcome:
    """What an apply did (or, rehearsed, would have done)."""

    actions: int
    releases_checked: int
    rehearsed: bool
    committed: bool


class RepairSession:
    """A connection to the database a plan is applied to, checked before anything changes."""

    def __init__(self, target: Target, expected: Identity, *, what: str, statement_timeout: str,
                 lock_timeout: str, columns: dict[str, list[str]] | None = None) -> None:
        self.target = target
        self.lock_timeout = lock_timeout
        self.conn = connect(target)
        try:
            set_timeouts(self.conn, statement_timeout, lock_timeout)
            self.generation: Generation = detect(self.conn)
            self.identity = identify(self.conn, self.generation, target)
            expected.check_same(self.identity, what)
            for table, planned in (columns or {}).items():
                if tuple(planned) != self.generation.columns.get(table):
                    raise PlanRefused(f"the columns of {table} differ from the plan's: make a new plan",
                                      kind="other database")
            self._check_writable()
            self.conn.rollback()
        except BaseException:
            self.conn.close()
            raise

    def close(self) -> None:
        self.conn.close()

    def _check_writable(self) -> None:
        row = self.conn.execute(
            "SELECT pg_is_in_recovery(), current_setting('transaction_read_only'), current_user"
        ).fetchone()
        assert row is not None
        if row[0]:
            raise PlanRefused(f"{self.target.describe()} is a hot standby (in recovery): apply on the primary",
                              kind="read-only server")
        if row[1] == "on":
            raise PlanRefused(f"sessions of role {row[2]} are read-only (default_transaction_read_only): "
                              "connect as a role that may write", kind="read-only role")
        missing = [f"{priv} on {table}" for table, priv in NEEDED_PRIVILEGES
                   if not self.conn.execute("SELECT has_table_privilege(%s, %s)", (table, priv)).fetchone()[0]]
        if missing:
            raise PlanRefused(f"role {row[2]} lacks {', '.join(missing)}: connect as the controller's role",
                              kind="read-only role")

    def run(self, actions: list[Action], invariants: Invariants, *, rehearse: bool,
            recorder: Recorder | None = None) -> Outcome:
        """Apply ``actions`` in one transaction; see the module docstring for the order."""
        statements = Statements(self.generation)
        by_id = {a.id: a for a in actions}
        conn = self.conn
        committed = False
        try:
            with conn.transaction():
                conn.execute("SELECT set_config('lock_timeout', %s, true)", (self.lock_timeout,))
                pin_settings(conn)
                for stmt in statements.setup:
                    conn.execute(stmt)
                _load(conn, actions, invariants)
                for stmt in statements.analyze + statements.locks:
                    conn.execute(stmt)
                stale = conn.execute(statements.stale).fetchall()
                if stale:
                    raise PlanRefused(_problems(stale, by_id) + "; nothing was changed: make a new plan",
                                      kind="stale plan")
                for stmt in statements.snapshot:
                    conn.execute(stmt)
                images = RowImages()
                if recorder is not None:
                    _read_images(conn, Images().before, images, before=True)
                    recorder.start(images)
                for stmt in statements.changes:
                    conn.execute(stmt)
                conn.execute(CONSTRAINTS_NOW)
                problems = conn.execute(statements.invariants).fetchall()
                if problems:
                    raise RepairAborted("invariant broken, rolled back: " + _problems(problems, by_id),
                                        kind="invariant broken")
                checked = conn.execute("SELECT count(*) FROM ca_before").fetchone()
                if recorder is not None:
                    _read_images(conn, Images().after, images, before=False)
                    recorder.finish(images)
                if rehearse:
                    raise psycopg.Rollback()
            committed = not rehearse
        except AuditorError:
            raise
        except psycopg.errors.LockNotAvailable:
            raise RepairAborted(f"lock conflict: another session holds rows this plan changes (lock_timeout "
                                f"{self.lock_timeout}); stop the controller or retry; nothing was changed",
                                kind="lock conflict") from None
        except psycopg.errors.QueryCanceled:
            raise RepairAborted("statement_timeout reached; nothing was changed (raise --statement-timeout)",
                                kind="timeout") from None
        except psycopg.Error as exc:
            reason = " ".join(self.target.redact(str(exc)).split())
            raise RepairAborted(f"{type(exc).__name__}: {reason}; rolled back, nothing was changed") from None
        return Outcome(len(actions), int(checked[0]) if checked else 0, rehearse, committed)


def _load(conn: psycopg.Connection, actions: list[Action], invariants: Invariants) -> None:
    """COPY the actions and the invariant apps into the temporary tables."""
    plan_copy = sql.SQL("COPY ca_plan ({}) FROM STDIN").format(
        sql.SQL(", ").join(sql.Identifier(c) for c, _ in PLAN_COLUMNS))
    with conn.cursor() as cur:
        with cur.copy(plan_copy) as copy:
            for row in plan_rows(actions):
                copy.write_row(row)
        expect_copy = sql.SQL("COPY ca_expect ({}) FROM STDIN").format(
            sql.SQL(", ").join(sql.Identifier(c) for c, _ in EXPECT_COLUMNS))
        with cur.copy(expect_copy) as copy:
            for row in invariants.rows():
                copy.write_row(row)


def plan_rows(actions: list[Action]) -> list[tuple]:
    """The rows of ``ca_plan``, in :data:`repairs.statements.PLAN_COLUMNS` order."""
    return [
        (a.id, a.repair, a.kind, a.table, a.app_uuid, a.row, a.fingerprint, a.new_uuid, a.new_created, a.release,
         a.release_fingerprint, None if a.image is None else json.dumps(a.image, sort_keys=True),
         a.post_fingerprint, a.release_post_fingerprint)
        for a in actions
    ]


def _read_images(conn: psycopg.Connection, queries: list[tuple[str, str]], images: RowImages, *, before: bool) -> None:
    for what, query in queries:
        row = conn.execute(query).fetchone()
        assert row is not None
        for action, image, fingerprint in row[0]:
            if before:
                target = images.release_before if what == "release" else images.row_before
                target[action] = (image, fingerprint)
            elif what == "release":
                images.release_after[action] = fingerprint
            elif what == "copy":
                images.copy_after[action] = fingerprint
            else:
                images.row_after[action] = fingerprint


def _problems(rows: list[tuple], by_id: dict[int, Action]) -> str:
    shown = []
    for action, problem in rows[:5]:
        where = by_id[action].describe() if action in by_id else ""
        shown.append(f"{where}: {problem}" if where else problem)
    more = f" (and {len(rows) - 5} more)" if len(rows) > 5 else ""
    return "; ".join(shown) + more
