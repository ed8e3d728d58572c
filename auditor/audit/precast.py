"""Before PostgreSQL 16: the optimistic JSON cast.

Those servers have no ``pg_input_is_valid()``, and a cast of a value that does not parse aborts the
statement (``invalid_text_representation``).  The audit statement runs inside a savepoint of the
audit's transaction (allowed on a hot standby; nothing is created) behind a gate (:func:`gate`) that
casts every candidate value of the checks that validate JSON (their ``cast_probe_sql``) before the
statement yields its first row.  In the normal case no value fails and those checks run on the server
like on 16+, in the one statement; when one fails (or only Python can judge one), the savepoint is
rolled back (:func:`optimistically`) and the audit takes the careful path: the probe alone
(:func:`casts_cleanly`), :func:`refused_rows` to find the rows whose values the cast refuses (more
probes, on ranges of the uuid space), and the check ships only those rows and the rows with a value
that is not an object by its first character, for the client to judge.

From PostgreSQL 16 the gate casts nothing (the checks validate with ``pg_input_is_valid()``): it
counts the values only Python can judge (the checks' ``undecided_sql``; inside the statement, over
the pass of each table the check reads itself: ``Check.gated``), and when there is one the audit takes
the same careful path, so every server gives the same findings.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

import psycopg
from psycopg import pq, sql

#: The savepoint the probe runs in.
SAVEPOINT = sql.Identifier("controller_audit_json_cast")

#: The SQLSTATE classes of what a value the cast cannot take raises: invalid_text_representation
#: (22P02) and the rest of class 22 (e.g. an untranslatable character), or a nesting deeper than
#: the server's stack (54001, class 54).
_REFUSED = ("22", "54")

T = TypeVar("T")

# The gate over the probes' rows (``object_table``, ``cast_values``, ``undecided``): true when every
# candidate value cast (``cast_values`` is summed, so that no cast is pruned) and none is left to
# Python; when one is, the cast of a text that is not JSON raises invalid_text_representation, the
# refusal the caller falls back on (a value of the rows, so that no plan-time folding raises it).
_GATE = """(SELECT CASE WHEN sum(g.undecided) = 0 AND sum(g.cast_values) >= 0 THEN true
         ELSE (sum(g.undecided)::text || ' JSON values only Python can judge')::json IS NULL END
 FROM ({probes}) AS g)"""


def savepoint(conn: psycopg.Connection) -> None:
    """Set the savepoint a refused cast rolls back to (:func:`roll_back`)."""
    conn.execute(sql.SQL("SAVEPOINT {}").format(SAVEPOINT))


def release(conn: psycopg.Connection) -> None:
    """Release the savepoint once its statement ran."""
    conn.execute(sql.SQL("RELEASE SAVEPOINT {}").format(SAVEPOINT))


def gate(probes: list[sql.Composed]) -> sql.Composed:
    """SQL: a boolean subquery that casts the values of the ``probes`` (see
    :meth:`~auditor.core.catalogue.Check.cast_probe_for`) and raises as a refused cast when one does
    not parse or only Python can judge one.  Uncorrelated, in a statement's WHERE it is a one-time
    filter, evaluated before the statement's first row."""
    return sql.SQL(_GATE).format(probes=sql.SQL("\nUNION ALL\n").join(probes))


def optimistically(conn: psycopg.Connection, rows: Iterator[T]) -> Iterator[T] | None:
    """``rows`` (a generator whose statement runs at its first row) run in a savepoint: its rows, or
    None when a cast refused a value before the first row (rolled back to the savepoint).  Any other
    error, and any error after the first row, is the caller's: nothing yielded is taken back."""
    savepoint(conn)
    try:
        first = next(rows, None)
    except psycopg.Error as exc:
        roll_back(conn, exc)
        return None
    return _released(conn, first, rows)


def _released(conn: psycopg.Connection, first: T | None, rows: Iterator[T]) -> Iterator[T]:
    """``first`` (None: no row) and the rest of ``rows``, then the savepoint released."""
    if first is not None:
        yield first
        yield from rows
    release(conn)


def refused(exc: psycopg.Error) -> bool:
    """Whether ``exc`` is a cast refusing a value (else it is the caller's)."""
    return (exc.sqlstate or "")[:2] in _REFUSED


