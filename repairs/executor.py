"""Apply a set of actions in ONE verified transaction (used by ``apply`` and ``undo``).

Before the transaction: the database identity, a hot standby or read-only role, and every
privilege the actions need (one refusal naming every missing GRANT).  Inside it: timeouts, no JIT; load
the actions (COPY); lock every row they read or change (``SELECT ... FOR NO KEY UPDATE``);
check them (fingerprints, and that each action is one the planners would make now - for an
undo, only what it restores); an app whose actions are all in effect already is skipped, and a
plan (or undo) entirely in effect is "already applied" ("already undone"); snapshot what the
invariants compare against; read the pre-images; change (set-based); check deferred constraints
and every invariant; read the re-dated rows' fingerprints and let the recorder write the undo file;
then COMMIT with a bounded wait (:mod:`repairs.commit`) - or ROLLBACK for a rehearsal or on any
failure.  Every end is one of three: committed, rolled back (nothing changed), or unknown.
No step does work per row in Python: rows are streamed into COPY, read back as one text value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from psycopg import sql

from auditor.core.connection import JIT_OFF, connect, set_timeouts
from auditor.core.detect import Generation, detect
from auditor.core.errors import (
    AuditorError,
    OutcomeUnknown,
    PlanRefused,
    RepairAborted,
    RepairInterrupted,
    interrupt_name,
)
from auditor.core.settings import Settings
from repairs import commit as committing
from repairs.actions import ActionTable
from repairs.identity import Identity, identify, pin_settings
from repairs.model import Invariants
from repairs.privileges import missing_grants
from repairs.statements import (
    CONSTRAINTS_NOW,
    EXPECT_COLUMNS,
    PARAMS_COLUMNS,
    PLAN_COLUMNS,
    Images,
    Statement,
    Statements,
    needed,
)


@dataclass
class RowImages:
    """What the undo file records beyond the plan: read from the database, keyed by action id."""

    row_before: dict[int, tuple[dict[str, Any], str]] = field(default_factory=dict)  # re-dated/pruned: (row, md5)
    row_after: dict[int, str] = field(default_factory=dict)  # re-dated: md5


class Recorder(Protocol):
    """Receives the images of the rows an apply touches (the undo file)."""

    def start(self, images: RowImages) -> None:
        """Called with the pre-images, before the changes."""

    def finish(self, images: RowImages) -> None:
        """Called with the re-dated rows' fingerprints after the change added, before COMMIT."""


@dataclass
class Skipped:
    """An app whose every action was already in effect."""

    app_uuid: str
    app_name: str | None
    actions: int


@dataclass
class Outcome:
    """What an apply did (or, rehearsed, would have done)."""

    actions: int  # actions applied (all of them but those of skipped apps)
    releases_checked: int
    rehearsed: bool
    committed: bool
    skipped: list[Skipped] = field(default_factory=list)
    note: str = ""  # e.g. committed locally, not confirmed by the synchronous standby
    interrupted: bool = False  # Ctrl-C during COMMIT, which committed nonetheless
    how: str = ""  # how the commit is known (the server's answer, txid_status(), the rows)

    @property
    def already(self) -> bool:
        """Everything was already in effect: nothing was (or would be) changed."""
        return self.actions == 0


Progress = Callable[[str], None]


class CannotUndo(PlanRefused):
    """Some actions of an undo may not run; ``undoable_apps`` names the apps that still may."""

    kind = "cannot undo"

    def __init__(self, message: str, undoable_apps: list[str]) -> None:
        super().__init__(message)
        self.undoable_apps = undoable_apps


def _quiet(stage: str) -> None:
    """No progress display."""


