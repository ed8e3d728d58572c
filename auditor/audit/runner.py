"""Runs the selected checks in one snapshot, as one statement, and streams the findings."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import args_row

from auditor.audit.apps import app_uuids, unknown_app
from auditor.audit.listing import EVERYTHING, Listing
from auditor.audit.precast import casts_cleanly, gate, optimistically, refused_rows, release, roll_back, savepoint
from auditor.audit.streamed import Shape, StreamedFinding, stream, stream_rows, streamed_findings, wrap
from auditor.core.catalogue import COUNTED_COLUMN, JSON_COLUMNS, MANUAL_COLUMN, RESULT_COLUMNS, Check, Gated, ResultRow
from auditor.core.detect import Generation
from auditor.core.errors import AuditFailed, BadInput
from auditor.core.findings import Counted, Finding
from auditor.core.overrides import BadOverride, Resolved
from auditor.core.overrides import apply as apply_override
from auditor.core.overrides import resolve as resolve_override
from auditor.core.overrides import resolve_all as resolve_overrides
from auditor.core.passes import Pass, closure, passes_for
from auditor.core.query import Query
from auditor.core.server_support import PG_INPUT_IS_VALID_SINCE, SHA256_SINCE
from auditor.core.settings import DEFAULT_GRACE_SECONDS, DEFAULT_SKEW_SECONDS, Selection
from auditor.core.suggest import unknown_check
from checks import CATALOGUE

T = TypeVar("T")

_FETCH_SIZE = 2000
#: Servers before this (no ``pg_input_is_valid()``) run a check's ``cast_sql`` once its probe passed,
#: else its ``legacy_sql`` filtered on the client (:mod:`auditor.audit.precast`); from it, its ``sql``
#: unless its ``undecided_sql`` finds values only the client can judge.
LEGACY_BEFORE = PG_INPUT_IS_VALID_SINCE


@dataclass(frozen=True)
class Scope:
    """Which apps an audit looks at: all (``names`` empty) or the named ones."""

    names: tuple[str, ...] = ()
    uuids: tuple[str, ...] = ()

    @property
    def everything(self) -> bool:
        return not self.names


def resolve_scope(conn: psycopg.Connection, names: Iterable[str], allowed: Iterable[str] = ()) -> Scope:
    """Map app names to uuids; an unknown name is :class:`BadInput` (with the closest names)."""
    wanted = tuple(dict.fromkeys(names))
    if not wanted:
        return Scope()
    found = app_uuids(conn, wanted)
    missing = [n for n in wanted if n not in found]
    if missing:
        raise unknown_app(conn, missing, allowed)
    return Scope(wanted, tuple(found[n] for n in wanted))


def select_checks(generation: Generation, selection: Selection, scope: Scope) -> list[Check]:
    """The checks to run, in catalogue order; unknown ids are :class:`BadInput`."""
    catalogue = CATALOGUE
    for cid in (*selection.include, *selection.exclude, *selection.severity_overrides):
        if cid not in catalogue:
            raise BadInput(unknown_check(cid, catalogue), kind="unknown check")
    for cid, spec in selection.severity_overrides.items():
        try:
            resolve_override(catalogue[cid], spec, strict=False)
        except BadOverride as exc:
            raise BadInput(f"severity override for {cid}: {exc}") from None
    chosen = []
    for check in catalogue.values():
        if selection.include and check.id not in selection.include:
            continue
        if check.id in selection.exclude or not check.applies_to(generation):
            continue
        if check.database_level and not scope.everything and check.id not in selection.include:
            continue
        chosen.append(check)
    return chosen


def scope_fragments(scope: Scope) -> dict[str, sql.Composable]:
    """The scope predicates; ``{serial}``: a WHERE term that keeps a scan of a few apps' rows out of
    parallel workers (``pg_backend_pid()`` is parallel restricted; evaluated once), whose start
    costs more than such a scan."""
    if scope.everything:
        return {"scope": sql.SQL("true"), "app_scope": sql.SQL("true"), "partial": sql.SQL("false"),
                "serial": sql.SQL("true")}
    return {
        "scope": sql.SQL("app_id = ANY(%(app_uuids)s::uuid[])"),
        "app_scope": sql.SQL("uuid = ANY(%(app_uuids)s::uuid[])"),
        "partial": sql.SQL("true"),
        "serial": sql.SQL("pg_backend_pid() > 0"),
    }


def build_statement(
    generation: Generation, checks: list[Check], scope: Scope, server_version: int = PG_INPUT_IS_VALID_SINCE,
    ordered: bool = True, listing: Listing = EVERYTHING, overrides: Resolved | None = None,
    client_side: frozenset[str] | None = None, gated: sql.Composable | None = None, stable: bool = False,
) -> sql.Composed:
    """One statement: the passes the checks need, then the union of the checks, ordered
    (most severe first, by app; the counts last) unless ``ordered`` is false, then in the checks'
    order when ``stable`` (:func:`check_order`: what the JSON report lists); behind the one-time
    filter ``gated`` when given (:func:`cast_gate`), where from PostgreSQL 16 a check with a
    :class:`~auditor.core.catalogue.Gated` form reads the passes the gate reads (:func:`_gated_for`).

    The checks in ``client_side`` (default: before PostgreSQL 16 every check with a ``legacy_filter``,
    from 16 none) return their ``legacy_sql`` rows for the client to filter; before 16 the others with
    a ``cast_sql`` run it.

    Findings ``listing`` lists (after ``overrides``) are rows of :data:`RESULT_COLUMNS`; the others are
    counted by the server, one row per check, severity and app with the count in :data:`COUNTED_COLUMN`.
    """
    legacy = server_version < LEGACY_BEFORE
    fragments = scope_fragments(scope)
    selects: list[sql.Composable] = []
    wanted: set[str] = set()
    own_passes: dict[str, Pass] = {}  # the passes a check shares with the gate (_gated_for)
    window_listed = False  # whether a listed SELECT reads rel_pos (the shared rows' info findings)
    for i, check in enumerate(checks):
        # Only the levels the generation can give: a listed (or counted) SELECT of none is not planned.
        listed, counted = listing.split(check, overrides or {}, check.levels_for(generation))
        filtered = _filtered(check, client_side, legacy)
        if filtered:
            # Its rows are filtered on the client: every row is read, and counted there if not listed.
            listed, counted = check.levels, ()
        split = None if gated is None or filtered else _gated_for(check, generation, server_version)
        query = check.sql_for(generation, legacy or filtered, cast=not filtered) if split is None else split.sql
        if split is not None:
            own_passes.update((p.name, p) for p in split.passes)
            wanted.update(own_passes)
        above_info = None if filtered or "info" in listed else check.above_info_sql_for(generation)
        if above_info is not None and counted:
            # Its info findings are counted: the part of its SQL that gives them is left out (planning
            # it, and the passes only it reads, cost more than the rest of the check for one app).
            query = above_info
            wanted.update(check.above_info_passes)
        else:
            wanted.update(check.passes)
        window_listed = window_listed or ("info" in listed and "rel_pos" in check.passes)
        if listed:
            selects.append(_listed(check, i, query.compose(**fragments), listed if counted else ()))
        if counted:
            wanted.add("apps")
            selects.append(_counted(check, i, _count_query(check, generation, query, fragments, counted), counted))
    passes = {**passes_for(generation, window_listed, scoped=not scope.everything), **own_passes}
    ctes = [
        sql.SQL("{} AS ({})").format(sql.Identifier(p.name), p.body.compose(**fragments))
        for p in closure(passes, wanted)
    ]
    body = sql.SQL("SELECT * FROM (\n{}\n) AS findings").format(sql.SQL("\nUNION ALL\n").join(selects))
    if gated is not None:
        body = sql.SQL("{}\nWHERE {}").format(body, gated)
    order: sql.Composable = sql.SQL("")
    if ordered:
        order = sql.SQL(
            "\nORDER BY counted IS NOT NULL, CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,"
            " app_name NULLS FIRST, check_id, object_id, object_table, app_uuid")
    elif stable:
        order = check_order(checks)
    if ctes:
        return sql.SQL("WITH {}\n{}{}").format(sql.SQL(",\n").join(ctes), body, order)
    return sql.SQL("{}{}").format(body, order)


def check_order(checks: list[Check]) -> sql.Composed:
    """ORDER BY: the checks in ``checks``' order, each one's findings by app, table and object id (in
    bytes, ``COLLATE "C"``: the same order on every server; a uuid's text in bytes is the uuid's order;
    no two findings of a check share all three, its baseline key is made of them).  Without it a
    check's findings came in the order its plan gave them (a hash table's chains, parallel workers,
    the join the statistics chose), which changed with the planner's settings and statistics: the
    JSON report was not one byte sequence for one database."""
    positions = sql.SQL(" ").join(sql.SQL("WHEN {} THEN {}").format(sql.Literal(c.id), sql.Literal(i))
                                  for i, c in enumerate(checks))
    return sql.SQL("\nORDER BY CASE check_id {} END, app_uuid, object_table, object_id COLLATE \"C\"").format(positions)


def _filtered(check: Check, client_side: frozenset[str] | None, legacy: bool) -> bool:
    """Whether ``check``'s rows are filtered on the client (``client_side`` None: all that can be,
    before 16)."""
    if check.legacy_filter is None:
        return False
    return legacy if client_side is None else check.id in client_side


def _probe(check: Check, generation: Generation, server_version: int) -> Query | None:
    """``check``'s probe on this server: before 16 its cast probe, from 16 its count of the values
    only the client can judge."""
    return check.cast_probe_for(generation, cast=server_version < LEGACY_BEFORE)


def _gated_for(check: Check, generation: Generation, server_version: int) -> Gated | None:
    """From PostgreSQL 16: ``check``'s SQL and probe over the passes both read, for a statement behind
    the gate (None: its ``sql`` behind the probe of :func:`_probe`)."""
    if server_version < LEGACY_BEFORE or check.gated is None:
        return None
    return check.gated(generation)


def _gate_probe(check: Check, generation: Generation, server_version: int) -> Query | None:
    """``check``'s probe inside the gated statement: over its passes (:func:`_gated_for`) when it has
    them there, else :func:`_probe`."""
    split = _gated_for(check, generation, server_version)
    return _probe(check, generation, server_version) if split is None else split.probe


def cast_gate(generation: Generation, checks: list[Check], scope: Scope,
              server_version: int) -> sql.Composed | None:
    """When checks can filter rows on the client and each has a probe (:func:`_gate_probe`): the gate
    (:func:`auditor.audit.precast.gate`) under which the statement (:func:`build_statement` given it)
    runs every check on the server (``client_side`` empty), optimistically.  None: no gate (nothing
    to probe)."""
    fragments = scope_fragments(scope)
    probes = [_gate_probe(c, generation, server_version) for c in checks if c.legacy_filter is not None]
    if not probes or any(p is None for p in probes):
        return None
    return gate([p.compose(**fragments) for p in probes if p is not None])


def client_side_checks(conn: psycopg.Connection, generation: Generation, checks: list[Check], scope: Scope,
                       params: Mapping[str, object], server_version: int) -> frozenset[str]:
    """The ids of the checks whose rows must be filtered on the client: those with a ``legacy_filter``
    whose probe (:func:`_probe`) fails or leaves values to the client (:mod:`auditor.audit.precast`)."""
    fragments = scope_fragments(scope)
    left = set()
    for check in checks:
        if check.legacy_filter is None:
            continue
        probe = _probe(check, generation, server_version)
        try:
            clean = probe is not None and casts_cleanly(conn, probe.compose(**fragments), params)
        except psycopg.errors.QueryCanceled as exc:
            raise _timed_out([check], exc) from None
        if not clean:
            left.add(check.id)
    return frozenset(left)


def _levels(alias: str, levels: tuple[str, ...]) -> sql.Composed:
    """SQL: the row's ``severity`` is one of ``levels``."""
    return sql.SQL("{}.severity IN ({})").format(sql.Identifier(alias), sql.SQL(", ").join(map(sql.Literal, levels)))


