"""Which PostgreSQL servers the tool works with, and what it does differently on older ones.

Every statement the tool sends stays within PostgreSQL 9.4, the oldest server the
controller's databases still run on (the test suite lints them); newer servers take over
work the client does otherwise.  A server older than :data:`MINIMUM` is refused before
anything is read.  The majors CI runs the tool on are in the README ("Supported PostgreSQL
versions").
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor.core.errors import AuditorError

#: The oldest server the tool supports (``server_version_num``): PostgreSQL 9.4.
MINIMUM = 90400


@dataclass(frozen=True)
class Degradation:
    """What the tool does differently on servers before ``since``."""

    since: int  # server_version_num from which the server does it
    feature: str  # the server feature it needs
    below: str  # what happens on older servers


#: The server versions (``server_version_num``) from which the tool lets the server do more: the
#: one place each threshold is written (the code that branches on one imports it from here).
PG_INPUT_IS_VALID_SINCE = 160000
SHA256_SINCE = 110000
TXID_STATUS_SINCE = 100000
PG_CONTROL_SYSTEM_SINCE = 90600

#: Newest threshold first.
DEGRADATIONS: tuple[Degradation, ...] = (
    Degradation(PG_INPUT_IS_VALID_SINCE, "pg_input_is_valid()",
                "invalid-json validates JSON by casting every value in a savepoint first; when a value "
                "does not cast, more probes find the rows the cast refuses, and only those and the rows "
                "whose values are not objects by their first character are parsed and rendered on the "
                "client"),
    Degradation(SHA256_SINCE, "sha256()", "finding keys are computed on the client"),
    Degradation(TXID_STATUS_SINCE, "txid_status()",
                "when the answer to a repair's COMMIT is lost, the outcome is found by comparing the "
                "rows with the plan's fingerprints instead of asking the server"),
    Degradation(PG_CONTROL_SYSTEM_SINCE, "pg_control_system()",
                "plans, undo files and reports record no server system identifier: a plan is matched "
                "to its database by name and api migration only"),
)


class UnsupportedServer(AuditorError):
    """The server is older than :data:`MINIMUM` (exit code 3)."""

    kind = "unsupported server"


def version_text(server_version_num: int) -> str:
    """``90400`` -> ``9.4``, ``140023`` -> ``14``: the major the number belongs to."""
    if server_version_num >= 100000:
        return str(server_version_num // 10000)
    return f"{server_version_num // 10000}.{server_version_num // 100 % 100}"


def require_supported(server_version_num: int) -> None:
    """Raise :class:`UnsupportedServer` for a server older than :data:`MINIMUM`."""
    if server_version_num < MINIMUM:
        raise UnsupportedServer(
            f"PostgreSQL {version_text(server_version_num)} is older than {version_text(MINIMUM)}, "
            f"the oldest server controller-audit supports"
        )


def degradations(server_version_num: int) -> list[Degradation]:
    """What the tool does differently on this server (empty from the newest threshold on)."""
    return [d for d in DEGRADATIONS if server_version_num < d.since]


def support_statement() -> str:
    """One paragraph for ``info`` and the docs: the minimum and what is degraded below each threshold."""
    parts = [f"before {version_text(d.since)} ({d.feature}) {d.below}" for d in DEGRADATIONS]
    return f"PostgreSQL {version_text(MINIMUM)} and newer; " + "; ".join(parts) + "."
