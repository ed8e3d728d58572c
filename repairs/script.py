"""``plan sql`` and ``undo sql``: a plan (or the way back) as a script for ``psql -v ON_ERROR_STOP=1 -f``.

The script runs the same statements as ``apply`` / ``undo`` (:mod:`repairs.statements`), in one
transaction: identity check, load the actions (one multi-row INSERT of psycopg literals), lock,
skip what is in effect already, the checks (fingerprints and re-derivation), change, invariants,
COMMIT.  Every check raises, so ``ON_ERROR_STOP`` ends psql and the transaction is rolled back.

This is the one place sqlglot serves: it lays each statement out for a reviewer (indented, one
clause a line) and parses its own output back as a check; what it cannot parse (the PL/pgSQL
``DO`` blocks, ``SET CONSTRAINTS``) and the data rows are written as psycopg composed them.
``apply`` never goes through here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlglot
from psycopg import sql
from sqlglot import exp

from auditor.core.detect import Generation
from auditor.core.server_support import PG_CONTROL_SYSTEM_SINCE
from auditor.core.text import escape
from repairs.actions import ActionTable
from repairs.identity import Identity
from repairs.model import Action, Invariants, kind_of
from repairs.planfile import COLUMN_TABLES, Plan
from repairs.statements import (
    CONSTRAINTS_NOW,
    EXPECT_COLUMNS,
    PARAMS_COLUMNS,
    PLAN_COLUMNS,
    Statements,
    raise_if_rows,
)
from repairs.summary import changes_text
from repairs.undofile import UndoFile

_IDENTITY_CHECK = """DO $$
DECLARE expected record; wanted record; migration text; sysid text; actual text;
BEGIN
  SELECT * INTO expected FROM ca_identity;
  IF current_database() <> expected.database THEN
    RAISE EXCEPTION 'controller-audit: other database: the {what} was made on database %, this is %',
      expected.database, current_database();
  END IF;
  IF expected.migration IS NOT NULL AND has_table_privilege('django_migrations', 'SELECT') THEN
    SELECT max(name) INTO migration FROM django_migrations WHERE app = 'api';
    IF migration IS DISTINCT FROM expected.migration THEN
      RAISE EXCEPTION 'controller-audit: other database: the {what} was made at api migration %, this is %',
        expected.migration, migration;
    END IF;
  END IF;
  FOR wanted IN SELECT * FROM ca_columns LOOP
    SELECT string_agg(a.attname, ',' ORDER BY a.attnum) INTO actual FROM pg_attribute a
      WHERE a.attrelid = CAST(wanted.tbl AS regclass) AND a.attnum > 0 AND NOT a.attisdropped;
    IF actual IS DISTINCT FROM wanted.columns THEN
      RAISE EXCEPTION 'controller-audit: other database: the columns of % are %, the {what} was made for %',
        wanted.tbl, actual, wanted.columns;
    END IF;
  END LOOP;
  IF expected.system_identifier IS NOT NULL AND current_setting('server_version_num')::int >= {since} THEN
    BEGIN
      EXECUTE 'SELECT system_identifier::text FROM pg_control_system()' INTO sysid;
    EXCEPTION WHEN insufficient_privilege THEN sysid := NULL;
    END;
    IF sysid IS NOT NULL AND sysid <> expected.system_identifier THEN
      RAISE EXCEPTION 'controller-audit: other database: the {what} was made on server %, this is %',
        expected.system_identifier, sysid;
    END IF;
  END IF;
END $$"""

#: Says, without stopping psql, which apps were already in effect (and when all were).
_DONE_NOTICE = """DO $$
DECLARE skipped text; remaining bigint;
BEGIN
  SELECT string_agg(coalesce(a.id, CAST(d.app AS text)), ', ' ORDER BY a.id) INTO skipped
    FROM ca_done d LEFT JOIN api_app a ON a.uuid = d.app WHERE d.done;
  SELECT count(*) INTO remaining FROM ca_plan;
  IF remaining = 0 THEN
    RAISE NOTICE 'controller-audit: {state}: every action is in effect; nothing to change';
  ELSIF skipped IS NOT NULL THEN
    RAISE NOTICE 'controller-audit: {state} for app(s) %: skipped', skipped;
  END IF;
