"""What a check is, and the registry that holds the catalogue in its order.

A check is declared in its own module under ``checks/`` as a module-level ``CHECK`` and
registered explicitly, in catalogue order, in ``checks/__init__.py`` (think Django's system
checks registry).  Its SQL is one ``SELECT`` over the shared passes (:mod:`auditor.core.passes`)
returning the columns in :data:`RESULT_COLUMNS`; the runner unions the selected checks into one
statement.  The core never imports the ``checks`` package: whoever needs the catalogue (the
engine, the reports, the command line) takes ``checks.CATALOGUE`` and passes it down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from auditor.core.detect import Generation
from auditor.core.findings import SEVERITIES
from auditor.core.passes import Pass
from auditor.core.query import Query

#: Every repair a check may name (:attr:`Check.repair`), in the order that makes them compose:
#: release-order first re-dates releases, which can change which release is live; unshare dates
#: copies before their releases; restore-latest makes the live release's rows the newest.
#: (:mod:`repairs.model` plans them; the command line and the reports name them without it.)
REPAIRS: tuple[str, ...] = ("prune-orphans", "release-order", "unshare", "restore-latest")

#: The columns, in order, every check's SELECT returns.
RESULT_COLUMNS: tuple[str, ...] = (
    "severity",  # text: critical | warning | info (a check may escalate per row)
    "app_uuid",  # uuid or NULL
    "app_name",  # text or NULL
    "object_table",  # text
    "object_id",  # text: a uuid, or a name for objects without one
    "message",  # text: one line
    "related",  # json array of objects
    "evidence",  # json object
)
#: The JSON columns of :data:`RESULT_COLUMNS`: a check may give them as ``json`` or as text (the
#: runner's statement sends them as text, so that a check building a line's worth of JSON as text
#: does not have it parsed again by a cast).
JSON_COLUMNS: tuple[str, ...] = ("related", "evidence")
#: The column every row of the runner's statement ends with: NULL for a listed finding, else how many
#: findings the row counts (one row per check, severity and app of the findings not listed).
COUNTED_COLUMN = "counted"
#: What a check with a repair returns after them: NULL when its repair fixes the finding, else why
#: the finding must be fixed by hand (the runner gives the checks without a repair a NULL).
MANUAL_COLUMN = "manual"


class CastRange(NamedTuple):
    """Before PostgreSQL 16, one table's queries over the rows whose uuid is between ``%(cast_from)s``
    and ``%(cast_to)s``: ``cast`` casts each candidate value of those rows but ``%(cast_excluded)s``
    (text uuids; raises when one does not parse), ``values`` gives ``object_id`` and ``value`` of each
    candidate value (at most ``%(leaf_values)s``)."""

    cast: Query
    values: Query


class Gated(NamedTuple):
    """From PostgreSQL 16, a check's SQL behind the gate and the gate's probe, reading the same
    ``passes`` (so that the gate's count of the values only the client can judge costs no scan of
    its own): ``probe`` has the shape of ``undecided_sql``, ``sql`` gives the findings of ``sql``."""

    passes: tuple[Pass, ...]
    probe: Query
    sql: Query


class ResultRow(NamedTuple):
    """One row of the runner's statement: the check, :data:`RESULT_COLUMNS`, :data:`MANUAL_COLUMN`."""

    check_id: str
    severity: str
    app_uuid: Any
    app_name: str | None
    object_table: str
    object_id: Any
    message: str
    related: list[dict[str, Any]] | None
    evidence: dict[str, Any] | None
    manual: str | None
    counted: int | None = None