def _listed(check: Check, index: int, query: sql.Composed, only: tuple[str, ...]) -> sql.Composed:
    """The check's findings one by one (those at the levels ``only``, when given)."""
    alias = f"c{index}"
    columns = sql.SQL(", ").join(
        sql.SQL("{}::text AS {}").format(sql.Identifier(alias, c), sql.Identifier(c)) if c in JSON_COLUMNS
        else sql.Identifier(alias, c) for c in RESULT_COLUMNS)
    manual = sql.Identifier(MANUAL_COLUMN) if check.repair else sql.SQL("NULL::text AS {}").format(
        sql.Identifier(MANUAL_COLUMN))
    where = sql.SQL(" WHERE {}").format(_levels(alias, only)) if only else sql.SQL("")
    return sql.SQL("SELECT {} AS check_id, {}, {}, NULL::bigint AS {} FROM ({}) AS {}{}").format(
        sql.Literal(check.id), columns, manual, sql.Identifier(COUNTED_COLUMN), query, sql.Identifier(alias), where)


def _count_query(check: Check, generation: Generation, query: Query,
                 fragments: dict[str, sql.Composable], levels: tuple[str, ...]) -> sql.Composed:
    """The check's counting SELECT (``severity``, ``app_uuid``, ``n``) of its findings at ``levels``: its
    own, else the rows of its ``query`` counted."""
    own = check.count_sql_for(generation, levels)
    if own is not None:
        return own.compose(**fragments)
    return sql.SQL("SELECT r.severity, r.app_uuid, count(*) AS n FROM ({}) AS r GROUP BY r.severity, r.app_uuid").format(
        query.compose(**fragments))


