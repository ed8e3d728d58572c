"""Errors the command line turns into one line on stderr and a documented exit code."""

from __future__ import annotations

#: Exit codes (monitoring-plugin convention for the audit; see README "Exit codes").
EXIT_OK = 0
EXIT_WARNING = 1
EXIT_CRITICAL = 2
EXIT_UNKNOWN = 3  # could not audit: bad input, connection, not a controller database, timeout
EXIT_REFUSED = 4  # a plan or undo file was refused (edited, stale, other database) or declined
EXIT_ABORTED = 5  # a repair started and was rolled back (lock conflict, invariant broken)
#: The connection was lost (or the wait given up) while COMMIT was in flight, and the tool could
#: not find out whether it committed: the undo file is kept; run the same ``apply`` / ``undo``
#: again, which says "already applied" / "already undone" if it did commit.
EXIT_OUTCOME_UNKNOWN = 6
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT), SIGTERM or SIGHUP before anything was committed: nothing was changed

#: The signals that stopped this run the way Ctrl-C does (:func:`interrupt_on_signals`), by name.
_INTERRUPTED_BY: list[str] = []


def interrupt_name() -> str:
    """``Ctrl-C``, or the signal that interrupted this run the same way (``SIGTERM``, ``SIGHUP``)."""
    return _INTERRUPTED_BY[-1] if _INTERRUPTED_BY else "Ctrl-C"


def note_interrupt(name: str) -> None:
    """Record that ``name`` (``SIGTERM``) interrupted this run, for the messages that name it."""
    _INTERRUPTED_BY.append(name)


def forget_interrupts() -> None:
    """Start a run with no interrupt recorded (the command line runs in-process in tests)."""
    _INTERRUPTED_BY.clear()


class AuditorError(Exception):
    """An expected failure: printed as ``controller-audit: <kind>: <message>``."""

    kind = "error"
    exit_code = EXIT_UNKNOWN

    def __init__(self, message: str, *, kind: str | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind

    def one_line(self) -> str:
        text = " ".join(str(self).split())
        return f"{self.kind}: {text}"


class ConnectionFailed(AuditorError):
    """The server could not be reached or refused the login."""

    kind = "cannot connect"


class NotControllerDatabase(AuditorError):
    """The target database has no controller schema."""

    kind = "not a controller database"


class UnknownGeneration(AuditorError):
    """The schema generation is newer than, or inconsistent with, what the tool knows."""

    kind = "unknown schema generation"


class AuditFailed(AuditorError):
    """A query of the audit failed (timeout, permission, lock)."""

    kind = "audit failed"


class BadInput(AuditorError):
    """A bad argument: an unknown app name, check id, or a malformed file."""

    kind = "bad input"


class PlanRefused(AuditorError):
    """A plan or undo file must not be applied: edited, stale, from another database."""

    kind = "plan refused"
    exit_code = EXIT_REFUSED


class RepairAborted(AuditorError):
    """A repair transaction was rolled back; nothing was changed."""

    kind = "repair aborted"
    exit_code = EXIT_ABORTED


class OutcomeUnknown(AuditorError):
    """COMMIT was sent but its outcome could not be found out; the undo file is kept."""

    kind = "outcome unknown"
    exit_code = EXIT_OUTCOME_UNKNOWN


class RepairInterrupted(AuditorError):
    """Ctrl-C (or SIGTERM, SIGHUP) before COMMIT was sent: the transaction was rolled back, nothing was changed."""

    kind = "interrupted"
    exit_code = EXIT_INTERRUPTED