END $$"""


@dataclass
class ScriptSource:
    """What a script is rendered from: a plan, or the way back an undo file describes."""

    what: str  # "plan" or "undo file"
    checksum: str | None
    created: str
    tool_version: str
    identity: Identity
    generation: Generation
    actions: ActionTable
    invariants: Invariants
    grace_seconds: float
    repairs: list[str]

    @classmethod
    def of_plan(cls, plan: Plan) -> ScriptSource:
        return cls("plan", plan.checksum, plan.created, plan.tool_version, plan.identity, plan.generation(),
                   plan.actions, plan.checked_invariants(), plan.grace_seconds, plan.repairs)

    @classmethod
    def of_undo(cls, undo: UndoFile, generation: Generation) -> ScriptSource:
        return cls("undo file", undo.checksum, undo.created, "?", undo.identity, generation, undo.actions,
                   Invariants(), 0.0, ["undo"])


def _do_block(template: str, **parts: sql.Composable) -> str:
    """A PL/pgSQL block with its constant parts composed in (the script shows it verbatim)."""
    return sql.SQL(template).format(**parts).as_string(None)


def review(statement: sql.Composable | str) -> str:
    """``statement`` as the script shows it: laid out by sqlglot (dialect postgres) for review and
    parsed back as a check, or verbatim where sqlglot does not parse it (PL/pgSQL, SET CONSTRAINTS)."""
    text = statement if isinstance(statement, str) else statement.as_string(None)
    with _quiet(logging.getLogger("sqlglot")):  # its "falling back to a Command" is for us, not the user
        try:
            parsed = sqlglot.parse_one(text, read="postgres")
        except sqlglot.errors.ParseError:
            return text
        if isinstance(parsed, exp.Command):
            return text
        rendered = parsed.sql(dialect="postgres", pretty=True)
        if isinstance(sqlglot.parse_one(rendered, read="postgres"), exp.Command):
            raise AssertionError(f"sqlglot cannot parse a statement it rendered: {rendered[:80]}")
    return rendered


@contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """``logger`` says only errors while the block runs."""
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _values_insert(table: str, columns: tuple[tuple[str, str], ...], rows: list[tuple]) -> str:
    """One multi-row ``INSERT ... VALUES`` of literal rows (psycopg's literals, one row a line)."""
    values = sql.SQL(",\n").join(sql.SQL("({})").format(sql.SQL(", ").join(map(sql.Literal, row))) for row in rows)
    return sql.SQL("INSERT INTO {} ({}) VALUES\n{}").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c, _ in columns), values).as_string(None)


def _comment(text: str) -> str:
    """SQL comment lines; control characters in ``text`` are shown escaped (``\\x1b``), so data
    in a comment can neither end it nor rewrite what a reviewer's terminal shows."""
    return "\n".join("-- " + escape(line) for line in text.split("\n"))


def action_comment(action: Action) -> str:
    """The reviewer's line for one action."""
    app = escape(action.app_name or action.app_uuid)
    where = f" v{action.release_version}" if action.release_version is not None else ""
    target = {
        "copy": f"copy {kind_of(action.table)} {action.row} as {action.new_uuid} (created {action.new_created})",
        "redate": f"re-date {kind_of(action.table)} {action.row} to {action.new_created}",
        "prune": f"delete orphan {kind_of(action.table)} {action.row}",
        "uncopy": f"point back at {action.new_uuid}, delete copy {action.row}",
        "reinsert": f"re-insert {kind_of(action.table)} {action.row}",
    }[action.kind]
    return _comment(f"#{action.id} {action.repair} {app}{where}: {escape(target)}\n   why: {escape(action.why)}")