def _counted(check: Check, index: int, query: sql.Composed, levels: tuple[str, ...]) -> sql.Composed:
    """One row per severity and app of the check's findings at ``levels``: how many, nothing else."""
    alias = f"n{index}"
    return sql.SQL(
        "SELECT {check} AS check_id, {a}.severity, {a}.app_uuid, ca.name AS app_name, NULL::text AS object_table,"
        " NULL::text AS object_id, NULL::text AS message, NULL::text AS related, NULL::text AS evidence,"
        " NULL::text AS manual, {a}.n::bigint AS counted"
        " FROM ({query}) AS {a} LEFT JOIN apps ca ON ca.uuid = {a}.app_uuid WHERE {levels}").format(
        check=sql.Literal(check.id), a=sql.Identifier(alias), query=query, levels=_levels(alias, levels))


def params_for(scope: Scope, grace_seconds: float, skew_seconds: float = DEFAULT_SKEW_SECONDS) -> dict[str, object]:
    """The named parameters every statement gets (``cast_refused``: see :func:`narrowed`)."""
    return {"grace_seconds": grace_seconds, "skew_seconds": skew_seconds, "app_uuids": list(scope.uuids),
            "cast_refused": None}


def narrowed(conn: psycopg.Connection, generation: Generation, checks: list[Check], scope: Scope,
             params: Mapping[str, object], client_side: frozenset[str]) -> list[str] | None:
    """For the checks filtered on the client: the rows whose values the cast refuses
    (``cast_refused``: their ``legacy_sql`` then ships those and the rows only a parse can clear), or
    None (ship every row) when such a check cannot find them."""
    filtered = [c for c in checks if c.id in client_side and c.legacy_filter is not None]
    if not filtered or any(c.cast_ranges_sql is None or c.cast_judge is None for c in filtered):
        return None
    fragments = scope_fragments(scope)
    refused: set[str] = set()
    for check in filtered:
        ranges, judge = check.cast_ranges_for(generation), check.cast_judge
        assert ranges is not None and judge is not None
        try:
            for cast, values in ranges:
                refused.update(refused_rows(conn, cast.compose(**fragments), values.compose(**fragments), params, judge))
        except psycopg.errors.QueryCanceled as exc:
            raise _timed_out([check], exc) from None
    return sorted(refused)


