"""The SQL of a repair transaction, shared by ``apply`` and ``plan sql``.

The planned rows are loaded once into the temporary table ``ca_plan`` (``apply`` by COPY, the
script by one multi-row INSERT); everything else is a fixed number of set-based statements,
however many rows are repaired: lock, compare fingerprints, snapshot, change, verify.  The
statements hold no values, only identifiers (composed with :mod:`psycopg.sql`); each is
rendered by sqlglot (dialect postgres) and parsed back as a check, so ``apply`` runs exactly
the text the script shows.  A check query returns ``(action, problem)`` rows: ``apply`` reads
them, the script wraps them in a ``DO`` block that raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import sqlglot
from psycopg import sql
from sqlglot import exp

from auditor.detect import Generation
from repairs.model import POINTER, kind_of

#: Columns of ``ca_plan``, in COPY order.
PLAN_COLUMNS: tuple[tuple[str, str], ...] = (
    ("action", "integer NOT NULL"), ("kind", "text NOT NULL"), ("tbl", "text NOT NULL"),
    ("app", "uuid NOT NULL"), ("uuid", "uuid NOT NULL"), ("fp", "text"), ("new_uuid", "uuid"),
    ("new_created", "timestamptz"), ("release", "uuid"), ("release_fp", "text"), ("image", "text"),
    ("post_fp", "text"), ("release_post_fp", "text"),
)
EXPECT_COLUMNS: tuple[tuple[str, str], ...] = (("invariant", "text NOT NULL"), ("app", "uuid NOT NULL"))
#: Columns of ``ca_seen``: the fingerprint of every row the plan reads, taken as it is locked.
SEEN_COLUMNS: tuple[tuple[str, str], ...] = (("tbl", "text NOT NULL"), ("uuid", "uuid NOT NULL"), ("fp", "text NOT NULL"))
BOOKKEEPING = ("uuid", "created", "updated")
#: The tables whose rows an action may re-date (release-order re-dates releases).
REDATED: tuple[str, ...] = (*POINTER, "api_release")
COUNTED_TABLES = ("api_app", "api_config", "api_build", "api_release")
#: Check the deferred foreign keys now, before the invariants (kept verbatim: sqlglot does not parse it).
CONSTRAINTS_NOW = "SET CONSTRAINTS ALL IMMEDIATE"


def render(statement: sql.Composable | str, pretty: bool = True) -> str:
    """``statement`` rendered by sqlglot for PostgreSQL (indented for review unless
    ``pretty`` is false), verified by parsing it back."""
    text = statement if isinstance(statement, str) else statement.as_string(None)
    rendered = sqlglot.parse_one(text, read="postgres").sql(dialect="postgres", pretty=pretty)
    parsed = sqlglot.parse_one(rendered, read="postgres")
    if isinstance(parsed, exp.Command):
        raise AssertionError(f"sqlglot cannot parse a generated statement: {rendered[:80]}")
    return rendered


def raise_if_rows(query: str, label: str) -> str:
    """A ``DO`` block (kept verbatim: sqlglot does not parse PL/pgSQL) raising if ``query`` has rows."""
    assert "$$" not in query
    block = sql.SQL(
        "DO $$\nDECLARE problems text;\nBEGIN\n"
        "  SELECT string_agg(coalesce('action #' || s.action || ': ', '') || s.problem, '; ') INTO problems\n"
        "  FROM ({query}) AS s;\n"
        "  IF problems IS NOT NULL THEN\n"
        "    RAISE EXCEPTION {message}, problems;\n"
        "  END IF;\nEND $$"
    ).format(query=sql.SQL(query), message=sql.Literal(f"controller-audit: {label}: %"))
    return block.as_string(None)


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
    def setup(self) -> list[str]:
        """Create the temporary tables the planned rows are loaded into."""
        return [render(_table_def(name, columns)) for name, columns in
                (("ca_plan", PLAN_COLUMNS), ("ca_expect", EXPECT_COLUMNS), ("ca_seen", SEEN_COLUMNS))]

    @cached_property
    def analyze(self) -> list[str]:
        return [render("ANALYZE ca_plan"), render("ANALYZE ca_expect")]

    @cached_property
    def locks(self) -> list[str]:
        """``SELECT ... FOR NO KEY UPDATE`` every row the plan reads or changes (set-based, one
        per table), keeping each row's fingerprint as locked in ``ca_seen`` (computed once per row).

        ``NO KEY UPDATE`` blocks every other change to those rows but not the ``KEY SHARE`` lock
        of a foreign-key check, so a controller inserting a release that points at a planned
        config or build is never blocked by (or deadlocked with) the repair; deleting a pruned
        orphan takes the stronger lock at the ``DELETE`` itself."""
        keys = [(table, sql.SQL("SELECT q.uuid FROM ca_plan AS q WHERE q.tbl = {}").format(sql.Literal(table)))
                for table in POINTER]
        keys.append(("api_release", sql.SQL("SELECT q.release FROM ca_plan AS q WHERE q.release IS NOT NULL "
                                            "UNION ALL SELECT q.uuid FROM ca_plan AS q WHERE q.tbl = 'api_release'")))
        return [render(sql.SQL(
            "INSERT INTO ca_seen (tbl, uuid, fp) SELECT {name}, l.uuid, l.fp FROM ("
            "SELECT x.uuid, md5(CAST(x AS text)) AS fp FROM {t} AS x WHERE x.uuid IN ({keys}) FOR NO KEY UPDATE OF x) AS l"
        ).format(name=sql.Literal(table), t=sql.Identifier(table), keys=key)) for table, key in keys]

    # -- preconditions ------------------------------------------------------------------
    @cached_property
    def stale(self) -> str:
        """Actions whose rows are not as planned: ``(action, problem)``."""
        parts = []
        for table, pointer in POINTER.items():
            f = dict(t=sql.Identifier(table), name=sql.Literal(table), p=sql.Identifier(pointer))
            kind = kind_of(table)
            parts += [
                sql.SQL("SELECT q.action, {msg} AS problem FROM ca_plan AS q "
                        "LEFT JOIN ca_seen AS s ON s.tbl = q.tbl AND s.uuid = q.uuid "
                        "WHERE q.tbl = {name} AND q.kind <> 'reinsert' AND s.fp IS DISTINCT FROM q.fp").format(
                    msg=sql.Literal(f"{kind} " + "changed or gone since planning"), **f),
                sql.SQL("SELECT q.action, 'its release changed or is gone since planning' FROM ca_plan AS q "
                        "LEFT JOIN ca_seen AS s ON s.tbl = 'api_release' AND s.uuid = q.release "
                        "WHERE q.tbl = {name} AND q.release IS NOT NULL AND s.fp IS DISTINCT FROM q.release_fp"
                        ).format(**f),
                sql.SQL("SELECT q.action, {msg} FROM ca_plan AS q WHERE q.tbl = {name} AND q.kind = 'prune' "
                        "AND EXISTS (SELECT 1 FROM api_release AS r WHERE r.{p} = q.uuid)").format(
                    msg=sql.Literal(f"a release uses this {kind} now"), **f),
                sql.SQL("SELECT q.action, 'the uuid planned for the copy is taken' FROM ca_plan AS q "
                        "JOIN {t} AS x ON x.uuid = q.new_uuid WHERE q.tbl = {name} AND q.kind = 'copy'").format(**f),
                sql.SQL("SELECT q.action, {msg} FROM ca_plan AS q JOIN {t} AS x ON x.uuid = q.uuid "
                        "WHERE q.tbl = {name} AND q.kind = 'reinsert'").format(
                    msg=sql.Literal(f"the pruned {kind} exists again"), **f),
                sql.SQL("SELECT q.action, {msg} FROM ca_plan AS q LEFT JOIN {t} AS x ON x.uuid = q.new_uuid "
                        "WHERE q.tbl = {name} AND q.kind = 'uncopy' AND x.uuid IS NULL").format(
                    msg=sql.Literal(f"the original {kind} is gone"), **f),
            ]
        parts.append(sql.SQL(
            "SELECT q.action, 'the release changed or is gone since planning' FROM ca_plan AS q "
            "LEFT JOIN ca_seen AS s ON s.tbl = 'api_release' AND s.uuid = q.uuid "
            "WHERE q.tbl = 'api_release' AND s.fp IS DISTINCT FROM q.fp"))
        return render(sql.SQL("SELECT s.action, s.problem FROM ({}) AS s ORDER BY s.action LIMIT 20").format(
            sql.SQL(" UNION ALL ").join(parts)))

    def _digests(self, build_alias: str) -> dict[str, sql.Composed]:
        """The digests the snapshot records and the invariants compare: a release's own columns
        (alias ``r``), its config's content (``c``) and its build's content (``build_alias``)."""
        return {"own": _row_md5("r", self.release_own), "cfg": _row_md5("c", self.content("api_config")),
                "bld": _row_md5(build_alias, self.content("api_build"))}

    # -- snapshot -------------------------------------------------------------------------
    @cached_property
    def snapshot(self) -> list[str]:
        """Record, before any change, what the invariants compare against."""
        before = sql.SQL(
            "CREATE TEMPORARY TABLE ca_before AS SELECT r.uuid, {own} AS own, r.created, r.config_id, r.build_id, "
            "{cfg} AS config_content, {bld} AS build_content FROM api_release AS r "
            "LEFT JOIN api_config AS c ON c.uuid = r.config_id LEFT JOIN api_build AS b ON b.uuid = r.build_id "
            "WHERE r.app_id IN (SELECT q.app FROM ca_plan AS q)"
        ).format(**self._digests(build_alias="b"))
        counts = sql.SQL("CREATE TEMPORARY TABLE ca_counts AS {}").format(self._counts("before"))
        return [render(before), render(counts)]

    @staticmethod
    def _counts(column: str) -> sql.Composed:
        return sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT {name} AS tbl, count(*) AS {c} FROM {t}").format(
                name=sql.Literal(t), t=sql.Identifier(t), c=sql.Identifier(column))
            for t in COUNTED_TABLES)

    # -- changes ---------------------------------------------------------------------------
    @cached_property
    def changes(self) -> list[str]:
        """The changes: per table one INSERT of copies; one UPDATE of the releases' pointers (both
        at once: each release row is rewritten once); per table one UPDATE of dates, one DELETE,
        one INSERT of re-inserted rows."""
        copies, rest = [], []
        for table, pointer in POINTER.items():
            columns = self.columns(table)
            f = dict(t=sql.Identifier(table), name=sql.Literal(table), p=sql.Identifier(pointer),
                     cols=sql.SQL(", ").join(map(sql.Identifier, columns)))
            picks = sql.SQL(", ").join(
                sql.SQL("q.new_uuid") if c == "uuid" else sql.SQL("q.new_created") if c in ("created", "updated")
                else sql.Identifier("x", c) for c in columns)
            copies.append(
                sql.SQL("INSERT INTO {t} ({cols}) SELECT {picks} FROM ca_plan AS q JOIN {t} AS x ON x.uuid = q.uuid "
                        "WHERE q.tbl = {name} AND q.kind = 'copy'").format(picks=picks, **f))
            rest += [
                sql.SQL("UPDATE {t} AS x SET created = q.new_created FROM ca_plan AS q "
                        "WHERE q.tbl = {name} AND q.kind = 'redate' AND x.uuid = q.uuid").format(**f),
                sql.SQL("DELETE FROM {t} AS x USING ca_plan AS q "
                        "WHERE q.tbl = {name} AND q.kind IN ('prune', 'uncopy') AND x.uuid = q.uuid").format(**f),
                sql.SQL("INSERT INTO {t} ({cols}) SELECT {jcols} FROM ca_plan AS q "
                        "CROSS JOIN json_populate_record(CAST(NULL AS {t}), CAST(q.image AS json)) AS j "
                        "WHERE q.tbl = {name} AND q.kind = 'reinsert'").format(jcols=_cols("j", columns), **f),
            ]
        rest.append(sql.SQL("UPDATE api_release AS x SET created = q.new_created FROM ca_plan AS q "
                            "WHERE q.tbl = 'api_release' AND q.kind = 'redate' AND x.uuid = q.uuid"))
        return [render(s) for s in (*copies, self._repoint(), *rest)]

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
    def invariants(self) -> str:
        """Everything that must hold before COMMIT: ``(action, problem)`` rows for what does not."""
        parts = [self._releases_unchanged(), self._counts_as_planned(), self._not_after_now(),
                 self._post_images("api_release"), self._release_order()]
        for table, pointer in POINTER.items():
            parts += [self._post_images(table), self._unshared(table, pointer), self._latest(table, pointer)]
        return render(sql.SQL("SELECT s.action, s.problem FROM ({}) AS s ORDER BY s.action NULLS FIRST LIMIT 20").format(
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
        f = dict(t=sql.Identifier(table), name=sql.Literal(table))
        return sql.SQL(
            "SELECT q.action, {msg} FROM ca_plan AS q LEFT JOIN {t} AS x ON x.uuid = q.uuid "
            "WHERE q.tbl = {name} AND q.post_fp IS NOT NULL "
            "AND (x.uuid IS NULL OR md5(CAST(x AS text)) <> q.post_fp) "
            "UNION ALL SELECT q.action, 'its release is not its recorded image' FROM ca_plan AS q "
            "LEFT JOIN api_release AS r ON r.uuid = q.release WHERE q.tbl = {name} AND q.release_post_fp IS NOT NULL "
            "AND (r.uuid IS NULL OR md5(CAST(r AS text)) <> q.release_post_fp)"
        ).format(msg=sql.Literal(f"the {kind_of(table)} is not its recorded image"), **f)

    @staticmethod
    def _unshared(table: str, pointer: str) -> sql.Composed:
        return sql.SQL(
            "SELECT CAST(NULL AS integer), {msg} || CAST(r.{p} AS text) || ' is used by ' || CAST(count(*) AS text) || ' releases' "
            "FROM api_release AS r WHERE r.{p} IS NOT NULL "
            "AND r.app_id IN (SELECT e.app FROM ca_expect AS e WHERE e.invariant = 'unshared') "
            "GROUP BY r.{p} HAVING count(*) > 1"
        ).format(msg=sql.Literal(f"{kind_of(table)} "), p=sql.Identifier(pointer))

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
        kind = kind_of(table)
        inv = f"latest_{kind}"
        live = self._live(inv, pointer)
        return sql.SQL(
            "SELECT CAST(NULL AS integer), 'app ' || CAST(l.app_id AS text) || CASE WHEN l.n > 1 "
            "THEN ': the live release is ambiguous (releases that did not fail tie on created)' "
            "ELSE {msg} || CAST(x.uuid AS text) || ', not the live release v' || CAST(l.version AS text) || {tail} END "
            "FROM ({live}) AS l JOIN ("
            "SELECT app_id, uuid, rank() OVER (PARTITION BY app_id ORDER BY created DESC) AS rk FROM {t} "
            "WHERE app_id IN (SELECT e.app FROM ca_expect AS e WHERE e.invariant = {inv})) AS x "
            "ON x.app_id = l.app_id AND x.rk = 1 WHERE l.n > 1 OR x.uuid IS DISTINCT FROM l.row_id"
        ).format(msg=sql.Literal(f": {kind}_set.latest() returns "), tail=sql.Literal(f"'s {kind}"), live=live,
                 t=sql.Identifier(table), inv=sql.Literal(inv))

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

    @staticmethod
    def _not_after_now() -> sql.Composed:
        """No forward action (one without a recorded post-image: undo restores recorded dates,
        whatever they are) dates a row after the transaction's ``now()``."""
        return sql.SQL(
            "SELECT q.action, 'it would date the row after now(): ' || CAST(q.new_created AS text) FROM ca_plan AS q "
            "WHERE q.kind IN ('copy', 'redate') AND q.post_fp IS NULL AND q.new_created > now()")