def script_lines(source: ScriptSource | Plan, lock_timeout: str) -> Iterator[str]:
    """The script, statement by statement (each ends with ``;``)."""
    if isinstance(source, Plan):
        source = ScriptSource.of_plan(source)
    ident, what = source.identity, source.what
    state = "already undone" if what == "undo file" else "already applied"
    yield _comment(
        f"controller-audit repair script for {what} {source.checksum}\n"
        f"made {source.created} on {escape(ident.target)}\n"
        f"database {escape(ident.database)}, {ident.generation} api {escape(ident.migration_label)}\n"
        f"repairs: {', '.join(source.repairs)}; {len(source.actions)} action(s); rows: "
        f"{changes_text(source.actions.expected_changes())}\n"
        "run with: psql -v ON_ERROR_STOP=1 -f THIS_FILE  (against the same database)\n"
        "One transaction: any failed check raises, psql stops, and nothing is changed.\n"
        f"Run twice, it says '{state}' (a NOTICE) and changes nothing.\n"
        "The statements are apply's own, laid out for review by sqlglot; the DO blocks (PL/pgSQL) and\n"
        "SET CONSTRAINTS, which sqlglot does not parse, are kept verbatim.")
    yield "\\set ON_ERROR_STOP on"
    if not source.actions:
        yield _comment(f"The {what} is empty: nothing to change.")
        return
    statements = Statements(source.generation)
    yield "BEGIN;"
    yield review(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(lock_timeout))) + ";"
    yield review("SET LOCAL timezone = 'UTC'") + ";"
    yield review("SET LOCAL datestyle = 'ISO, MDY'") + ";"
    yield _comment(f"Is this the database the {what} was made on (name, migration, columns, server)?")
    yield review("CREATE TEMPORARY TABLE ca_identity (database text, migration text, system_identifier text)") + ";"
    yield _values_insert("ca_identity", (("database", ""), ("migration", ""), ("system_identifier", "")),
                         [(ident.database, None if ident.inferred else ident.migration_name,
                           ident.system_identifier)]) + ";"
    yield review("CREATE TEMPORARY TABLE ca_columns (tbl text, columns text)") + ";"
    yield _values_insert("ca_columns", (("tbl", ""), ("columns", "")),
                         [(t, ",".join(source.generation.columns[t])) for t in COLUMN_TABLES]) + ";"
    yield _do_block(_IDENTITY_CHECK, what=sql.SQL(what), since=sql.Literal(PG_CONTROL_SYSTEM_SINCE)) + ";"
    yield _comment(f"The {what}'s actions, one row each:")
    yield from (action_comment(a) for a in source.actions)
    yield from (review(s) + ";" for s in statements.setup)
    yield _values_insert("ca_plan", PLAN_COLUMNS, list(source.actions.load_rows())) + ";"
    yield from _expect_insert(source.invariants)
    yield _values_insert("ca_params", PARAMS_COLUMNS, [(float(source.grace_seconds),)]) + ";"
    yield from (review(s) + ";" for s in statements.analyze)
    yield _comment("Lock every row the actions read or change (gives up after lock_timeout).")
    yield from (review(s) + ";" for s in statements.locks)
    yield _comment(f"Apps whose every action is in effect already are skipped ('{state}').")
    yield from (review(s) + ";" for s in statements.done)
    yield _do_block(_DONE_NOTICE, state=sql.SQL(state)) + ";"
    label = "stale plan, nothing changed" if what == "plan" else "cannot undo, nothing changed"
    yield _comment("Preconditions: every row is as planned (md5 of the row's text) and every action is one the\n"
                   "planners would make now; an undo checks only what it restores.")
    yield review(raise_if_rows(statements.stale if what == "plan" else statements.stale_undo, label)) + ";"
    yield _comment("The invariants the actions imply, and a snapshot for them.")
    yield review(statements.expect) + ";"
    yield from (review(s) + ";" for s in statements.snapshot)
    yield _comment("The changes: copies, pointers, dates, deletions, re-insertions (set-based).")
    yield from (review(s) + ";" for s in statements.changes)
    yield review(CONSTRAINTS_NOW) + ";"
    yield _comment("Invariants: releases and their content unchanged, no sharing left, latest() is live, "
                   "row counts as planned.")
    yield review(raise_if_rows(statements.invariants, "invariant broken, rolled back")) + ";"
    yield review(statements.cleanup) + ";"
    yield review("DROP TABLE ca_identity, ca_columns") + ";"
    yield "COMMIT;"


def _expect_insert(invariants: Invariants) -> Iterator[str]:
    rows = invariants.rows()
    if rows:
        yield _values_insert("ca_expect", EXPECT_COLUMNS, rows) + ";"


def script(source: ScriptSource | Plan, lock_timeout: str = "5s") -> str:
    """The whole script as text."""
    return "\n".join(script_lines(source, lock_timeout)) + "\n"