def run_checks(
    conn: psycopg.Connection,
    generation: Generation,
    checks: list[Check],
    scope: Scope,
    *,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    skew_seconds: float = DEFAULT_SKEW_SECONDS,
    severity_overrides: Mapping[str, Any] | None = None,
    server_version: int | None = None,
    ordered: bool = True,
    listing: Listing = EVERYTHING,
    hidden: list[Counted] | None = None,
    client_side: frozenset[str] | None = None,
    narrow: bool = True,
) -> Iterator[Finding]:
    """Stream the findings of ``checks`` (inside the caller's read-only transaction).

    ``server_version`` overrides the server's own (tests force the pre-16 path with it).
    ``client_side``: the checks filtered on the client (default: none, under the gate of
    :func:`cast_gate`; when it refuses, those the probes leave to the client); ``narrow``:
    they read only the rows the server cannot clear (:func:`narrowed`; false: every row, the
    reference the narrowing is tested against).
    ``ordered``: most severe first, by app (a sort of every finding); else by check (:func:`check_order`).
    ``listing``: the findings below its floor are not yielded but counted by the server, and the
    counts appended to ``hidden`` (per check, severity and app) as they arrive.
    """
    if not checks:
        return
    by_id = {c.id: c for c in checks}
    overrides = resolve_overrides(by_id, severity_overrides or {})
    version = server_version or conn.info.server_version
    params = params_for(scope, grace_seconds, skew_seconds)
    sink = _sink(listing, hidden)
    gated = None if client_side is not None else cast_gate(generation, checks, scope, version)
    if gated is not None:
        statement = build_statement(generation, checks, scope, version, ordered, listing, overrides, frozenset(), gated,
                                    stable=True)
        with _timeouts(checks):
            rows = optimistically(conn, _rows(conn, statement, params))
        if rows is not None:
            yield from _guarded(checks, _as_findings(rows, overrides, by_id, frozenset(), listing, sink))
            return
    if client_side is None:
        client_side = client_side_checks(conn, generation, checks, scope, params, version)
    if narrow:
        params["cast_refused"] = narrowed(conn, generation, checks, scope, params, client_side)
    statement = build_statement(generation, checks, scope, version, ordered, listing, overrides, client_side,
                                stable=True)
    rows = _rows(conn, statement, params)
    yield from _guarded(checks, _as_findings(rows, overrides, by_id, client_side, listing, sink))


