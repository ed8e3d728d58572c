"""Runs the selected checks in one snapshot, as one statement, and streams the findings."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from auditor.audit.streamed import SHA256_SINCE, Shape, StreamedFinding, stream, wrap
from auditor.core.catalogue import Check, load_catalogue
from auditor.core.detect import Generation
from auditor.core.errors import AuditFailed, BadInput
from auditor.core.findings import Finding
from auditor.core.overrides import BadOverride, Resolved
from auditor.core.overrides import apply as apply_override
from auditor.core.overrides import resolve as resolve_override
from auditor.core.overrides import resolve_all as resolve_overrides
from auditor.core.passes import closure, passes_for

DEFAULT_GRACE_SECONDS = 300
#: How far ahead of the database's clock a controller host's clock may run: rows created up to
#: this long after ``now()`` are in flight; later ones are future-dated.
DEFAULT_SKEW_SECONDS = 60
_FETCH_SIZE = 2000


@dataclass(frozen=True)
class Scope:
    """Which apps an audit looks at: all (``names`` empty) or the named ones."""

    names: tuple[str, ...] = ()
    uuids: tuple[str, ...] = ()

    @property
    def everything(self) -> bool:
        return not self.names


@dataclass
class Selection:
    """Which checks run, with the per-check severity overrides of the config file.

    An override is a level map (``{"info": "info", "warning": "critical"}``), a table with
    ``floor`` / ``ceiling``, or a severity for every level (see :mod:`auditor.core.overrides`).
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    severity_overrides: Mapping[str, Any] = field(default_factory=dict)


def resolve_scope(conn: psycopg.Connection, names: Iterable[str]) -> Scope:
    """Map app names to uuids; an unknown name is :class:`BadInput`."""
    wanted = tuple(dict.fromkeys(names))
    if not wanted:
        return Scope()
    rows = conn.execute("SELECT id, uuid::text FROM api_app WHERE id = ANY(%s)", (list(wanted),)).fetchall()
    found = {name: uid for name, uid in rows}
    missing = [n for n in wanted if n not in found]
    if missing:
        raise BadInput(f"no app named {', '.join(repr(n) for n in missing)} in this database", kind="unknown app")
    return Scope(wanted, tuple(found[n] for n in wanted))


def select_checks(generation: Generation, selection: Selection, scope: Scope) -> list[Check]:
    """The checks to run, in catalogue order; unknown ids are :class:`BadInput`."""
    catalogue = load_catalogue()
    for cid in (*selection.include, *selection.exclude, *selection.severity_overrides):
        if cid not in catalogue:
            raise BadInput(f"unknown check id {cid!r} (see: controller-audit checks)", kind="unknown check")
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


def _scope_fragments(scope: Scope) -> dict[str, sql.Composable]:
    if scope.everything:
        return {"scope": sql.SQL("true"), "app_scope": sql.SQL("true"), "partial": sql.SQL("false")}
    return {
        "scope": sql.SQL("app_id = ANY(%(app_uuids)s::uuid[])"),
        "app_scope": sql.SQL("uuid = ANY(%(app_uuids)s::uuid[])"),
        "partial": sql.SQL("true"),
    }


def _check_sql(check: Check, legacy: bool, generation: Generation) -> str:
    return check.sql_for(generation, legacy)


def build_statement(
    generation: Generation, checks: list[Check], scope: Scope, server_version: int = 160000, ordered: bool = True
) -> sql.Composed:
    """One statement: the passes the checks need, then the union of the checks, ordered
    (most severe first, by app) unless ``ordered`` is false."""
    legacy = server_version < 160000
    fragments = _scope_fragments(scope)
    passes = passes_for(generation)
    needed = closure(passes, {name for check in checks for name in check.passes})
    ctes = [
        sql.SQL("{} AS ({})").format(sql.Identifier(p.name), sql.SQL(p.body).format(**fragments)) for p in needed
    ]
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in ("severity", "app_uuid", "app_name", "object_table",
                                                             "object_id", "message", "related", "evidence"))
    selects = [
        sql.SQL("SELECT {} AS check_id, {} FROM ({}) AS {}").format(
            sql.Literal(check.id), columns, sql.SQL(_check_sql(check, legacy, generation)).format(**fragments),
            sql.Identifier("c" + str(i)),
        )
        for i, check in enumerate(checks)
    ]
    body = sql.SQL("SELECT * FROM (\n{}\n) AS findings").format(sql.SQL("\nUNION ALL\n").join(selects))
    order = sql.SQL("") if not ordered else sql.SQL(
        "\nORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,"
        " app_name NULLS FIRST, check_id, object_id"
    )
    if ctes:
        return sql.SQL("WITH {}\n{}{}").format(sql.SQL(",\n").join(ctes), body, order)
    return sql.SQL("{}{}").format(body, order)


