"""``plan sql``: the plan as a self-contained script for ``psql -v ON_ERROR_STOP=1 -f``.

The script runs the same statements as ``apply`` (:mod:`repairs.statements`), in one
transaction: identity check, load the actions (one multi-row INSERT), lock, fingerprint
check, change, invariants, COMMIT.  Every check raises, so ``ON_ERROR_STOP`` ends psql and
the transaction is rolled back.  The data rows are built as sqlglot literals; every rendered
statement is parsed back by sqlglot, except the PL/pgSQL ``DO`` blocks, kept verbatim.
"""

from __future__ import annotations

from collections.abc import Iterator

from psycopg import sql
from sqlglot import exp

from auditor.text import escape
from repairs.model import Action, Invariants, kind_of
from repairs.planfile import Plan
from repairs.statements import CONSTRAINTS_NOW, EXPECT_COLUMNS, PLAN_COLUMNS, Statements, raise_if_rows, render
from repairs.summary import changes_text

_IDENTITY_CHECK = """DO $$
DECLARE expected record; migration text; sysid text;
BEGIN
  SELECT * INTO expected FROM ca_identity;
  IF current_database() <> expected.database THEN
    RAISE EXCEPTION 'controller-audit: other database: the plan was made on database %, this is %',
      expected.database, current_database();
  END IF;
  SELECT max(name) INTO migration FROM django_migrations WHERE app = 'api';
  IF migration IS DISTINCT FROM expected.migration THEN
    RAISE EXCEPTION 'controller-audit: other database: the plan was made at api migration %, this is %',
      expected.migration, migration;
  END IF;
  IF expected.system_identifier IS NOT NULL AND current_setting('server_version_num')::int >= 90600 THEN
    BEGIN
      EXECUTE 'SELECT system_identifier::text FROM pg_control_system()' INTO sysid;
    EXCEPTION WHEN insufficient_privilege THEN sysid := NULL;
    END;
    IF sysid IS NOT NULL AND sysid <> expected.system_identifier THEN
      RAISE EXCEPTION 'controller-audit: other database: the plan was made on server %, this is %',
        expected.system_identifier, sysid;
    END IF;
  END IF;
END $$"""


def _values_insert(table: str, columns: tuple[tuple[str, str], ...], rows: list[tuple]) -> str:
    """One multi-row ``INSERT ... VALUES`` of literal rows, rendered and checked by sqlglot."""
    insert = exp.insert(
        exp.values([tuple(exp.null() if v is None else exp.convert(v) for v in row) for row in rows]),
        table, columns=[c for c, _ in columns],
    )
    return render(insert.sql(dialect="postgres"), pretty=False)


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


def script_lines(plan: Plan, lock_timeout: str) -> Iterator[str]:
    """The script, statement by statement (each ends with ``;``)."""
    ident = plan.identity
    yield _comment(
        f"controller-audit repair script for plan {plan.checksum}\n"
        f"made {plan.created} by controller-audit {plan.tool_version} on {escape(ident.target)}\n"
        f"database {escape(ident.database)}, {ident.generation} api {escape(ident.migration_name)}\n"
        f"repairs: {', '.join(plan.repairs)}; {len(plan.actions)} action(s); rows: "
        f"{changes_text(plan.actions.expected_changes())}\n"
        "run with: psql -v ON_ERROR_STOP=1 -f THIS_FILE  (against the same database)\n"
        "One transaction: any failed check raises, psql stops, and nothing is changed.\n"
        "Statements are rendered by sqlglot and parsed back as a check; the DO blocks (PL/pgSQL)\n"
        "and SET CONSTRAINTS, which sqlglot does not parse, are kept verbatim.")
    yield "\\set ON_ERROR_STOP on"
    if plan.empty:
        yield _comment("The plan is empty: nothing to repair.")
        return
    statements = Statements(plan.generation())
    yield "BEGIN;"
    yield render(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(lock_timeout))) + ";"
    yield render("SET LOCAL timezone = 'UTC'") + ";"
    yield render("SET LOCAL datestyle = 'ISO, MDY'") + ";"
    yield _comment("Is this the database the plan was made on?")
    yield render("CREATE TEMPORARY TABLE ca_identity (database text, migration text, system_identifier text)") + ";"
    yield _values_insert("ca_identity", (("database", ""), ("migration", ""), ("system_identifier", "")),
                         [(ident.database, ident.migration_name, ident.system_identifier)]) + ";"
    yield _IDENTITY_CHECK + ";"
    yield _comment("The planned actions, one row each:")
    yield from (action_comment(a) for a in plan.actions)
    yield from (s + ";" for s in statements.setup)
    yield _values_insert("ca_plan", PLAN_COLUMNS, list(plan.actions.load_rows())) + ";"
    yield from _expect_insert(plan.invariants)
    yield from (s + ";" for s in statements.analyze)
    yield _comment("Lock every row the plan reads or changes (gives up after lock_timeout).")
    yield from (s + ";" for s in statements.locks)
    yield _comment("Preconditions: every row is still exactly as planned (md5 of the row's text).")
    yield raise_if_rows(statements.stale, "stale plan, nothing changed") + ";"
    yield _comment("Snapshot for the invariants.")
    yield from (s + ";" for s in statements.snapshot)
    yield _comment("The changes: copies, pointers, dates, deletions (set-based).")
    yield from (s + ";" for s in statements.changes)
    yield CONSTRAINTS_NOW + ";"
    yield _comment("Invariants: releases and their content unchanged, no sharing left, latest() is live, "
                   "row counts as planned.")
    yield raise_if_rows(statements.invariants, "invariant broken, rolled back") + ";"
    yield "COMMIT;"


def _expect_insert(invariants: Invariants) -> Iterator[str]:
    rows = invariants.rows()
    if rows:
        yield _values_insert("ca_expect", EXPECT_COLUMNS, rows) + ";"


def script(plan: Plan, lock_timeout: str = "5s") -> str:
    """The whole script as text."""
    return "\n".join(script_lines(plan, lock_timeout)) + "\n"