class PendingFindings:
    """The findings of a statement sent ahead (:meth:`send`), read later: in a pipeline, the server
    runs it while the client does other work (``explain`` turns the app's story into objects)."""

    def __init__(self, conn: psycopg.Connection, generation: Generation, checks: list[Check], scope: Scope, *,
                 grace_seconds: float = DEFAULT_GRACE_SECONDS, skew_seconds: float = DEFAULT_SKEW_SECONDS,
                 severity_overrides: Mapping[str, Any] | None = None, server_version: int | None = None,
                 listing: Listing = EVERYTHING, hidden: list[Counted] | None = None) -> None:
        """The ordered statement of :func:`run_checks`: behind its gate, else (nothing to probe) after
        what :func:`run_checks` does before its statement."""
        self.conn, self.generation, self.checks, self.scope, self.listing = conn, generation, checks, scope, listing
        self.by_id = {c.id: c for c in checks}
        self.overrides = resolve_overrides(self.by_id, severity_overrides or {})
        self.version = server_version or conn.info.server_version
        self.params = params_for(scope, grace_seconds, skew_seconds)
        self.gated = cast_gate(generation, checks, scope, self.version) if checks else None
        self.client_side: frozenset[str] = frozenset()
        self.statement: sql.Composed | None = None
        if self.gated is not None:
            self.statement = self._built(self.gated)
        elif checks:
            self._careful()
        self.hidden = _sink(listing, hidden)
        self._cursor: psycopg.Cursor[ResultRow] | None = None

    def _built(self, gated: sql.Composable | None = None) -> sql.Composed:
        return build_statement(self.generation, self.checks, self.scope, self.version, True, self.listing,
                               self.overrides, self.client_side, gated)

    def _careful(self) -> None:
        """The statement without the gate: the probes and the narrowing first."""
        self.gated = None
        self.client_side = client_side_checks(self.conn, self.generation, self.checks, self.scope, self.params,
                                              self.version)
        self.params["cast_refused"] = narrowed(self.conn, self.generation, self.checks, self.scope, self.params,
                                               self.client_side)
        self.statement = self._built()

    def send(self) -> None:
        """Send the statement (on a client-side cursor: its rows arrive at once, which suits the few
        findings of one app; inside a pipeline the call returns before the server has run it); behind
        the gate, in a savepoint."""
        if self.statement is None:
            return
        if self.gated is not None:
            savepoint(self.conn)
        self._cursor = self.conn.cursor(row_factory=args_row(ResultRow))
        with _timeouts(self.checks):
            self._cursor.execute(self.statement, self.params)

    def read(self) -> list[Finding]:
        """The findings, most severe first, grouped by app (as :func:`run_checks` yields them); those
        the listing does not list are counted into the ``hidden`` list given.  When the gate refuses,
        the careful statement is run (in the pipeline, if any) instead."""
        if self._cursor is None:
            return []
        with _timeouts(self.checks):
            rows = self._rows()
            if rows is None:
                self._careful()
                self.send()
                rows = self._rows()
        assert rows is not None
        return list(_as_findings(rows, self.overrides, self.by_id, self.client_side, self.listing, self.hidden))

    def _rows(self) -> list[ResultRow] | None:
        """The statement's rows; None when its gate refused (rolled back to the savepoint)."""
        assert self._cursor is not None
        with self._cursor as cur:
            try:
                rows = cur.fetchall()
            except psycopg.Error as exc:
                if self.gated is None:
                    raise
                roll_back(self.conn, exc)
                return None
        if self.gated is not None:
            release(self.conn)
        return rows