def params_for(scope: Scope, grace_seconds: float, skew_seconds: float = DEFAULT_SKEW_SECONDS) -> dict[str, object]:
    """The named parameters every statement gets."""
    return {"grace_seconds": grace_seconds, "skew_seconds": skew_seconds, "app_uuids": list(scope.uuids)}


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
    shape: Shape | None = None,
    ordered: bool = True,
) -> Iterator[Finding] | Iterator[StreamedFinding]:
    """Stream the findings of ``checks`` (inside the caller's read-only transaction).

    ``server_version`` overrides the server's own (tests force the pre-16 path with it).
    With a ``shape`` the server renders the findings (:mod:`auditor.audit.streamed`), unless a
    check must filter its rows client-side on this server.  ``ordered``: most severe first,
    by app (a sort of every finding; the JSON and Prometheus reports do without it).
    """
    if not checks:
        return
    by_id = {c.id: c for c in checks}
    overrides = resolve_overrides(by_id, severity_overrides or {})
    version = server_version or conn.info.server_version
    legacy = version < 160000
    statement = build_statement(generation, checks, scope, version, ordered)
    params = params_for(scope, grace_seconds, skew_seconds)
    if shape is not None and not (legacy and any(c.legacy_filter is not None for c in checks)):
        # A SQL_ASCII database may hold bytes that are not UTF-8: the key is computed here then.
        server_key = version >= SHA256_SINCE and generation.encoding != "SQL_ASCII"
        yield from _guarded(checks, _streamed(conn, statement, params, overrides, version, shape, server_key))
        return
    yield from _guarded(checks, _findings(conn, statement, params, overrides, by_id, legacy))


def _streamed(conn: psycopg.Connection, statement: sql.Composed, params: dict[str, object],
              overrides: Resolved, version: int, shape: Shape, server_key: bool) -> Iterator[StreamedFinding]:
    with conn.cursor(name="controller_audit_findings") as cur:
        yield from stream(cur, wrap(statement, shape, version, server_key), params, overrides, server_key)


def _findings(conn: psycopg.Connection, statement: sql.Composed, params: dict[str, object],
              overrides: Resolved, by_id: dict[str, Check], legacy: bool) -> Iterator[Finding]:
    with conn.cursor(name="controller_audit_findings") as cur:
        cur.itersize = _FETCH_SIZE
        cur.execute(statement, params)
        for row in cur:
            check = by_id[row[0]]
            if legacy and check.legacy_filter is not None:
                kept = check.legacy_filter(row[1:])
                if kept is None:
                    continue
                row = (row[0], *kept)
            severity = apply_override(overrides, row[0], row[1])
            yield Finding(
                check=row[0],
                severity=severity,
                app_uuid=str(row[2]) if row[2] is not None else None,
                app_name=row[3],
                object_table=row[4],
                object_id=str(row[5]),
                message=row[6],
                related=row[7] or [],
                evidence=row[8] or {},
            )


def _guarded(checks: list[Check], rows: Iterator[Finding] | Iterator[StreamedFinding]) -> Iterator:
    """``rows``, with a timeout or missing privilege turned into a one-line :class:`AuditFailed`."""
    try:
        yield from rows
    except psycopg.errors.QueryCanceled as exc:
        names = ", ".join(c.id for c in checks)
        raise AuditFailed(
            f"statement_timeout reached while running check(s) {names}: {exc.diag.message_primary}; "
            "raise --statement-timeout or narrow with --check/--app",
            kind="timeout",
        ) from None
    except psycopg.errors.InsufficientPrivilege as exc:
        raise AuditFailed(f"permission denied: {exc.diag.message_primary}", kind="permission denied") from None