@dataclass(frozen=True)
class Images:
    """Queries that read what the undo file records, each returning one row of one text value.

    A copy's pre-image is known without reading: its release pointed at the original and had
    the fingerprint the plan recorded (the stale check verified both), so only the fingerprints
    after the change are read, as the JSON text the undo file stores (``[[action, copy md5,
    release md5], ...]``, built by the server in one statement).  The few re-dated (configs,
    builds, releases) and pruned rows are read whole: ``[[action, row, md5], ...]``.
    """

    @cached_property
    def rows_before(self) -> str:
        """Re-dated and pruned rows before the change, as a JSON array."""
        return self._agg(sql.SQL("q.action, row_to_json(x), md5(CAST(x AS text))"), "('redate', 'prune')", "uuid")

    @cached_property
    def rows_after(self) -> str:
        """Re-dated rows after the change: ``[[action, null, md5], ...]``."""
        return self._agg(sql.SQL("q.action, NULL, md5(CAST(x AS text))"), "('redate')", "uuid")

    @staticmethod
    def _agg(select: sql.Composable, kinds: str, key: str) -> str:
        parts = [sql.SQL("SELECT json_build_array({select}) AS a FROM ca_plan AS q JOIN {t} AS x ON x.uuid = q.{key} "
                         "WHERE q.tbl = {name} AND q.kind IN {kinds}").format(
            select=select, t=sql.Identifier(table), name=sql.Literal(table), key=sql.Identifier(key),
            kinds=sql.SQL(kinds)) for table in REDATED]
        return render(sql.SQL("SELECT CAST(coalesce(json_agg(s.a), CAST('[]' AS json)) AS text) FROM ({}) AS s").format(
            sql.SQL(" UNION ALL ").join(parts)))

    @cached_property
    def copies_after(self) -> str:
        """``[[action, md5 of the copy, md5 of its release], ...]`` in action order, as compact JSON."""
        parts = [sql.SQL("SELECT q.action, md5(CAST(x AS text)) AS copy_fp, md5(CAST(r AS text)) AS release_fp "
                         "FROM ca_plan AS q JOIN {t} AS x ON x.uuid = q.new_uuid "
                         "JOIN api_release AS r ON r.uuid = q.release WHERE q.tbl = {name} AND q.kind = 'copy'").format(
            t=sql.Identifier(table), name=sql.Literal(table)) for table in POINTER]
        item = sql.SQL("'[' || CAST(s.action AS text) || ',\"' || s.copy_fp || '\",\"' || s.release_fp || '\"]'")
        return render(sql.SQL("SELECT '[' || coalesce(string_agg({item}, ',' ORDER BY s.action), '') || ']' "
                              "FROM ({parts}) AS s").format(item=item, parts=sql.SQL(" UNION ALL ").join(parts)))