def _sink(listing: Listing, hidden: list[Counted] | None) -> list[Counted]:
    """Where the counts of what ``listing`` does not list go (a caller that lists everything may omit it)."""
    if hidden is None:
        assert listing == EVERYTHING, "counted findings need a list to go to"
        return []
    return hidden


class Located(NamedTuple):
    """Where a finding is, and whether its check's repair applies (what a planner starts from)."""

    check: str
    app_uuid: str
    object_table: str
    object_id: str
    manual: str | None


def locate(
    conn: psycopg.Connection,
    generation: Generation,
    checks: list[Check],
    scope: Scope,
    *,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    skew_seconds: float = DEFAULT_SKEW_SECONDS,
) -> list[Located]:
    """The objects the findings of ``checks`` are about, with their ``manual`` column: the same
    statement as :func:`run_checks` (same passes, scope and clock), of which only those columns are
    read (the server skips messages and evidence nobody reads).  For checks that filter no rows on
    the client (every check with a repair)."""
    if not checks:
        return []
    assert all(c.legacy_filter is None for c in checks), "a check filtered on the client cannot be located"
    statement = build_statement(generation, checks, scope, conn.info.server_version, ordered=False)
    lean = sql.SQL("SELECT f.check_id, f.app_uuid::text, f.object_table, f.object_id::text, f.manual "
                   "FROM ({}) AS f").format(statement)
    with conn.cursor(row_factory=args_row(Located)) as cur:
        return list(_guarded(checks, iter(cur.execute(lean, params_for(scope, grace_seconds, skew_seconds)))))


def stream_checks(
    conn: psycopg.Connection,
    generation: Generation,
    checks: list[Check],
    scope: Scope,
    shape: Shape,
    *,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    skew_seconds: float = DEFAULT_SKEW_SECONDS,
    severity_overrides: Mapping[str, Any] | None = None,
    server_version: int | None = None,
    listing: Listing = EVERYTHING,
    hidden: list[Counted] | None = None,
) -> Iterator[StreamedFinding]:
    """Stream the findings of ``checks`` rendered by the server in ``shape``, by check, app and object
    (:func:`check_order`; :mod:`auditor.audit.streamed`; the JSON report spools them by severity).

    Where a check must filter its rows on the client (a JSON value that does not cast before
    PostgreSQL 16, or one only Python can judge), its findings are read as :class:`Finding` and
    rendered here instead: the same shape either way; the other checks still render on the server.
    """
    if not checks:
        return
    version = server_version or conn.info.server_version
    params = params_for(scope, grace_seconds, skew_seconds)
    overrides = resolve_overrides({c.id: c for c in checks}, severity_overrides or {})
    # A SQL_ASCII database may hold bytes that are not UTF-8: the key is computed here then.
    server_key = version >= SHA256_SINCE and generation.encoding != "SQL_ASCII"
    sink = _sink(listing, hidden)
    gated = cast_gate(generation, checks, scope, version)
    if gated is not None:
        statement = build_statement(generation, checks, scope, version, False, listing, overrides, frozenset(), gated,
                                    stable=True)
        with _timeouts(checks):
            rows = optimistically(conn, stream_rows(conn, wrap(statement, shape, version, server_key), params, overrides))
        if rows is not None:
            yield from _guarded(checks, streamed_findings(rows, server_key, sink))
            return
    client_side = client_side_checks(conn, generation, checks, scope, params, version)
    on_server = [c for c in checks if c.id not in client_side]
    if on_server:
        statement = build_statement(generation, on_server, scope, version, False, listing, overrides, client_side,
                                    stable=True)
        yield from _guarded(on_server, _streamed(conn, statement, params, overrides, version, shape, server_key, sink))
    on_client = [c for c in checks if c.id in client_side]
    if on_client:
        for finding in run_checks(conn, generation, on_client, scope, grace_seconds=grace_seconds,
                                  skew_seconds=skew_seconds, severity_overrides=severity_overrides,
                                  server_version=version, ordered=False, listing=listing, hidden=hidden,
                                  client_side=client_side):
            yield StreamedFinding.of(finding, shape)


