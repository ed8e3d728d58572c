"""Choosing ``created`` values for repaired rows, shared by the planners.

Rules (docs/repairs.md): no repair dates a row after the transaction's ``now()`` (the plan's
``now`` is earlier still), no repaired row ties another row of its app and table, and a
future-dated row's date is never copied: when a row must become the newest of its set but a
row dated in the future stands in the way, that row is moved back (just before the one that
must be newest), not overtaken.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

MICROSECOND = timedelta(microseconds=1)

_CREATED_OF_APPS = "SELECT app_id::text, created FROM {table} WHERE app_id = ANY(%s::uuid[])"


class Calendar:
    """Which ``created`` values each app's rows of one table hold, loaded only where needed,
    and the values planned so far."""

    def __init__(self, conn: psycopg.Connection, table: str) -> None:
        self.conn = conn
        self.table = table
        self.loaded: dict[str, set[datetime]] = {}
        self.new: dict[str, set[datetime]] = {}

    def prefetch(self, apps: Iterable[str]) -> None:
        """Load the taken ``created`` values of ``apps`` in one query."""
        wanted = sorted(set(apps) - set(self.loaded))
        if not wanted:
            return
        for app in wanted:
            self.loaded[app] = set()
        query = sql.SQL(_CREATED_OF_APPS).format(table=sql.Identifier(self.table))
        for app, created in self.conn.execute(query, (wanted,)):
            self.loaded[app].add(created)

    def know(self, app: str, taken: Iterable[datetime]) -> None:
        """Record the taken values of ``app`` read elsewhere (all of its rows)."""
        self.loaded.setdefault(app, set()).update(taken)

    def _existing(self, app: str) -> set[datetime]:
        if app not in self.loaded:
            self.prefetch([app])
        return self.loaded[app]

    def reserve(self, app: str, moment: datetime) -> None:
        """Mark ``moment`` as taken by a planned row of ``app``."""
        self.new.setdefault(app, set()).add(moment)

    def free(self, app: str, moment: datetime) -> bool:
        """Whether no row of ``app`` (existing or planned) holds ``moment``."""
        return moment not in self._existing(app) and moment not in self.new.get(app, set())

    def slot_before(self, app: str, moment: datetime, known_taken: bool = True) -> datetime:
        """The latest free moment strictly before ``moment`` for a new row of ``app``, reserved.

        ``known_taken`` false says the caller knows ``moment`` minus 1 µs is free in the
        database (saves loading the app's values)."""
        new = self.new.setdefault(app, set())
        candidate = moment - MICROSECOND
        if known_taken or candidate in new or app in self.loaded:
            while not self.free(app, candidate):
                candidate -= MICROSECOND
        new.add(candidate)
        return candidate


@dataclass(frozen=True)
class Dated:
    """A row of a set whose order by ``created`` matters, with its current (or planned) date."""

    uuid: str
    created: datetime
    movable: bool = True  # an existing row (a planned copy is dated by its planner instead)


@dataclass(frozen=True)
class Newest:
    """How to make one row strictly the newest of its set: its new date, and the rows dated in
    the future that must move back before it (uuid, new date)."""

    created: datetime
    moves: tuple[tuple[Dated, datetime], ...] = ()


def make_newest(app: str, row: datetime, others: Iterable[Dated], *, now: datetime, future_after: datetime,
                not_after: datetime, calendar: Calendar) -> Newest | None:
    """The smallest change that makes a row dated ``row`` strictly newer than ``others``.

    Rows dated after ``future_after`` (future-dated) are never overtaken: each one at or after
    the row's final date moves back to a free moment just before it (no later than
    ``not_after``).  Any other row newer than (or tied with) the row is overtaken: the row is
    dated 1 µs after the newest of them.  A row itself dated in the future moves back the same
    way: to 1 µs after the newest other row that is not (``not_after`` when there is none).
    None when that would date the row after ``now``.
    """
    others = list(others)
    past = [o.created for o in others if o.created <= future_after]
    target = row
    if row > future_after:
        target = max(past) + MICROSECOND if past else not_after
    elif past and max(past) >= row:
        target = max(past) + MICROSECOND
    if target > now:
        return None
    calendar.reserve(app, target)
    moves = []
    anchor = min(target, not_after + MICROSECOND)
    for other in sorted((o for o in others if o.created > future_after and o.created >= target),
                        key=lambda o: o.created, reverse=True):
        if not other.movable:
            return None
        moves.append((other, calendar.slot_before(app, anchor)))
    return Newest(target, tuple(moves))
