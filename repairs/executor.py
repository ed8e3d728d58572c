"""Apply a set of actions in ONE verified transaction (used by ``apply`` and ``undo``).

Order inside the transaction: timeouts; load the actions (COPY); lock every row they read or
change (``SELECT ... FOR NO KEY UPDATE``); compare fingerprints (stale: refuse, nothing changed);
snapshot what the invariants compare against; read the pre-images; change (set-based); check
deferred constraints and every invariant; read the post-image fingerprints and let the
recorder write the undo file; then COMMIT - or ROLLBACK for a rehearsal or on any failure.
No step does work per row in Python: rows are streamed into COPY, read back as one text value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from psycopg import sql

from auditor.connection import Target, connect, set_timeouts
from auditor.detect import Generation, detect
from auditor.errors import AuditorError, PlanRefused, RepairAborted
from repairs.actions import ActionTable
from repairs.identity import Identity, identify, pin_settings
from repairs.model import Invariants
from repairs.statements import CONSTRAINTS_NOW, EXPECT_COLUMNS, PLAN_COLUMNS, Images, Statements

#: Privileges a repair needs: (table, privilege).
NEEDED_PRIVILEGES: tuple[tuple[str, str], ...] = (
    ("api_config", "INSERT"), ("api_config", "UPDATE"), ("api_config", "DELETE"),
    ("api_build", "INSERT"), ("api_build", "UPDATE"), ("api_build", "DELETE"), ("api_release", "UPDATE"),
)


@dataclass
class RowImages:
    """What the undo file records beyond the plan: read from the database, keyed by action id."""

    row_before: dict[int, tuple[dict[str, Any], str]] = field(default_factory=dict)  # re-dated/pruned: (row, md5)
    row_after: dict[int, str] = field(default_factory=dict)  # re-dated: md5
    copies_after: str = "[]"  # JSON text: [[action, md5 of the copy, md5 of its release], ...]


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
            self.conn.commit()  # session settings: the rollback below would otherwise undo them
            self.generation: Generation = detect(self.conn)
            self.identity = identify(self.conn, self.generation, target)
            expected.check_same(self.identity, what)
            for table, planned in (columns or {}).items():
                if tuple(planned) != self.generation.columns.get(table):
                    raise PlanRefused(f"the columns of {table} differ from the plan's: make a new plan",
                                      kind="other database")
            self._check_writable()
            self.conn.rollback()
        except psycopg.errors.QueryCanceled:
            self.conn.close()
            raise RepairAborted("statement_timeout reached while checking the database, before any change; "
                                "nothing was changed (raise --statement-timeout)", kind="timeout") from None
        except psycopg.errors.LockNotAvailable:
            self.conn.close()
            raise RepairAborted(f"lock_timeout {self.lock_timeout} reached while checking the database, before any "
                                "change; nothing was changed (retry, or stop the session holding the lock)",
                                kind="lock conflict") from None
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

    def run(self, actions: ActionTable, invariants: Invariants, *, rehearse: bool,
            recorder: Recorder | None = None) -> Outcome:
        """Apply ``actions`` in one transaction; see the module docstring for the order."""
        statements = Statements(self.generation)
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
                    raise PlanRefused(_problems(stale, actions) + "; nothing was changed: make a new plan",
                                      kind="stale plan")
                for stmt in statements.snapshot:
                    conn.execute(stmt)
                images = RowImages()
                if recorder is not None:
                    images.row_before = {a: (row, fp) for a, row, fp in _json_value(conn, Images().rows_before)}
                    recorder.start(images)
                for stmt in statements.changes:
                    conn.execute(stmt)
                conn.execute(CONSTRAINTS_NOW)
                problems = conn.execute(statements.invariants).fetchall()
                if problems:
                    raise RepairAborted("rolled back, nothing was changed: " + _problems(problems, actions),
                                        kind="invariant broken")
                checked = conn.execute("SELECT count(*) FROM ca_before").fetchone()
                if recorder is not None:
                    images.row_after = {a: fp for a, _, fp in _json_value(conn, Images().rows_after)}
                    images.copies_after = _text_value(conn, Images().copies_after)
                    recorder.finish(images)
                if rehearse:
                    raise psycopg.Rollback()
            committed = not rehearse
        except AuditorError:
            raise
        except psycopg.errors.LockNotAvailable:
            raise RepairAborted(f"another session holds rows this plan changes (lock_timeout "
                                f"{self.lock_timeout}); stop the controller or retry; nothing was changed",
                                kind="lock conflict") from None
        except psycopg.errors.QueryCanceled:
            raise RepairAborted("statement_timeout reached; nothing was changed (raise --statement-timeout)",
                                kind="timeout") from None
        except psycopg.Error as exc:
            reason = " ".join(self.target.redact(str(exc)).split())
            raise RepairAborted(f"{type(exc).__name__}: {reason}; rolled back, nothing was changed") from None
        return Outcome(len(actions), int(checked[0]) if checked else 0, rehearse, committed)


def _load(conn: psycopg.Connection, actions: ActionTable, invariants: Invariants) -> None:
    """COPY the actions and the invariant apps into the temporary tables."""
    plan_copy = sql.SQL("COPY ca_plan ({}) FROM STDIN").format(
        sql.SQL(", ").join(sql.Identifier(c) for c, _ in PLAN_COLUMNS))
    with conn.cursor() as cur:
        with cur.copy(plan_copy) as copy:
            for row in actions.load_rows():
                copy.write_row(row)
        expect_copy = sql.SQL("COPY ca_expect ({}) FROM STDIN").format(
            sql.SQL(", ").join(sql.Identifier(c) for c, _ in EXPECT_COLUMNS))
        with cur.copy(expect_copy) as copy:
            for row in invariants.rows():
                copy.write_row(row)


def _text_value(conn: psycopg.Connection, query: str) -> str:
    """The one text value ``query`` returns."""
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def _json_value(conn: psycopg.Connection, query: str) -> Any:
    """The one JSON text value ``query`` returns, parsed."""
    return json.loads(_text_value(conn, query))


def _problems(rows: list[tuple], actions: ActionTable) -> str:
    shown = []
    for action_id, problem in rows[:5]:
        action = actions.find(action_id) if action_id is not None else None
        where = action.describe() if action is not None else ""
        shown.append(f"{where}: {problem}" if where else problem)
    more = f" (and {len(rows) - 5} more)" if len(rows) > 5 else ""
    return "; ".join(shown) + more