def _streamed(conn: psycopg.Connection, statement: sql.Composed, params: dict[str, object], overrides: Resolved,
              version: int, shape: Shape, server_key: bool, hidden: list[Counted]) -> Iterator[StreamedFinding]:
    yield from stream(conn, wrap(statement, shape, version, server_key), params, overrides, server_key, hidden)


def _rows(conn: psycopg.Connection, statement: sql.Composed, params: dict[str, object]) -> Iterator[ResultRow]:
    """The rows of ``statement`` through a server cursor (sent at the first row)."""
    with conn.cursor(name="controller_audit_findings", row_factory=args_row(ResultRow)) as cur:
        cur.itersize = _FETCH_SIZE
        cur.execute(statement, params)
        yield from cur


def _as_findings(rows: Iterable[ResultRow], overrides: Resolved, by_id: dict[str, Check],
                 client_side: frozenset[str], listing: Listing, hidden: list[Counted]) -> Iterator[Finding]:
    """The statement's ``rows`` as findings; the rows that count findings not listed go to ``hidden``."""
    for row in rows:
        severity = apply_override(overrides, row.check_id, row.severity)
        if row.counted is not None:
            hidden.append(Counted(row.check_id, severity, row.app_name, row.counted))
            continue
        row = _parsed(row)
        check = by_id[row.check_id]
        if check.legacy_filter is not None and check.id in client_side:
            kept = check.legacy_filter(row)
            if kept is None:
                continue
            row = kept
            severity = apply_override(overrides, row.check_id, row.severity)
            if not listing.lists(severity):
                hidden.append(Counted(row.check_id, severity, row.app_name, 1))
                continue
        yield Finding(
            check=row.check_id,
            severity=severity,
            app_uuid=str(row.app_uuid) if row.app_uuid is not None else None,
            app_name=row.app_name,
            object_table=row.object_table,
            object_id=str(row.object_id),
            message=row.message,
            related=row.related or [],
            evidence=row.evidence or {},
            repair=check.repair if row.manual is None else None,
            manual=row.manual,
        )


def _parsed(row: ResultRow) -> ResultRow:
    """``row`` with its :data:`JSON_COLUMNS` parsed (the statement sends them as text)."""
    related: Any = row.related
    evidence: Any = row.evidence
    return row._replace(related=None if related is None else json.loads(related),
                        evidence=None if evidence is None else json.loads(evidence))


def _guarded(checks: list[Check], rows: Iterator[T]) -> Iterator[T]:
    """``rows``, with a timeout turned into a one-line :class:`AuditFailed` (a missing privilege is
    :func:`auditor.core.session.read_session`'s)."""
    try:
        yield from rows
    except psycopg.errors.QueryCanceled as exc:
        raise _timed_out(checks, exc) from None


@contextmanager
def _timeouts(checks: list[Check]) -> Iterator[None]:
    """A timeout inside the block becomes the one-line :class:`AuditFailed` of :func:`_guarded`."""
    try:
        yield
    except psycopg.errors.QueryCanceled as exc:
        raise _timed_out(checks, exc) from None


def _timed_out(checks: list[Check], exc: psycopg.errors.QueryCanceled) -> AuditFailed:
    names = ", ".join(c.id for c in checks)
    return AuditFailed(
        f"statement_timeout reached while running check(s) {names}: {exc.diag.message_primary}; "
        "raise --statement-timeout or narrow with --check/--app",
        kind="timeout",
    )