def roll_back(conn: psycopg.Connection, exc: psycopg.Error) -> None:
    """After ``exc`` in the savepoint: roll back to it when it is a refused cast, else raise it.  In a
    pipeline the error aborted what was queued after it: the pipeline is synced first."""
    if not refused(exc):
        raise exc
    if conn.pgconn.pipeline_status != pq.PipelineStatus.OFF:
        with conn.pipeline() as pipeline:
            pipeline.sync()
    conn.execute(sql.SQL("ROLLBACK TO SAVEPOINT {}").format(SAVEPOINT))


def casts_cleanly(conn: psycopg.Connection, probe: sql.Composed, params: Mapping[str, object]) -> bool:
    """Run ``probe`` (rows ending with the count of values only Python can judge) in a savepoint:
    whether it succeeded with no such value.  A refused cast is rolled back to the savepoint; any
    other error (a timeout) is the caller's."""
    rows = _in_savepoint(conn, probe, params)
    return rows is not None and all(row[-1] == 0 for row in rows)


def _in_savepoint(conn: psycopg.Connection, statement: sql.Composed,
                  params: Mapping[str, object]) -> list[tuple[object, ...]] | None:
    """The rows of ``statement`` run in a savepoint, or None when a cast in it refused a value (rolled
    back to the savepoint); any other error is the caller's."""
    savepoint(conn)
    try:
        rows = conn.execute(statement, params).fetchall()
    except psycopg.Error as exc:
        roll_back(conn, exc)
        return None
    release(conn)
    return rows


#: The uuid space the bisection splits (every table's uuids, as 128-bit integers).
_LAST_UUID = (1 << 128) - 1
#: A range with at most this many candidate values is shipped and parsed on the client (a
#: measured prototype: 17 probes and 1,897 values shipped for 2 bad values in 490k configs).
LEAF_VALUES = 2000


def refused_rows(conn: psycopg.Connection, cast: sql.Composed, ship: sql.Composed, params: Mapping[str, object],
                 judge: Callable[[str], bool]) -> list[str]:
    """The uuids (text) of the rows with a value the cast refuses, found by bisecting the uuid space.

    ``cast`` and ``ship`` are a table's :class:`~auditor.core.catalogue.CastRange` queries.  A range
    whose values all cast (a probe in the savepoint) holds none; of two halves of a range that holds one, the upper holds one when the
    lower casts (no probe).  A range of at most :data:`LEAF_VALUES` values is parsed here, and the rows
    ``judge`` refuses are taken once the rest of the range casts (else the range is split further:
    only a range of one row, or of one uuid, is taken without a cast that vouches for the rest).  A row ``judge``
    refuses but the cast takes (a value only Python refuses) may be among them: the client judges
    those anyway.  Savepoints and SELECTs only: works on a hot standby."""
    def bounds(lo: int, hi: int, **more: object) -> dict[str, object]:
        return {**params, "cast_from": str(uuid.UUID(int=lo)), "cast_to": str(uuid.UUID(int=hi)),
                "cast_excluded": [], **more}

    found: list[str] = []
    # Ranges to look at, and whether they are known to hold a refused value.
    pending = [(0, _LAST_UUID, False)]
    while pending:
        lo, hi, known = pending.pop()
        if not known and _casts(conn, cast, bounds(lo, hi)):
            continue
        if lo == hi:  # one uuid, one row: the cast refused its values
            found.append(str(uuid.UUID(int=lo)))
            continue
        values = conn.execute(ship, bounds(lo, hi, leaf_values=LEAF_VALUES + 1)).fetchall()
        if len(values) <= LEAF_VALUES:  # every value of the range
            rows = {object_id for object_id, _ in values}
            if len(rows) == 1:  # the cast refused this row's values
                found += rows
                continue
            refused = sorted({object_id for object_id, value in values if judge(value)})
            if refused and _casts(conn, cast, bounds(lo, hi, cast_excluded=refused)):
                found += refused
                continue
        mid = (lo + hi) // 2
        lower_casts = _casts(conn, cast, bounds(lo, mid))
        pending.append((mid + 1, hi, lower_casts))
        if not lower_casts:
            pending.append((lo, mid, True))
    return sorted(found)


def _casts(conn: psycopg.Connection, cast: sql.Composed, params: Mapping[str, object]) -> bool:
    """Whether ``cast`` runs (in a savepoint, rolled back to when the cast refuses a value)."""
    return _in_savepoint(conn, cast, params) is not None