class RepairSession:
    """A connection to the database a plan is applied to, checked before anything changes."""

    def __init__(self, settings: Settings, expected: Identity, *, what: str,
                 columns: dict[str, list[str]] | None = None) -> None:
        self.target = target = settings.target
        self.lock_timeout = settings.lock_timeout
        self.commit_timeout = settings.commit_timeout
        self.what = what
        self.conn = connect(target)
        try:
            set_timeouts(self.conn, settings.statement_timeout, settings.lock_timeout)
            self.conn.commit()  # session settings: the rollback below would otherwise undo them
            self.generation: Generation = detect(self.conn)
            settings.announce_database(self.conn, self.generation.label)
            self.identity = identify(self.conn, self.generation, target)
            expected.check_same(self.identity, what)
            for table, planned in (columns or {}).items():
                if tuple(planned) != self.generation.columns.get(table):
                    raise PlanRefused(f"the columns of {table} differ from the {what}'s"
                                      + (": make a new plan" if what == "plan" else ""), kind="other database")
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
            "SELECT pg_is_in_recovery(), current_setting('transaction_read_only'), current_user, current_database()"
        ).fetchone()
        assert row is not None
        if row[0]:
            raise PlanRefused(f"{self.target.describe()} is a hot standby (in recovery): apply on the primary",
                              kind="read-only server")
        if row[1] == "on":
            raise PlanRefused(f"sessions of role {row[2]} are read-only (default_transaction_read_only): "
                              "connect as a role that may write", kind="read-only role")
        grants = missing_grants(self.conn, role=row[2], database=row[3])
        if grants:
            raise PlanRefused(f"role {row[2]} lacks privileges that apply and undo need; nothing was changed; "
                              f"grant them (or connect as the controller's role): {'; '.join(grants)}",
                              kind="missing privileges")

    def run(self, actions: ActionTable, invariants: Invariants, *, rehearse: bool, grace_seconds: float = 0.0,
            recorder: Recorder | None = None, progress: Progress = _quiet,
            notify: Callable[[str], None] | None = None) -> Outcome:
        """Apply ``actions`` in one transaction; see the module docstring for the order.

        Raises :class:`PlanRefused` (nothing changed), :class:`RepairAborted` (rolled back),
        :class:`RepairInterrupted` (Ctrl-C before COMMIT: rolled back), :class:`OutcomeUnknown`.
        """
        statements = Statements(self.generation)
        conn = self.conn
        try:
            prepared = self._prepare(statements, actions, invariants, grace_seconds, rehearse, recorder, progress)
            if isinstance(prepared, Outcome):
                conn.rollback()
                return prepared
            applied, checked, skipped = prepared
            if rehearse:
                conn.rollback()
                return Outcome(applied, checked, True, False, skipped)
            conn.execute(statements.cleanup)
            row = conn.execute("SELECT txid_current()").fetchone()
            assert row is not None
            txid = int(row[0])
            progress("committing")
        except AuditorError:
            self._rollback()
            raise
        except KeyboardInterrupt:
            self._rollback()
            raise RepairInterrupted(f"{interrupt_name()} before COMMIT: rolled back, nothing was changed") from None
        except psycopg.errors.LockNotAvailable:
            self._rollback()
            raise RepairAborted(f"another session holds rows this {self.what} changes (lock_timeout "
                                f"{self.lock_timeout}); stop the controller or retry; nothing was changed",
                                kind="lock conflict") from None
        except psycopg.errors.QueryCanceled:
            self._rollback()
            raise RepairAborted("statement_timeout reached; nothing was changed (raise --statement-timeout)",
                                kind="timeout") from None
        except psycopg.Error as exc:
            self._rollback()
            reason = " ".join(self.target.redact(str(exc)).split())
            raise RepairAborted(f"{type(exc).__name__}: {reason}; rolled back, nothing was changed") from None
        try:
            settled = committing.commit(conn, self.target, txid, timeout=self.commit_timeout, notify=notify or _quiet,
                                        verdict=lambda c: self._row_verdict(c, actions, grace_seconds))
        except KeyboardInterrupt:
            settled = committing.Settled(committing.UNKNOWN, "interrupted while finding out", interrupted=True)
        return self._outcome(settled, applied, checked, skipped)

    def _outcome(self, settled: committing.Settled, applied: int, checked: int, skipped: list[Skipped]) -> Outcome:
        if settled.state == committing.COMMITTED:
            return Outcome(applied, checked, False, True, skipped, settled.note, settled.interrupted, settled.how)
        if settled.state == committing.ROLLED_BACK:
            message = f"COMMIT did not succeed ({settled.how}): rolled back, nothing was changed"
            if settled.interrupted:
                raise RepairInterrupted(f"{interrupt_name()} during COMMIT; " + message)
            raise RepairAborted(message, kind="commit failed")
        raise OutcomeUnknown((f"{interrupt_name()} during COMMIT" if settled.interrupted else "the answer to COMMIT was lost")
                             + f" and whether it committed is unknown: {settled.how}")

    def _rollback(self) -> None:
        try:
            self.conn.rollback()
        except (psycopg.Error, KeyboardInterrupt):
            self.conn.close()  # a transaction that never saw COMMIT ends in a rollback

    def _prepare(self, statements: Statements, actions: ActionTable, invariants: Invariants, grace_seconds: float,
                 rehearse: bool, recorder: Recorder | None, progress: Progress) -> Outcome | tuple[int, int, list]:
        """Everything up to COMMIT; an :class:`Outcome` when every action is already in effect."""
        conn = self.conn
        # No JIT: the set-based statements over every planned row pass jit_above_cost, and compiling
        # them cost more than it won (the 250k unshare on Debian's PostgreSQL 15: docs/benchmark.md, 16s)
        conn.execute("SELECT set_config('lock_timeout', %s, true), " + JIT_OFF, (self.lock_timeout,))
        pin_settings(conn)
        progress(f"loading {len(actions):,} action(s)")
        for stmt in statements.setup:
            conn.execute(stmt)
        _load(conn, actions, invariants, grace_seconds)
        for stmt in statements.analyze:
            conn.execute(stmt)
        progress("locking the rows")
        for stmt in statements.locks:
            conn.execute(stmt)
        progress("checking every action against the database")
        stale_query = statements.stale if self.what == "plan" else statements.stale_undo
        stale = conn.execute(stale_query).fetchall()
        skipped: list[Skipped] = []
        if stale:
            for stmt in statements.done:
                conn.execute(stmt)
            skipped = [Skipped(app, name, n) for app, name, n in conn.execute(statements.skipped).fetchall()]
            if sum(s.actions for s in skipped) == len(actions):
                return Outcome(0, 0, rehearse, False, skipped)
            stale = conn.execute(stale_query).fetchall() if skipped else stale
        if stale:
            raise self._refusal(stale, actions, statements)
        applied = len(actions) - sum(s.actions for s in skipped)
        conn.execute(statements.expect)
        for stmt in statements.snapshot:
            conn.execute(stmt)
        images, queries, present = RowImages(), Images(), actions.pairs()
        if recorder is not None:
            if queries.needs_before(present):
                images.row_before = {a: (row, fp) for a, row, fp in _json_value(conn, queries.rows_before)}
            recorder.start(images)
        progress(f"changing rows ({applied:,} action(s))")
        for stmt in needed(statements.keyed_changes, present):  # one with no rows to change is not sent
            conn.execute(stmt)
        progress("verifying the invariants")
        conn.execute(CONSTRAINTS_NOW)
        problems = conn.execute(statements.invariants).fetchall()
        if problems:
            raise RepairAborted("rolled back, nothing was changed: " + _problems(problems, actions),
                                kind="invariant broken")
        checked = conn.execute("SELECT count(*) FROM ca_before").fetchone()
        if recorder is not None:
            progress("writing the undo file")
            if queries.needs_after(present):
                images.row_after = {a: fp for a, _, fp in _json_value(conn, queries.rows_after)}
            recorder.finish(images)
        return applied, int(checked[0]) if checked else 0, skipped

    def _refusal(self, stale: list[tuple], actions: ActionTable, statements: Statements) -> PlanRefused:
        done = [name or uuid for uuid, name, _ in self.conn.execute(statements.skipped).fetchall()]
        if self.what == "plan":
            also = f"; already applied: {', '.join(done)}" if done else ""
            return PlanRefused(_problems(stale, actions) + also + "; nothing was changed: make a new plan",
                               kind="stale plan")
        blocked = {row[0] for row in self.conn.execute(statements.stale_undo_apps).fetchall()}
        remaining = self._apps_left() - blocked
        also = f"; already undone: {', '.join(done)}" if done else ""
        return CannotUndo(_problems(stale, actions) + also + "; nothing was changed",
                          sorted(name or uuid for uuid, name in actions.apps if uuid in remaining))

    def _apps_left(self) -> set[str]:
        """The apps with actions in ``ca_plan`` (those in effect already are gone from it)."""
        return {row[0] for row in self.conn.execute("SELECT DISTINCT CAST(app AS text) FROM ca_plan").fetchall()}

    def _row_verdict(self, conn: psycopg.Connection, actions: ActionTable, grace_seconds: float) -> str:
        """Committed / rolled back / unknown, from the rows (no ``txid_status()``): every action
        in effect is a commit, every action still applicable is a rollback (the transaction is
        atomic), anything else is unknown."""
        statements = Statements(self.generation)
        try:
            pin_settings(conn)
            for stmt in statements.setup:
                conn.execute(stmt)
            _load(conn, actions, Invariants(), grace_seconds)
            for stmt in statements.locks:  # the fingerprints of the rows, as they are now
                conn.execute(stmt)
            if not conn.execute(statements.stale if self.what == "plan" else statements.stale_undo).fetchall():
                return committing.ROLLED_BACK
            for stmt in statements.done:
                conn.execute(stmt)
            done = sum(n for _, _, n in conn.execute(statements.skipped).fetchall())
            return committing.COMMITTED if done == len(actions) else committing.UNKNOWN
        finally:
            conn.rollback()


def _load(conn: psycopg.Connection, actions: ActionTable, invariants: Invariants, grace_seconds: float) -> None:
    """COPY the actions, the invariant apps and the parameters into the temporary tables."""
    with conn.cursor() as cur:
        for table, columns, rows in (("ca_plan", PLAN_COLUMNS, actions.load_rows()),
                                     ("ca_expect", EXPECT_COLUMNS, invariants.rows()),
                                     ("ca_params", PARAMS_COLUMNS, [(grace_seconds,)])):
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c, _ in columns))
            with cur.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)


def _text_value(conn: psycopg.Connection, query: Statement) -> str:
    """The one text value ``query`` returns."""
    row = conn.execute(query).fetchone()
    assert row is not None
    return str(row[0])


def _json_value(conn: psycopg.Connection, query: Statement) -> Any:
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
