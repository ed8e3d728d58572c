"""The SQL of a repair transaction, shared by ``apply`` and ``plan sql``.

The planned rows are loaded once into the temporary table ``ca_plan`` (``apply`` by COPY, the
script by one multi-row INSERT); everything else is a fixed number of set-based statements,
however many rows are repaired: lock, compare fingerprints, snapshot, change, verify.  The
statements hold no values, only identifiers, composed with :mod:`psycopg.sql` alone: ``apply``
and ``undo`` execute exactly what psycopg composes (no other library parses or rewrites what is
executed); ``plan sql`` lays the same statements out for review (:mod:`repairs.script`).  A check
query returns ``(action, problem)`` rows: ``apply`` reads them, the script wraps them in a ``DO``
block that raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from psycopg import sql

if TYPE_CHECKING:
    from typing_extensions import LiteralString

from auditor.core.detect import Generation
from checks._orphans import PROTECTED_CONFIG
from repairs.model import POINTER, kind_of

#: What a statement is: psycopg composes it, ``apply`` executes it as it is.
Statement = sql.SQL | sql.Composed
#: Columns of ``ca_plan``, in COPY order (``undo``: an action of an undo file; ``cur_created``:
#: the ``created`` an undo's re-dated row must have now, when the undo file records it).
PLAN_COLUMNS: tuple[tuple[str, str], ...] = (
    ("action", "integer NOT NULL"), ("kind", "text NOT NULL"), ("tbl", "text NOT NULL"),
    ("app", "uuid NOT NULL"), ("uuid", "uuid NOT NULL"), ("fp", "text"), ("new_uuid", "uuid"),
    ("new_created", "timestamptz"), ("release", "uuid"), ("release_fp", "text"), ("image", "text"),
    ("post_fp", "text"), ("release_post_fp", "text"), ("undo", "boolean NOT NULL"), ("cur_created", "timestamptz"),
)
#: Columns of ``ca_params``: the plan's settings the checks use (one row).
PARAMS_COLUMNS: tuple[tuple[str, str], ...] = (("grace_seconds", "double precision NOT NULL"),)
EXPECT_COLUMNS: tuple[tuple[str, str], ...] = (("invariant", "text NOT NULL"), ("app", "uuid NOT NULL"))
#: Columns of ``ca_seen``: the fingerprint of every row the plan reads, taken as it is locked, and
#: what a plan's stale check reads of it (a locked row cannot change until the transaction ends):
#: its app and ``created``, and a release's pointers.
SEEN_COLUMNS: tuple[tuple[str, str], ...] = (
    ("tbl", "text NOT NULL"), ("uuid", "uuid NOT NULL"), ("fp", "text NOT NULL"), ("app_id", "uuid"),
    ("created", "timestamptz"), ("config_id", "uuid"), ("build_id", "uuid"),
)
BOOKKEEPING = ("uuid", "created", "updated")
#: The tables whose rows an action may re-date (release-order re-dates releases).
REDATED: tuple[str, ...] = (*POINTER, "api_release")
#: Every temporary table a repair transaction creates (the script adds ca_identity, ca_columns).
TEMPORARY_TABLES = ("ca_plan", "ca_expect", "ca_seen", "ca_params", "ca_done", "ca_before", "ca_counts")
COUNTED_TABLES = ("api_app", "api_config", "api_build", "api_release")
#: Check the deferred foreign keys now, before the invariants.
CONSTRAINTS_NOW = sql.SQL("SET CONSTRAINTS ALL IMMEDIATE")
#: The ``(tbl, kind)`` pairs of ``ca_plan`` a statement reads: with none of them among the actions
#: it changes and returns nothing, and ``apply`` does not send it (:func:`needed`).
Keys = frozenset[tuple[str, str]]


def pairs(tables: tuple[str, ...] | str, kinds: tuple[str, ...] | str) -> Keys:
    """Every pair of one of ``tables`` and one of ``kinds``."""
    tables = (tables,) if isinstance(tables, str) else tables
    kinds = (kinds,) if isinstance(kinds, str) else kinds
    return frozenset((t, k) for t in tables for k in kinds)


def needed(keyed: list[tuple[Keys, Statement]], present: Keys) -> list[Statement]:
    """The statements of ``keyed`` that read a pair in ``present`` (the actions' pairs)."""
    return [stmt for wanted, stmt in keyed if wanted & present]


def statement(composed: Statement | LiteralString) -> Statement:
    """A statement as executed: psycopg's composition (a constant text is one :class:`sql.SQL`)."""
    return sql.SQL(composed) if isinstance(composed, str) else composed


def raise_if_rows(query: Statement, label: str) -> sql.Composed:
    """A ``DO`` block (for ``plan sql``: psql stops at the exception) raising if ``query`` has rows."""
    return sql.SQL(
        "DO $$\nDECLARE problems text;\nBEGIN\n"
        "  SELECT string_agg(coalesce('action #' || s.action || ': ', '') || s.problem, '; ') INTO problems\n"
        "  FROM ({query}) AS s;\n"
        "  IF problems IS NOT NULL THEN\n"
        "    RAISE EXCEPTION {message}, problems;\n"
        "  END IF;\nEND $$"
    ).format(query=query, message=sql.Literal(f"controller-audit: {label}: %"))


def _table_def(name: str, columns: tuple[tuple[str, str], ...]) -> sql.Composed:
    return sql.SQL("CREATE TEMPORARY TABLE {} ({})").format(
        sql.Identifier(name), sql.SQL(", ").join(sql.SQL("{} " + ddl).format(sql.Identifier(c)) for c, ddl in columns)
    )


def _cols(alias: str, columns: tuple[str, ...]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(alias, c) for c in columns)


def _row_md5(alias: str, columns: tuple[str, ...]) -> sql.Composed:
    return sql.SQL("md5(CAST(ROW({}) AS text))").format(_cols(alias, columns))


@dataclass(frozen=True)
class Statements:
    """The statements for one schema generation."""

    generation: Generation

    # -- columns ------------------------------------------------------------------------
    def columns(self, table: str) -> tuple[str, ...]:
        return self.generation.columns[table]

    def content(self, table: str) -> tuple[str, ...]:
        """Every column but uuid/created/updated: what a repair must never change for a release."""
        return tuple(c for c in self.columns(table) if c not in BOOKKEEPING)

    @property
    def release_own(self) -> tuple[str, ...]:
        """A release's columns a repair never changes: all but its pointers and ``created``
        (which only a planned re-date of that release may change, checked on its own)."""
        return tuple(c for c in self.columns("api_release") if c not in POINTER.values() and c != "created")

    # -- setup ----------------------------------------------------------------------------
    @cached_property
    def setup(self) -> list[Statement]:
        """Create the temporary tables the planned rows are loaded into."""
        return [statement(_table_def(name, columns)) for name, columns in
                (("ca_plan", PLAN_COLUMNS), ("ca_expect", EXPECT_COLUMNS), ("ca_seen", SEEN_COLUMNS),
                 ("ca_params", PARAMS_COLUMNS))]

    @cached_property
    def cleanup(self) -> Statement:
        """Drop the temporary tables before COMMIT: a backend that still has temporary tables
        when it is terminated drops them in a transaction of its own, which (with a synchronous
        standby that does not answer) would keep it waiting forever after the kill."""
        return sql.SQL("DROP TABLE IF EXISTS {}").format(sql.SQL(", ").join(map(sql.Identifier, TEMPORARY_TABLES)))

    @cached_property
    def analyze(self) -> list[Statement]:
        return [statement("ANALYZE ca_plan"), statement("ANALYZE ca_expect")]

    @cached_property
    def locks(self) -> list[Statement]:
        """``SELECT ... FOR NO KEY UPDATE`` every row the plan reads or changes (set-based, one
        per table; the releases in two, those of the actions and the re-dated others), keeping each
        row's fingerprint as locked in ``ca_seen`` (computed once per row).

        ``NO KEY UPDATE`` blocks every other change to those rows but not the ``KEY SHARE`` lock
        of a foreign-key check, so a controller inserting a release that points at a planned
        config or build is never blocked by (or deadlocked with) the repair; deleting a pruned
        orphan takes the stronger lock at the ``DELETE`` itself."""
        keys: list[tuple[str, Statement]] = [
            (table, sql.SQL("SELECT q.uuid FROM ca_plan AS q WHERE q.tbl = {}").format(sql.Literal(table)))
                for table in POINTER]
        # The releases in two statements, each key one column of ca_plan: the planner knows how many
        # (a UNION ALL of both is guessed at 200 rows: 250k index probes instead of one hash join)
        keys += [("api_release", sql.SQL("SELECT q.release FROM ca_plan AS q WHERE q.release IS NOT NULL")),
                 ("api_release", sql.SQL("SELECT q.uuid FROM ca_plan AS q WHERE q.tbl = 'api_release' AND NOT EXISTS "
                                         "(SELECT 1 FROM ca_plan AS p WHERE p.release = q.uuid)"))]
        return [statement(sql.SQL(
            "INSERT INTO ca_seen (tbl, uuid, fp, app_id, created, config_id, build_id) "
            "SELECT {name}, l.uuid, l.fp, l.app_id, l.created, l.config_id, l.build_id FROM ("
            "SELECT x.uuid, md5(CAST(x AS text)) AS fp, x.app_id, x.created, {pointers} FROM {t} AS x "
            "WHERE x.uuid IN ({keys}) FOR NO KEY UPDATE OF x) AS l"
        ).format(name=sql.Literal(table), t=sql.Identifier(table), keys=key, pointers=sql.SQL(
            "x.config_id, x.build_id" if table == "api_release"
            else "CAST(NULL AS uuid) AS config_id, CAST(NULL AS uuid) AS build_id")))
            for table, key in keys]

    # -- preconditions ------------------------------------------------------------------
    @cached_property
    def stale(self) -> Statement:
        """A plan's actions that may not run on the database as it is: ``(action, problem)``, at most 20.

        Each must still find its rows exactly as planned (fingerprints) **and** be what the
        planners would plan now (:meth:`_plan_checks`): ``apply`` re-derives, it does not trust
        the file.  One pass over the plan per table, plus three small duplicate checks.
        """
        return self._first_20(self._stale_parts(undo=False))

    @cached_property
    def stale_undo(self) -> Statement:
        """:attr:`stale` for an undo, which checks only what it restores (:meth:`_undo_checks`),
        so a later ``updated`` from a controller boot does not block it."""
        return self._first_20(self._stale_parts(undo=True))

    @cached_property
    def stale_undo_apps(self) -> Statement:
        """The apps (uuid text) of every action :attr:`stale_undo` would report."""
        return statement(sql.SQL("SELECT DISTINCT CAST(q.app AS text) FROM ({}) AS s JOIN ca_plan AS q "
                              "ON q.action = s.action").format(sql.SQL(" UNION ALL ").join(self._stale_parts(undo=True))))

    @staticmethod
    def _first_20(parts: list[Statement]) -> Statement:
        return statement(sql.SQL("SELECT s.action, s.problem FROM ({}) AS s ORDER BY s.action LIMIT 20").format(
            sql.SQL(" UNION ALL ").join(parts)))

    def _stale_parts(self, undo: bool) -> list[Statement]:
        parts = [self._kinds_allowed(undo), *self._release_checks(undo)]
        for table, pointer in POINTER.items():
            parts += self._undo_checks(table, pointer) if undo else self._plan_checks(table, pointer)
            parts += self._duplicates(table)
        return parts

    @staticmethod
    def _kinds_allowed(undo: bool) -> sql.Composed:
        kinds = ("uncopy", "redate", "reinsert") if undo else ("copy", "prune", "redate")
        return sql.SQL(
            "SELECT q.action, 'a ' || q.kind || ' of ' || q.tbl || {tail} AS problem FROM ca_plan AS q "
            "WHERE NOT ((q.tbl IN ({tables}) AND q.kind IN ({kinds})) OR (q.tbl = 'api_release' AND q.kind = 'redate')) "
            "OR q.undo <> {undo}"
        ).format(tables=sql.SQL(", ").join(sql.Literal(t) for t in POINTER),
                 kinds=sql.SQL(", ").join(sql.Literal(k) for k in kinds), undo=sql.Literal(undo),
                 tail=sql.Literal(f" is not an action {'an undo' if undo else 'a plan'} can hold"))

    @staticmethod
    def _problems(checks: list[tuple[Statement, str | Statement]], source: Statement) -> sql.Composed:
        """``(action, problem)`` for every check (condition, message) true of a row of ``source``:
        one pass, each row's problems an array of CASEs without its NULLs, unnested only for the
        rows that have any (a row per check and planned row would be made, then dropped)."""
        cases = sql.SQL(", ").join(
            sql.SQL("CASE WHEN {} THEN {} END").format(cond, sql.Literal(msg) if isinstance(msg, str) else msg)
            for cond, msg in checks)
        return sql.SQL("SELECT c.action, unnest(c.problems) AS problem FROM (SELECT q.action, "
                       "array_remove(ARRAY[{cases}], NULL) AS problems {source}) AS c "
                       "WHERE cardinality(c.problems) > 0").format(cases=cases, source=source)

    def _plan_checks(self, table: str, pointer: str) -> list[Statement]:
        """A plan's rows are as planned, and each action is one the planners would make now.

        The row and its release are read as locked (``ca_seen``: fingerprint, app, ``created``,
        pointers), not joined again.
        Fingerprints: the row and its release as planned, a pruned row unused, a copy's uuid free.
        copy: its release (of the action's app) uses the row, the row is of that app, and an
        earlier release of the app keeps the original (the earliest user of the row's own app, by
        version, which is not copied itself; other apps' releases using the row are left alone);
        not dated in the future (a copy dated after its release gets the ``latest()`` invariant:
        :attr:`expect`).  prune: a row of an existing app, not in flight (created within the
        plan's grace period before now, up to now: a row dated later is future-dated), not the
        newest config of an app without releases (``App.create`` builds v1 on it).  redate:
        either the row its release uses, re-dated after every other row of the app (by the dates
        the plan gives them; the pruned ones aside, planned copies included), or a row dated in
        the future moved back to before that (restore-latest never dates a row after it); never
        in the future.
        """
        f = dict(t=sql.Identifier(table), name=sql.Literal(table), p=sql.Identifier(pointer))
        kind = kind_of(table)
        users = sql.SQL(
            "SELECT r.{p} AS row_id, (array_agg(r.uuid ORDER BY r.version, r.created, r.uuid))[1] AS keeper, "
            "(array_agg(r.version ORDER BY r.version, r.created, r.uuid))[1] AS keeper_version "
            "FROM api_release AS r JOIN {t} AS ux ON ux.uuid = r.{p} AND ux.app_id = r.app_id "
            "WHERE r.{p} IN (SELECT c.uuid FROM ca_plan AS c WHERE c.tbl = {name} AND c.kind = 'copy') "
            "GROUP BY r.{p}").format(**f)
        source = sql.SQL(
            "FROM ca_plan AS q LEFT JOIN ca_seen AS x ON x.tbl = q.tbl AND x.uuid = q.uuid "
            "LEFT JOIN ca_seen AS r ON r.tbl = 'api_release' AND r.uuid = q.release "
            "LEFT JOIN {t} AS n ON n.uuid = q.new_uuid "
            "LEFT JOIN ({users}) AS u ON u.row_id = q.uuid AND q.kind = 'copy' "
            "LEFT JOIN ca_plan AS kc ON kc.tbl = {name} AND kc.kind = 'copy' AND kc.release = u.keeper "
            "CROSS JOIN ca_params AS pa WHERE q.tbl = {name} AND NOT q.undo").format(users=users, **f)
        newer = sql.SQL(
            "EXISTS (SELECT 1 FROM {t} AS o LEFT JOIN ca_plan AS m ON m.tbl = {name} AND m.kind = 'redate' "
            "AND m.uuid = o.uuid AND NOT m.undo "
            "WHERE o.app_id = q.app AND o.uuid <> q.uuid AND coalesce(m.new_created, o.created) >= q.new_created "
            "AND NOT EXISTS (SELECT 1 FROM ca_plan AS d WHERE d.tbl = {name} AND d.kind = 'prune' AND d.uuid = o.uuid)) "
            "OR EXISTS (SELECT 1 FROM ca_plan AS c WHERE c.tbl = {name} AND c.kind = 'copy' AND c.app = q.app "
            "AND c.new_created >= q.new_created)").format(**f)
        # restore-latest moves a row dated in the future back (never dates the live row after it)
        moved_back = sql.SQL("(q.kind = 'redate' AND x.created > now() AND q.new_created < x.created "
                             "AND r.{p} IS DISTINCT FROM q.uuid)").format(**f)
        protected = sql.SQL("false") if table != "api_config" else sql.SQL(
            "q.kind = 'prune' AND NOT EXISTS (SELECT 1 FROM api_release AS ar WHERE ar.app_id = q.app) "
            "AND x.created = (SELECT max(ac.created) FROM api_config AS ac WHERE ac.app_id = q.app)")
        checks: list[tuple[Statement, str | Statement]] = [
            (sql.SQL("x.fp IS DISTINCT FROM q.fp"), f"{kind} changed or gone since planning"),
            (sql.SQL("q.release IS NOT NULL AND r.fp IS DISTINCT FROM q.release_fp"),
             "its release changed or is gone since planning"),
            (sql.SQL("q.kind = 'prune' AND EXISTS (SELECT 1 FROM api_release AS ur WHERE ur.{p} = q.uuid)").format(**f),
             f"a release uses this {kind} now"),
            (sql.SQL("q.kind = 'copy' AND n.uuid IS NOT NULL"), "the uuid planned for the copy is taken"),
            (sql.SQL("q.kind IN ('copy', 'redate') AND (q.release IS NULL OR (r.uuid IS NOT NULL "
                     "AND (r.app_id <> q.app OR (r.{p} IS DISTINCT FROM q.uuid AND NOT {moved_back}))))").format(
                moved_back=moved_back, **f),
             f"its release is not a release of this app that uses this {kind}"),
            (sql.SQL("x.app_id <> q.app"), f"the {kind} belongs to another app"),
            (sql.SQL("u.keeper = q.release"),
             f"its release is the earliest release using this {kind}: it keeps the original, unshare would not "
             "copy it (was the release that kept it deleted after planning?)"),
            (sql.SQL("kc.action IS NOT NULL"), sql.SQL("{} || CAST(u.keeper_version AS text) || {}").format(
                sql.Literal("the release that keeps the original, v"),
                sql.Literal(f", is copied too: the {kind} would become an orphan"))),
            (sql.SQL("q.kind IN ('copy', 'redate') AND q.new_created > now()"), "dated in the future"),
            (sql.SQL("q.kind = 'prune' AND NOT EXISTS (SELECT 1 FROM api_app AS a WHERE a.uuid = q.app)"),
             f"the {kind}'s app does not exist (dangling reference)"),
            (sql.SQL("q.kind = 'prune' AND x.created > now() - pa.grace_seconds * INTERVAL '1 second' "
                     "AND x.created <= now()"),
             sql.SQL("{} || CAST(pa.grace_seconds AS text) || 's): a deploy may be in flight'").format(
                 sql.Literal(f"the {kind} is younger than the grace period ("))),
            (sql.SQL("q.kind = 'redate' AND NOT {} AND ({})").format(moved_back, newer),
             f"the new created would not make it the app's newest {kind}: restore-latest would not plan this"),
            (protected, PROTECTED_CONFIG),
        ]
        return [self._problems(checks, source)]

    def _release_checks(self, undo: bool) -> list[Statement]:
        """A re-dated release (release-order, opt-in, or its undo).

        Plan: the release as planned (fingerprint) and of this app, re-dated once, not into the
        future; whether the new order is right is the ``release_order`` invariant's to say,
        after the change.  Undo: the release exists, of this app, with the ``created`` the apply
        gave it (when the undo file records it).
        """
        source = sql.SQL(
            "FROM ca_plan AS q LEFT JOIN ca_seen AS s ON s.tbl = 'api_release' AND s.uuid = q.uuid "
            "LEFT JOIN api_release AS x ON x.uuid = q.uuid WHERE q.tbl = 'api_release' AND q.undo = {}").format(
            sql.Literal(undo))
        checks: list[tuple[Statement, str | Statement]] = [
            (sql.SQL("x.uuid IS NULL OR x.app_id <> q.app"), "the release is gone, or of another app"),
        ]
        if undo:
            checks.append((sql.SQL("q.cur_created IS NOT NULL AND x.created <> q.cur_created OR q.cur_created IS NULL "
                                   "AND x.created = q.new_created"),
                           "the release's created is no longer the one the apply gave it"))
        else:
            checks += [(sql.SQL("s.fp IS DISTINCT FROM q.fp"), "the release changed or is gone since planning"),
                       (sql.SQL("q.new_created > now()"), "dated in the future")]
        twice = sql.SQL("SELECT min(q.action), 'this release is re-dated twice' FROM ca_plan AS q "
                        "WHERE q.tbl = 'api_release' GROUP BY q.uuid HAVING count(*) > 1")
        return [self._problems(checks, source), twice]

    @staticmethod
    def _duplicates(table: str) -> list[Statement]:
        """No release gets two copies (or undone copies) of one kind, no row two other actions, no
        two copies one uuid."""
        kind = kind_of(table)
        name = sql.Literal(table)
        return [
            sql.SQL("SELECT min(q.action), {msg} FROM ca_plan AS q WHERE q.tbl = {name} "
                    "AND q.kind IN ('copy', 'uncopy') GROUP BY q.release HAVING count(*) > 1").format(
                msg=sql.Literal(f"this release's {kind} is moved twice"), name=name),
            sql.SQL("SELECT min(q.action), {msg} FROM ca_plan AS q WHERE q.tbl = {name} "
                    "AND q.kind <> 'copy' GROUP BY q.uuid HAVING count(*) > 1").format(
                msg=sql.Literal(f"this {kind} is changed twice"), name=name),
            sql.SQL("SELECT min(q.action), 'two copies are planned with one uuid' FROM ca_plan AS q "
                    "WHERE q.tbl = {name} AND q.kind = 'copy' GROUP BY q.new_uuid HAVING count(*) > 1").format(name=name),
        ]

    def _undo_checks(self, table: str, pointer: str) -> list[Statement]:
        """An undo checks only what it restores.

        uncopy: the copy exists with the original's content (so pointing the release back changes
        nothing it serves), the release still uses it and no other release does (one made on the
        copy after the apply would lose its row), the original exists, all of one app.  redate:
        the row exists with the ``created`` the apply gave it (when the undo file records it).
        reinsert: the row is still absent, its app exists, the image is of this row and app.
        Not compared: ``updated`` and anything else a controller boot re-saves.  A date the undo
        restores may lie in the future: it is the row's recorded pre-image (a future-dated row
        restore-latest moved back, a future-dated orphan prune-orphans deleted); only forward
        plans never date a row after ``now()``.
        """
        f = dict(t=sql.Identifier(table), name=sql.Literal(table), p=sql.Identifier(pointer))
        kind = kind_of(table)
        source = sql.SQL(
            "FROM ca_plan AS q LEFT JOIN ca_seen AS s ON s.tbl = q.tbl AND s.uuid = q.uuid "
            "LEFT JOIN {t} AS x ON x.uuid = q.uuid LEFT JOIN {t} AS o ON o.uuid = q.new_uuid AND q.kind = 'uncopy' "
            "LEFT JOIN api_release AS r ON r.uuid = q.release WHERE q.tbl = {name} AND q.undo").format(**f)
        image = sql.SQL("CAST(q.image AS json)")
        checks: list[tuple[Statement, str | Statement]] = [
            (sql.SQL("q.kind IN ('uncopy', 'redate') AND s.uuid IS NULL"), f"the {kind} is gone"),
            (sql.SQL("q.kind = 'uncopy' AND o.uuid IS NULL"), f"the original {kind} is gone"),
            (sql.SQL("q.kind = 'uncopy' AND ({} <> {} OR x.app_id <> q.app OR o.app_id <> q.app)").format(
                self._content_md5(table, "x"), self._content_md5(table, "o")),
             "the copy's content (or app) is no longer the original's: deleting it would change what its "
             "release runs"),
            (sql.SQL("q.kind = 'uncopy' AND (r.uuid IS NULL OR r.app_id <> q.app OR r.{p} IS DISTINCT FROM q.uuid)"
                     ).format(**f), f"its release is gone or no longer uses the copied {kind}"),
            (sql.SQL("q.kind = 'redate' AND (x.app_id <> q.app OR (q.cur_created IS NOT NULL AND x.created <> "
                     "q.cur_created) OR (q.cur_created IS NULL AND x.created = q.new_created))"),
             f"the {kind}'s created is no longer the one the apply gave it"),
            (sql.SQL("q.kind = 'reinsert' AND x.uuid IS NOT NULL"), f"the pruned {kind} exists again"),
            (sql.SQL("q.kind = 'reinsert' AND NOT EXISTS (SELECT 1 FROM api_app AS a WHERE a.uuid = q.app)"),
             f"the pruned {kind}'s app does not exist any more"),
            (sql.SQL("q.kind = 'reinsert' AND ({image} ->> 'uuid' IS DISTINCT FROM CAST(q.uuid AS text) "
                     "OR {image} ->> 'app_id' IS DISTINCT FROM CAST(q.app AS text))").format(image=image),
             f"the recorded {kind} is of another row or app"),
        ]
        dependents = sql.SQL(
            "SELECT q.action, 'release v' || CAST(d.version AS text) || ' (' || CAST(d.uuid AS text) "
            "|| ') of app ' || coalesce(a.id, CAST(d.app_id AS text)) || {msg} FROM ca_plan AS q "
            "JOIN api_release AS d ON d.{p} = q.uuid AND d.uuid <> q.release "
            "LEFT JOIN api_app AS a ON a.uuid = d.app_id WHERE q.tbl = {name} AND q.kind = 'uncopy'").format(
            msg=sql.Literal(f" uses this copied {kind} now (made after the apply): deleting the copy would "
                            "break that release"), **f)
        return [self._problems(checks, source), dependents]

    def _content_md5(self, table: str, alias: str) -> sql.Composed:
        """md5 of a config's or build's content (every column but uuid, created, updated)."""
        return _row_md5(alias, self.content(table))

    # -- already done ---------------------------------------------------------------------
    @cached_property
    def done(self) -> list[Statement]:
        """Find the apps whose every action is already in effect (``ca_done``), and drop their
        actions from ``ca_plan``: a second run of an applied plan (or undo) changes nothing.

        In effect: a copy's release points at the copy; a pruned row is gone; a re-dated row has
        the new ``created``; an undone copy is gone and its release points at the original; a
        re-inserted row exists with its recorded content and ``created``.
        """
        parts: list[Statement] = []
        for table, pointer in POINTER.items():
            f = dict(t=sql.Identifier(table), name=sql.Literal(table), p=sql.Identifier(pointer))
            reinserted = sql.SQL(
                "(SELECT {image} FROM json_populate_record(CAST(NULL AS {t}), CAST(q.image AS json)) AS j)").format(
                image=_row_md5("j", ("created", *self.content(table))), **f)
            parts.append(sql.SQL(
                "SELECT q.app, CASE q.kind WHEN 'copy' THEN coalesce(r.{p} = q.new_uuid, false) "
                "WHEN 'uncopy' THEN x.uuid IS NULL AND coalesce(r.{p} = q.new_uuid, false) "
                "WHEN 'prune' THEN x.uuid IS NULL "
                "WHEN 'redate' THEN coalesce(x.created = q.new_created, false) "
                "WHEN 'reinsert' THEN x.uuid IS NOT NULL AND {row} = {reinserted} "
                "ELSE false END AS done FROM ca_plan AS q LEFT JOIN {t} AS x ON x.uuid = q.uuid "
                "LEFT JOIN api_release AS r ON r.uuid = q.release WHERE q.tbl = {name}").format(
                row=_row_md5("x", ("created", *self.content(table))), reinserted=reinserted, **f))
        parts.append(sql.SQL(
            "SELECT q.app, CASE q.kind WHEN 'redate' THEN coalesce(x.created = q.new_created, false) ELSE false END "
            "FROM ca_plan AS q LEFT JOIN api_release AS x ON x.uuid = q.uuid WHERE q.tbl = 'api_release'"))
        return [
            statement(sql.SQL("CREATE TEMPORARY TABLE ca_done AS SELECT d.app, bool_and(d.done) AS done, "
                           "count(*) AS actions FROM ({}) AS d GROUP BY d.app").format(sql.SQL(" UNION ALL ").join(parts))),
            statement("DELETE FROM ca_plan AS q USING ca_done AS d WHERE d.app = q.app AND d.done"),
        ]

    @cached_property
    def skipped(self) -> Statement:
        """``(app uuid, app name, actions)`` of the apps :attr:`done` dropped."""
        return statement("SELECT CAST(d.app AS text), a.id, d.actions FROM ca_done AS d "
                      "LEFT JOIN api_app AS a ON a.uuid = d.app WHERE d.done ORDER BY a.id, d.app")

    # -- invariants the actions imply -----------------------------------------------------------
    @cached_property
    def expect(self) -> Statement:
        """Add the ``latest()`` invariant for every app with a copy dated after its release (only
        restore-latest dates a copy so: it must then be the live release's, as ``latest()``)."""
        return statement(sql.SQL(
            "INSERT INTO ca_expect (invariant, app) SELECT DISTINCT CASE q.tbl WHEN 'api_config' THEN "
            "'latest_config' ELSE 'latest_build' END, q.app FROM ca_plan AS q "
            "JOIN api_release AS r ON r.uuid = q.release WHERE q.kind = 'copy' AND NOT q.undo "
            "AND q.new_created > r.created"))

    def _digests(self, build_alias: str) -> dict[str, sql.Composed]:
        """The digests the snapshot records and the invariants compare: a release's own columns
        (alias ``r``), its config's content (``c``) and its build's content (``build_alias``)."""
        return {"own": _row_md5("r", self.release_own), "cfg": _row_md5("c", self.content("api_config")),
                "bld": _row_md5(build_alias, self.content("api_build"))}

    # -- snapshot -------------------------------------------------------------------------
    @cached_property
    def snapshot(self) -> list[Statement]:
        """Record, before any change, what the invariants compare against."""
        before = sql.SQL(
            "CREATE TEMPORARY TABLE ca_before AS SELECT r.uuid, {own} AS own, r.created, r.config_id, r.build_id, "
            "{cfg} AS config_content, {bld} AS build_content FROM api_release AS r "
            "LEFT JOIN api_config AS c ON c.uuid = r.config_id LEFT JOIN api_build AS b ON b.uuid = r.build_id "
            "WHERE r.app_id IN (SELECT q.app FROM ca_plan AS q)"
        ).format(**self._digests(build_alias="b"))
        counts = sql.SQL("CREATE TEMPORARY TABLE ca_counts AS {}").format(self._counts("before"))
        return [statement(before), statement(counts)]

    @staticmethod
    def _counts(column: str) -> sql.Composed:
        return sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT {name} AS tbl, count(*) AS {c} FROM {t}").format(
                name=sql.Literal(t), t=sql.Identifier(t), c=sql.Identifier(column))
            for t in COUNTED_TABLES)

    # -- changes ---------------------------------------------------------------------------
    @cached_property
    def changes(self) -> list[Statement]:
        """The changes: per table one INSERT of copies; one UPDATE of the releases' pointers (both
        at once: each release row is rewritten once); per table one UPDATE of dates, one DELETE,
        one INSERT of re-inserted rows."""
        return [stmt for _, stmt in self.keyed_changes]

    @cached_property
    def keyed_changes(self) -> list[tuple[Keys, Statement]]:
        """:attr:`changes`, each with the ``(tbl, kind)`` pairs of ``ca_plan`` it reads."""
        copies: list[tuple[Keys, Statement]] = []
        rest: list[tuple[Keys, Statement]] = []
        for table, pointer in POINTER.items():
            columns = self.columns(table)
            f = dict(t=sql.Identifier(table), name=sql.Literal(table), p=sql.Identifier(pointer),
                     cols=sql.SQL(", ").join(map(sql.Identifier, columns)))
            picks = sql.SQL(", ").join(
                sql.SQL("q.new_uuid") if c == "uuid" else sql.SQL("q.new_created") if c in ("created", "updated")
                else sql.Identifier("x", c) for c in columns)
            copies.append((pairs(table, "copy"), sql.SQL(
                "INSERT INTO {t} ({cols}) SELECT {picks} FROM ca_plan AS q JOIN {t} AS x ON x.uuid = q.uuid "
                "WHERE q.tbl = {name} AND q.kind = 'copy'").format(picks=picks, **f)))
            rest += [
                (pairs(table, "redate"), sql.SQL(
                    "UPDATE {t} AS x SET created = q.new_created FROM ca_plan AS q "
                    "WHERE q.tbl = {name} AND q.kind = 'redate' AND x.uuid = q.uuid").format(**f)),
                (pairs(table, ("prune", "uncopy")), sql.SQL(
                    "DELETE FROM {t} AS x USING ca_plan AS q "
                    "WHERE q.tbl = {name} AND q.kind IN ('prune', 'uncopy') AND x.uuid = q.uuid").format(**f)),
                (pairs(table, "reinsert"), sql.SQL(
                    "INSERT INTO {t} ({cols}) SELECT {jcols} FROM ca_plan AS q "
                    "CROSS JOIN json_populate_record(CAST(NULL AS {t}), CAST(q.image AS json)) AS j "
                    "WHERE q.tbl = {name} AND q.kind = 'reinsert'").format(jcols=_cols("j", columns), **f)),
            ]
        rest.append((pairs("api_release", "redate"), sql.SQL(
            "UPDATE api_release AS x SET created = q.new_created FROM ca_plan AS q "
            "WHERE q.tbl = 'api_release' AND q.kind = 'redate' AND x.uuid = q.uuid")))
        repoint = (pairs(tuple(POINTER), ("copy", "uncopy")), self._repoint())
        return [(wanted, statement(stmt)) for wanted, stmt in (*copies, repoint, *rest)]

    @staticmethod
    def _repoint() -> sql.Composed:
        """Point each release at its copy (or back at its original), config and build at once."""
        def side(table: str) -> sql.Composed:
            return sql.SQL("SELECT q.release, q.new_uuid FROM ca_plan AS q "
                           "WHERE q.tbl = {} AND q.kind IN ('copy', 'uncopy')").format(sql.Literal(table))
        return sql.SQL(
            "UPDATE api_release AS r SET config_id = coalesce(u.config_id, r.config_id), "
            "build_id = coalesce(u.build_id, r.build_id) FROM ("
            "SELECT coalesce(c.release, b.release) AS release, c.new_uuid AS config_id, b.new_uuid AS build_id "
            "FROM ({config}) AS c FULL JOIN ({build}) AS b ON b.release = c.release) AS u "
            "WHERE r.uuid = u.release"
        ).format(config=side("api_config"), build=side("api_build"))

    # -- invariants ------------------------------------------------------------------------
    @cached_property
    def invariants(self) -> Statement:
        """Everything that must hold before COMMIT: ``(action, problem)`` rows for what does not."""
        parts = [self._releases_unchanged(), self._counts_as_planned(), self._post_images("api_release"),
                 self._release_order()]
        for table, pointer in POINTER.items():
            parts += [self._post_images(table), self._no_new_orphan(table, pointer), self._unshared(table, pointer),
                      self._latest(table, pointer)]
        return statement(sql.SQL("SELECT s.action, s.problem FROM ({}) AS s ORDER BY s.action NULLS FIRST LIMIT 20").format(
            sql.SQL(" UNION ALL ").join(parts)))

    def _releases_unchanged(self) -> sql.Composed:
        problem = sql.SQL(
            "CASE WHEN b.uuid IS NULL THEN 'appeared' WHEN r.uuid IS NULL THEN 'disappeared' "
            "WHEN {own} <> b.own THEN 'its own columns changed' "
            "WHEN r.created IS DISTINCT FROM coalesce(pr.new_created, b.created) THEN 'its created is not as planned' "
            "WHEN r.config_id IS DISTINCT FROM coalesce(pc.new_uuid, b.config_id) THEN 'its config_id is not as planned' "
            "WHEN r.build_id IS DISTINCT FROM coalesce(pb.new_uuid, b.build_id) THEN 'its build_id is not as planned' "
            "WHEN {cfg} IS DISTINCT FROM b.config_content THEN 'the content of its config changed' "
            "WHEN {bld} IS DISTINCT FROM b.build_content THEN 'the content of its build changed' END"
        ).format(**self._digests(build_alias="d"))
        return sql.SQL(
            "SELECT CAST(NULL AS integer) AS action, 'release ' || CAST(v.uuid AS text) || ': ' || v.problem AS problem FROM ("
            "SELECT coalesce(r.uuid, b.uuid) AS uuid, {problem} AS problem FROM ca_before AS b "
            "FULL JOIN (SELECT * FROM api_release WHERE app_id IN (SELECT q.app FROM ca_plan AS q)) AS r "
            "ON r.uuid = b.uuid "
            "LEFT JOIN ca_plan AS pc ON pc.release = coalesce(r.uuid, b.uuid) AND pc.tbl = 'api_config' "
            "AND pc.kind IN ('copy', 'uncopy') "
            "LEFT JOIN ca_plan AS pb ON pb.release = coalesce(r.uuid, b.uuid) AND pb.tbl = 'api_build' "
            "AND pb.kind IN ('copy', 'uncopy') "
            "LEFT JOIN ca_plan AS pr ON pr.uuid = coalesce(r.uuid, b.uuid) AND pr.tbl = 'api_release' "
            "AND pr.kind = 'redate' "
            "LEFT JOIN api_config AS c ON c.uuid = r.config_id LEFT JOIN api_build AS d ON d.uuid = r.build_id"
            ") AS v WHERE v.problem IS NOT NULL"
        ).format(problem=problem)

    def _counts_as_planned(self) -> sql.Composed:
        return sql.SQL(
            "SELECT CAST(NULL AS integer), c.tbl || ' has ' || CAST(n.after AS text) || ' rows, the plan expects ' "
            "|| CAST(c.before + coalesce(e.delta, 0) AS text) FROM ca_counts AS c "
            "JOIN ({after}) AS n ON n.tbl = c.tbl "
            "LEFT JOIN (SELECT q.tbl, sum(CASE WHEN q.kind IN ('copy', 'reinsert') THEN 1 "
            "WHEN q.kind IN ('prune', 'uncopy') THEN -1 ELSE 0 END) AS delta FROM ca_plan AS q GROUP BY q.tbl) AS e "
            "ON e.tbl = c.tbl WHERE n.after <> c.before + coalesce(e.delta, 0)"
        ).format(after=self._counts("after"))

    @staticmethod
    def _post_images(table: str) -> sql.Composed:
        """A re-inserted row is its recorded image byte for byte (md5); a re-dated row has the
        planned ``created``."""
        f = dict(t=sql.Identifier(table), name=sql.Literal(table))
        return sql.SQL(
            "SELECT q.action, {msg} FROM ca_plan AS q LEFT JOIN {t} AS x ON x.uuid = q.uuid "
            "WHERE q.tbl = {name} AND q.kind = 'reinsert' AND q.post_fp IS NOT NULL "
            "AND (x.uuid IS NULL OR md5(CAST(x AS text)) <> q.post_fp) "
            "UNION ALL SELECT q.action, 'its created is not as planned' FROM ca_plan AS q "
            "LEFT JOIN {t} AS x ON x.uuid = q.uuid WHERE q.tbl = {name} AND q.kind = 'redate' "
            "AND x.created IS DISTINCT FROM q.new_created"
        ).format(msg=sql.Literal(f"the {kind_of(table)} is not its recorded image"), **f)

    @staticmethod
    def _no_new_orphan(table: str, pointer: str) -> sql.Composed:
        """Every copied original is still used by a release (the earliest keeps it)."""
        return sql.SQL(
            "SELECT q.action, {msg} || CAST(q.uuid AS text) || ' would be used by no release (a new orphan)' "
            "FROM ca_plan AS q WHERE q.tbl = {name} AND q.kind = 'copy' "
            "AND NOT EXISTS (SELECT 1 FROM api_release AS r WHERE r.{p} = q.uuid)"
        ).format(msg=sql.Literal(f"{kind_of(table)} "), name=sql.Literal(table), p=sql.Identifier(pointer))

    @staticmethod
    def _unshared(table: str, pointer: str) -> sql.Composed:
        """No row of the app used by two releases of the app (rows shared across apps, and
        dangling references, are refused by unshare and left alone).

        Grouped over the releases of the apps alone (a row used twice by them is a candidate:
        the groups hold only the row and a count), then each candidate is checked against its
        row (of one of those apps, no release of another app using it, so every release using it
        is of that app): after an unshare there are no candidates, so the releases are never
        joined with the table."""
        return sql.SQL(
            "SELECT CAST(NULL AS integer), {msg} || CAST(g.row_id AS text) || ' is used by ' || CAST(g.n AS text) || ' releases' "
            "FROM (SELECT r.{p} AS row_id, count(*) AS n FROM api_release AS r "
            "WHERE r.app_id IN (SELECT e.app FROM ca_expect AS e WHERE e.invariant = 'unshared') "
            "GROUP BY r.{p} HAVING count(*) > 1) AS g "
            "JOIN {t} AS x ON x.uuid = g.row_id AND x.app_id IN (SELECT e.app FROM ca_expect AS e WHERE e.invariant = 'unshared') "
            "WHERE NOT EXISTS (SELECT 1 FROM api_release AS o WHERE o.{p} = g.row_id AND o.app_id <> x.app_id)"
        ).format(msg=sql.Literal(f"{kind_of(table)} "), p=sql.Identifier(pointer), t=sql.Identifier(table))

    def _live(self, invariant: str, pointer: str) -> sql.Composed:
        """Per app of ``invariant``: its live release as the controller picks it (newest by
        ``created`` that did not fail), ``n`` the releases tied for it (more than one: ambiguous)."""
        not_failed = sql.SQL("NOT failed" if self.generation.has_failed else "true")
        return sql.SQL(
            "SELECT s.app_id, max(s.version) AS version, (array_agg(s.row_id ORDER BY s.version DESC))[1] AS row_id, "
            "count(*) AS n FROM (SELECT app_id, version, {p} AS row_id, "
            "rank() OVER (PARTITION BY app_id ORDER BY created DESC) AS rk FROM api_release "
            "WHERE app_id IN (SELECT e.app FROM ca_expect AS e WHERE e.invariant = {inv}) AND {not_failed}) AS s "
            "WHERE s.rk = 1 GROUP BY s.app_id"
        ).format(inv=sql.Literal(invariant), not_failed=not_failed, p=sql.Identifier(pointer))

    def _latest(self, table: str, pointer: str) -> sql.Composed:
        """``latest()`` is the live release's row (the controller's live release: newest by
        ``created`` that did not fail, unambiguous), with no tie at the newest ``created``."""
        kind = kind_of(table)
        inv = f"latest_{kind}"
        return sql.SQL(
            "SELECT CAST(NULL AS integer), 'app ' || CAST(l.app_id AS text) || CASE WHEN l.n > 1 "
            "THEN ': the live release is ambiguous (releases that did not fail tie on created)' "
            "ELSE {msg} || CAST(x.uuid AS text) || ', not the live release v' || CAST(l.version AS text) || {tail} END "
            "FROM ({live}) AS l JOIN ("
            "SELECT app_id, uuid, rank() OVER (PARTITION BY app_id ORDER BY created DESC) AS rk FROM {t} "
            "WHERE app_id IN (SELECT e.app FROM ca_expect AS e WHERE e.invariant = {inv})) AS x "
            "ON x.app_id = l.app_id AND x.rk = 1 WHERE l.n > 1 OR x.uuid IS DISTINCT FROM l.row_id"
        ).format(msg=sql.Literal(f": {kind}_set.latest() returns "), tail=sql.Literal(f"'s {kind}"),
                 live=self._live(inv, pointer), t=sql.Identifier(table), inv=sql.Literal(inv))

    def _release_order(self) -> sql.Composed:
        """Apps re-dated by release-order: their highest version is strictly the newest release by
        ``created`` (what numbers the next release), and the live release is unambiguous."""
        failed = sql.SQL("failed" if self.generation.has_failed else "false")
        return sql.SQL(
            "SELECT CAST(NULL AS integer), 'app ' || CAST(v.app_id AS text) || ': ' || v.problem FROM ("
            "SELECT s.app_id, CASE WHEN sum(CASE WHEN s.rk = 1 THEN 1 ELSE 0 END) > 1 "
            "THEN 'releases still tie at the newest created' "
            "WHEN max(CASE WHEN s.rk = 1 THEN s.version END) < max(s.version) "
            "THEN 'the newest release by created is still not the highest version' "
            "WHEN sum(CASE WHEN s.lk = 1 THEN 1 ELSE 0 END) > 1 "
            "THEN 'releases that did not fail still tie for the live release' END AS problem FROM ("
            "SELECT app_id, version, rank() OVER (PARTITION BY app_id ORDER BY created DESC) AS rk, "
            "CASE WHEN NOT {failed} THEN rank() OVER (PARTITION BY app_id, {failed} ORDER BY created DESC) END AS lk "
            "FROM api_release WHERE app_id IN (SELECT e.app FROM ca_expect AS e WHERE e.invariant = 'release_order')"
            ") AS s GROUP BY s.app_id) AS v WHERE v.problem IS NOT NULL"
        ).format(failed=failed)


