"""COMMIT with a bounded wait, and finding out what happened when its answer never came.

Every apply or undo ends in one of three ways, never two: **committed**, **rolled back**
(proven: nothing changed), or **unknown**.  Before COMMIT is sent, any failure is a rollback by
construction (a transaction commits only on COMMIT).  Once it is sent, only the server's answer
says which - and a lost connection (network cut, backend killed while it waits for a
synchronous standby) loses that answer.  Then :func:`settle` reconnects and asks:

* PostgreSQL 10+: ``txid_status()`` of the transaction id taken just before COMMIT;
* older servers (or forced, for tests: :data:`TXID_STATUS_SINCE`): once the old backend is gone,
  the rows themselves - every action in effect is a commit, every row still as planned is a
  rollback (the transaction is atomic), anything else is unknown.

:func:`commit` sends COMMIT itself (libpq, non-blocking) so that the wait is bounded
(``--commit-timeout``): a second connection looks at ``pg_stat_activity``; when the backend
waits for synchronous replication (``wait_event = 'SyncRep'``) it says so, and at the timeout it
cancels that wait - PostgreSQL has then committed locally, which ``txid_status()`` confirms and
the outcome says.  Any other stall past the timeout gives up the connection and settles.
Ctrl-C during COMMIT is handled the same way.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import pq

from auditor.core.connection import Target, connect
from auditor.core.errors import AuditorError
from auditor.core.server_support import TXID_STATUS_SINCE

COMMITTED, ROLLED_BACK, UNKNOWN = "committed", "rolled back", "unknown"
#: ``pg_stat_activity.wait_event`` exists from 9.6; ``SyncRep`` is reported from 10.
WAIT_EVENT_SINCE = 90600
#: Seconds between looks at the waiting backend, and before the first one.
LOOK_EVERY = 1.0
#: How long :func:`settle` waits for an in-progress transaction (or the old backend) to end.
SETTLE_WITHIN = 30.0
#: How long to wait for COMMIT's answer after cancelling its wait (or after Ctrl-C).
AFTER_CANCEL = 10.0
_SYNC_REP_CANCELLED = "canceling wait for synchronous replication"

#: Called with a connection (in a transaction of its own) when ``txid_status()`` is not available:
#: returns COMMITTED, ROLLED_BACK or UNKNOWN from the rows.
RowVerdict = Callable[[psycopg.Connection], str]


@dataclass
class Settled:
    """How a COMMIT ended, and how that is known."""

    state: str  # COMMITTED, ROLLED_BACK or UNKNOWN
    how: str  # "the server answered", "txid_status()", "the rows", or why it is unknown
    note: str = ""  # e.g. committed locally, not confirmed by the synchronous standby
    interrupted: bool = False  # Ctrl-C during COMMIT


class _Watch:
    """The second connection that looks at the committing backend."""

    def __init__(self, target: Target, pid: int, timeout: float, notify: Callable[[str], None]) -> None:
        self.target, self.pid, self.timeout, self.notify = target, pid, timeout, notify
        self.conn: psycopg.Connection | None = None
        self.sync_rep = False
        self.standbys = ""
        self.cancelled_at: float | None = None
        self._next_look = LOOK_EVERY

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def _look(self) -> None:
        try:
            if self.conn is None:
                self.conn = connect(self.target, autocommit=True)
            if self.conn.info.server_version >= WAIT_EVENT_SINCE:
                row = self.conn.execute("SELECT wait_event FROM pg_stat_activity WHERE pid = %s", (self.pid,)).fetchone()
            else:
                row = None
            self.sync_rep = row is not None and row[0] == "SyncRep"
            if self.sync_rep and not self.standbys:
                found = self.conn.execute("SELECT current_setting('synchronous_standby_names')").fetchone()
                self.standbys = found[0] if found else "?"
                self.notify(f"COMMIT is waiting for synchronous replication: a standby in synchronous_standby_names"
                            f" = {self.standbys!r} must confirm it; waiting up to {self.timeout:g}s (--commit-timeout)")
        except (psycopg.Error, AuditorError):
            self.sync_rep = False  # cannot look: keep waiting until the timeout

    def tick(self, elapsed: float) -> str | None:
        """None to keep waiting; "cancelled" once the sync-rep wait was cancelled; "give up"."""
        if elapsed >= self._next_look and self.cancelled_at is None:
            self._next_look = elapsed + LOOK_EVERY
            self._look()
        if self.cancelled_at is not None:
            return "give up" if elapsed - self.cancelled_at > AFTER_CANCEL else None
        if elapsed < self.timeout:
            return None
        self._look()
        if self.sync_rep and self.conn is not None:
            try:
                self.conn.execute("SELECT pg_cancel_backend(%s)", (self.pid,))
                self.cancelled_at = elapsed
                return "cancelled"
            except psycopg.Error:
                pass
        return "give up"


class _GiveUp(Exception):
    """The answer to COMMIT is not coming (timeout, or a second Ctrl-C)."""


def commit(conn: psycopg.Connection, target: Target, txid: int, *, timeout: float,
           notify: Callable[[str], None], verdict: RowVerdict) -> Settled:
    """Send COMMIT on ``conn`` and wait at most ``timeout`` seconds for its answer (see the module
    docstring); always returns how it ended, never raises.  ``conn`` is closed afterwards."""
    pgconn = conn.pgconn
    pid = pgconn.backend_pid
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    watch = _Watch(target, pid, timeout, notify)
    state = {"interrupted": False}
    try:
        try:
            result = _send_and_wait(pgconn, watch, state)
        except (_GiveUp, psycopg.Error, OSError, ValueError, KeyboardInterrupt):
            result = None
        conn.close()
        if result is not None and result.status == pq.ExecStatus.COMMAND_OK:
            if any(_SYNC_REP_CANCELLED in n for n in notices):
                checked = settle(target, txid, pid, verdict)
                how = f"the server answered once its wait for the standby was cancelled; {checked.how}"
                return _settled(Settled(checked.state, how, _local_only(watch)), watch, state["interrupted"])
            return Settled(COMMITTED, "the server answered", interrupted=state["interrupted"])
        sqlstate = ""
        if result is not None:
            sqlstate = (result.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
        if result is not None and sqlstate and not sqlstate.startswith(("57", "08")):
            message = " ".join((result.error_message or b"").decode(errors="replace").split())
            return Settled(ROLLED_BACK, f"the server answered: {message}", interrupted=state["interrupted"])
        return _settled(settle(target, txid, pid, verdict), watch, state["interrupted"])
    finally:
        watch.close()


def _send_and_wait(pgconn: pq.abc.PGconn, watch: _Watch, state: dict[str, bool]) -> pq.abc.PGresult | None:
    """Send COMMIT and wait for its answer, watching the backend; Ctrl-C cancels the wait once."""
    started = time.monotonic()
    pgconn.send_query(b"COMMIT")
    while pgconn.flush() != 0:
        select.select([], [pgconn.socket], [], 1.0)
    while True:
        try:
            ready, _, _ = select.select([pgconn.socket], [], [], 0.2)
            if ready:
                pgconn.consume_input()
            if not pgconn.is_busy():
                return _last_result(pgconn)
            if watch.tick(time.monotonic() - started) == "give up":
                raise _GiveUp()
        except KeyboardInterrupt:
            if state["interrupted"]:
                raise _GiveUp() from None
            state["interrupted"] = True
            _cancel(pgconn)
            watch.cancelled_at = time.monotonic() - started


def _local_only(watch: _Watch) -> str:
    return (f"committed on this server, but the synchronous standby (synchronous_standby_names = "
            f"{watch.standbys or '?'!r}) had not confirmed it when its wait was cancelled: until a standby has "
            "it, a failover could lose the repair")


def _settled(settled: Settled, watch: _Watch, interrupted: bool) -> Settled:
    if watch.cancelled_at is not None and watch.sync_rep and settled.state == COMMITTED and not settled.note:
        settled.note = _local_only(watch)
    settled.interrupted = settled.interrupted or interrupted
    return settled


def _cancel(pgconn: pq.abc.PGconn) -> None:
    try:
        pgconn.get_cancel().cancel()
    except psycopg.Error:
        pass


def _last_result(pgconn: pq.abc.PGconn) -> pq.abc.PGresult | None:
    last = None
    while True:
        result = pgconn.get_result()
        if result is None:
            return last
        last = result


def settle(target: Target, txid: int, pid: int, verdict: RowVerdict, within: float = SETTLE_WITHIN) -> Settled:
    """Reconnect and find out whether transaction ``txid`` (of backend ``pid``) committed."""
    try:
        conn = connect(target, autocommit=True)
    except AuditorError as exc:
        return Settled(UNKNOWN, f"could not reconnect to find out ({exc.one_line()})")
    try:
        deadline = time.monotonic() + within
        if conn.info.server_version >= TXID_STATUS_SINCE:
            while True:
                row = conn.execute("SELECT txid_status(%s)", (txid,)).fetchone()
                status = row[0] if row else None
                if status == "committed":
                    return Settled(COMMITTED, f"txid_status({txid}) is committed")
                if status == "aborted":
                    return Settled(ROLLED_BACK, f"txid_status({txid}) is aborted")
                if status is None:
                    return Settled(UNKNOWN, f"txid_status({txid}) no longer knows the transaction")
                if time.monotonic() > deadline:
                    return Settled(UNKNOWN, f"txid_status({txid}) was still 'in progress' after {within:g}s")
                time.sleep(0.2)
        while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() is not None:
            if time.monotonic() > deadline:
                return Settled(UNKNOWN, f"the old backend (pid {pid}) was still running after {within:g}s")
            time.sleep(0.2)
        conn.autocommit = False
        state = verdict(conn)
        how = "the rows: every action is in effect" if state == COMMITTED else (
            "the rows: every row is still as planned" if state == ROLLED_BACK
            else "the rows are neither all as planned nor all changed (txid_status() needs PostgreSQL 10)")
        return Settled(state, how)
    except psycopg.Error as exc:
        return Settled(UNKNOWN, f"could not ask the server ({type(exc).__name__})")
    finally:
        conn.close()