@dataclass(frozen=True)
class Check:
    """One kind of damage, found by one set-based query."""

    id: str
    severity: str  # the default (highest usual) severity; rows may carry a lower/higher one
    title: str
    rationale: str  # what the damage is and what the controller will do wrong because of it
    #: SELECT returning RESULT_COLUMNS (and, with a ``repair``, :data:`MANUAL_COLUMN`); may use
    #: {scope}, {app_scope}, {partial}, %(grace_seconds)s, %(skew_seconds)s.  A callable gets the
    #: schema generation and returns the SELECT for its columns.
    sql: Query | Callable[[Generation], Query]
    passes: tuple[str, ...]  # shared passes it reads
    #: The repair that fixes its findings (``plan --repair ID``), unless a finding's
    #: :data:`MANUAL_COLUMN` says why not; the repair plans exactly those findings.
    repair: str | None = None
    min_migration: int = 1  # first api migration it applies to
    needs_failed: bool = False  # only where api_release.failed exists
    database_level: bool = False  # about the whole database (catalogue), not about apps
    #: For servers older than PostgreSQL 16 (no pg_input_is_valid): another SELECT whose rows
    #: (named tuples of the runner's columns) ``legacy_filter`` checks client-side, returning the
    #: row to report (``row._replace(...)``) or None.
    legacy_sql: Query | Callable[[Generation], Query] | None = None
    legacy_filter: Callable[[ResultRow], ResultRow | None] | None = None
    #: For those servers, what spares the client-side filter: ``cast_probe_sql`` (one row per
    #: table: ``object_table``, ``cast_values``, ``undecided``) casts every value in a savepoint; when
    #: it raises no error and every ``undecided`` is 0, ``cast_sql`` gives the same findings as
    #: ``legacy_sql`` + ``legacy_filter`` would, validated by the server.
    cast_sql: Query | Callable[[Generation], Query] | None = None
    cast_probe_sql: Query | Callable[[Generation], Query] | None = None
    #: From PostgreSQL 16 (``sql`` validates on the server): a probe of the same shape that casts
    #: nothing and counts the values only the client can judge; when one is, ``legacy_sql`` +
    #: ``legacy_filter`` run as before 16 (the same findings on every server).
    undecided_sql: Query | Callable[[Generation], Query] | None = None
    #: The same probe and the check's SQL behind the gate in one statement, over passes both read
    #: (:class:`Gated`; None, or a callable returning None on a generation: ``undecided_sql`` and
    #: ``sql``).  The standalone probe of the careful path stays ``undecided_sql``.
    gated: Callable[[Generation], Gated | None] | None = None
    #: When the probe fails (or leaves values to Python): with ``cast_ranges_sql`` (a
    #: :class:`CastRange` per table), :mod:`auditor.audit.precast` bisects the uuid space (``cast_judge``:
    #: whether the client refuses a value) to find the rows the cast refuses, and ``legacy_sql`` then
    #: ships only those and the rows the server cannot clear without a parse (``%(cast_refused)s``).
    cast_ranges_sql: Callable[[Generation], tuple[CastRange, ...]] | None = None
    cast_judge: Callable[[str], bool] | None = None
    #: A SELECT of ``severity``, ``app_uuid`` and ``n``: how many findings the check's SQL gives per
    #: severity and app, computed without building what a listed finding carries.  Without it the
    #: runner counts the rows of ``sql`` (which prunes the unused columns of a plain SELECT, but not
    #: through a UNION or a CTE: give the counting SQL of such checks here).
    count_sql: Query | Callable[[Generation], Query] | None = None
    #: The part of ``count_sql`` that counts the ``info`` findings alone, for a statement that counts
    #: no other level (the default floor): the other parts' rows would all be filtered out, after
    #: being planned and run (a severity filter above a UNION prunes nothing).
    info_count_sql: Query | Callable[[Generation], Query] | None = None
    #: The SELECT of the findings of ``sql`` above ``info`` alone, for a statement that counts the
    #: check's info findings (``count_sql``) and lists the rest; with ``above_info_passes``, what that
    #: SELECT and ``count_sql`` read together.  For a check whose info findings come from a part of its
    #: own (a UNION branch and the CTEs under it): PostgreSQL plans every branch and CTE of the
    #: statement, and a severity filter above them prunes nothing before that.
    #: A callable returning None: none on that generation (the check's ``sql`` and ``passes`` then).
    above_info_sql: Query | Callable[[Generation], Query | None] | None = None
    above_info_passes: tuple[str, ...] = ()
    #: Every severity the check's SQL can give a finding, most severe first (default: just
    #: ``severity``); a config-file override must map each of them (:mod:`auditor.core.overrides`).
    levels: tuple[str, ...] = ()
    #: The ``levels`` its SQL can give on a generation, when that depends on it (default: every one):
    #: the runner plans no SELECT for a level the generation cannot give.
    levels_on: Callable[[Generation], tuple[str, ...]] | None = None

    def __post_init__(self) -> None:
        assert self.severity in SEVERITIES, self.severity
        if not self.levels:
            object.__setattr__(self, "levels", (self.severity,))
        assert set(self.levels) <= set(SEVERITIES) and self.severity in self.levels, (self.id, self.levels)
        object.__setattr__(self, "levels", tuple(s for s in SEVERITIES if s in self.levels))

    def applies_to(self, generation: Generation) -> bool:
        """Whether the check means anything on this schema generation."""
        if self.needs_failed and not generation.has_failed:
            return False
        return generation.migration >= self.min_migration

    def levels_for(self, generation: Generation) -> tuple[str, ...]:
        """The ``levels`` a finding can have on ``generation``, most severe first."""
        if self.levels_on is None:
            return self.levels
        possible = set(self.levels_on(generation))
        assert possible and possible <= set(self.levels), (self.id, possible)
        return tuple(level for level in self.levels if level in possible)

    def sql_for(self, generation: Generation, legacy: bool = False, cast: bool = False) -> Query:
        """The SELECT to run on ``generation``: when ``legacy``, ``cast_sql`` if ``cast`` (its probe
        passed) else ``legacy_sql`` (if any)."""
        chosen = self.sql
        if legacy and cast and self.cast_sql is not None:
            chosen = self.cast_sql
        elif legacy and self.legacy_sql is not None:
            chosen = self.legacy_sql
        return chosen(generation) if callable(chosen) else chosen

    def cast_probe_for(self, generation: Generation, cast: bool = True) -> Query | None:
        """The probe of ``cast_sql`` on ``generation`` (``cast`` false: ``undecided_sql``, from
        PostgreSQL 16; None: the check has none)."""
        chosen = self.cast_probe_sql if cast else self.undecided_sql
        return chosen(generation) if callable(chosen) else chosen

    def cast_ranges_for(self, generation: Generation) -> tuple[CastRange, ...] | None:
        """The range queries of ``cast_sql``'s values on ``generation``, one per table (None: the check
        has none)."""
        return None if self.cast_ranges_sql is None else self.cast_ranges_sql(generation)

    def above_info_sql_for(self, generation: Generation) -> Query | None:
        """The SELECT of the findings above ``info`` on ``generation`` (None: the check has none)."""
        chosen = self.above_info_sql
        return chosen(generation) if callable(chosen) else chosen

    def count_sql_for(self, generation: Generation, levels: tuple[str, ...] = SEVERITIES) -> Query | None:
        """The counting SELECT to run on ``generation`` for the findings at ``levels`` (None: count
        the rows of :meth:`sql_for`)."""
        chosen = self.info_count_sql if levels == ("info",) and self.info_count_sql is not None else self.count_sql
        return chosen(generation) if callable(chosen) else chosen

    @property
    def generations(self) -> str:
        """Human description of the generations the check applies to."""
        if self.needs_failed:
            return "deis 0020+ and hephy (needs api_release.failed)"
        return "all (deis and hephy)"


class Catalogue(Mapping[str, Check]):
    """The registered checks by id, in the order they were registered (the catalogue order)."""

    def __init__(self, *checks: Check) -> None:
        self._checks: dict[str, Check] = {}
        for check in checks:
            self.register(check)

    def register(self, check: Check) -> Check:
        """Add ``check`` after the ones registered before it; a second check with its id is an error."""
        if check.id in self._checks:
            raise ValueError(f"duplicate check id {check.id}")
        self._checks[check.id] = check
        return check

    def __getitem__(self, check_id: str) -> Check:
        return self._checks[check_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._checks)

    def __len__(self) -> int:
        return len(self._checks)