@dataclass(frozen=True)
class Images:
    """Queries that read what the undo file records, each returning one row of one text value.

    A copy needs no query: its release pointed at the original and had the fingerprint the plan
    recorded (the stale check verified both), and undoing it checks only what it restores, not
    fingerprints after the change.  The few re-dated (configs, builds, releases) and pruned rows
    are read whole: ``[[action, row, md5], ...]``.
    """

    #: The kinds of action whose rows :attr:`rows_before` and :attr:`rows_after` read.
    BEFORE: tuple[str, ...] = ("redate", "prune")
    AFTER: tuple[str, ...] = ("redate",)

    def needs_before(self, present: Keys) -> bool:
        """Whether :attr:`rows_before` can read a row of actions with the pairs ``present``."""
        return bool(pairs(REDATED, self.BEFORE) & present)

    def needs_after(self, present: Keys) -> bool:
        """Whether :attr:`rows_after` can read a row of actions with the pairs ``present``."""
        return bool(pairs(REDATED, self.AFTER) & present)

    @cached_property
    def rows_before(self) -> Statement:
        """Re-dated and pruned rows before the change, as a JSON array."""
        return self._agg(sql.SQL("q.action, row_to_json(x), md5(CAST(x AS text))"), self.BEFORE, "uuid")

    @cached_property
    def rows_after(self) -> Statement:
        """Re-dated rows after the change: ``[[action, null, md5], ...]``."""
        return self._agg(sql.SQL("q.action, NULL, md5(CAST(x AS text))"), self.AFTER, "uuid")

    @staticmethod
    def _agg(select: Statement, kinds: tuple[str, ...], key: str) -> Statement:
        parts = [sql.SQL("SELECT json_build_array({select}) AS a FROM ca_plan AS q JOIN {t} AS x ON x.uuid = q.{key} "
                         "WHERE q.tbl = {name} AND q.kind IN ({kinds})").format(
            select=select, t=sql.Identifier(table), name=sql.Literal(table), key=sql.Identifier(key),
            kinds=sql.SQL(", ").join(map(sql.Literal, kinds))) for table in REDATED]
        return statement(sql.SQL("SELECT CAST(coalesce(json_agg(s.a), CAST('[]' AS json)) AS text) FROM ({}) AS s").format(
            sql.SQL(" UNION ALL ").join(parts)))
