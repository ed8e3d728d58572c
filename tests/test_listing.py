"""What a report lists and what the server only counts (``--min-severity``): the counts are the
same whatever is listed, on every path (ordered findings, the server-rendered JSON and counts
shapes, the pre-16 client-side path), on builder stories and on generated databases."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

import pytest
from psycopg import sql

from auditor.audit import open_audit
from auditor.audit.listing import EVERYTHING, Listing
from auditor.audit.runner import Scope, build_statement, cast_gate, params_for, resolve_scope, scope_fragments
from auditor.core.detect import Generation, detect
from auditor.core.findings import SEVERITIES, at_least
from auditor.core.passes import closure, passes_for
from auditor.core.settings import Selection, Settings
from bench.generate import Spec, generate
from checks import CATALOGUE
from tests.test_bench import damaged_story

Key = tuple[str, str, str | None]


def _listed_and_hidden(run, listing: Listing, path: str) -> tuple[Counter, Counter]:
    """(listed findings, findings counted but not listed), per (check, severity, app)."""
    hidden: list = []
    if path == "findings":
        found = run.findings(listing=listing, hidden=hidden)
    else:
        found = run.streamed(path, listing=listing, hidden=hidden)
    listed = Counter((f.check, f.severity, f.app_name) for f in found)
    counted: Counter = Counter()
    for row in hidden:
        assert row.findings > 0
        counted[(row.check, row.severity, row.app_name)] += row.findings
    return listed, counted


def assert_same_counts(dsn: str, server_version: int | None = None, selection: Selection | None = None) -> Counter:
    """Every floor, every path: what is listed plus what is counted is what the full listing lists."""
    with open_audit(Settings(dsn=dsn), selection=selection, server_version=server_version) as run:
        full, none = _listed_and_hidden(run, EVERYTHING, "findings")
        assert not none
        for floor in SEVERITIES:
            for path in ("findings", "json", "counts"):
                listed, counted = _listed_and_hidden(run, Listing(floor), path)
                assert listed + counted == full, (floor, path)
                assert all(at_least(sev, floor) for _, sev, _ in listed), (floor, path)
                assert not any(at_least(sev, floor) for _, sev, _ in counted), (floor, path)
    return full


@pytest.mark.parametrize("migration", [19, 28])
def test_counts_equal_the_full_listing_on_the_damaged_story(make_db, migration: int) -> None:
    db = make_db(migration)
    damaged_story(db.conn)
    full = assert_same_counts(db.dsn)
    # Not two empty counters: every severity is there, and most findings are info (hazards).
    assert {sev for _, sev, _ in full} == set(SEVERITIES)
    assert sum(n for (_, sev, _), n in full.items() if sev == "info") > sum(full.values()) / 2


@pytest.mark.parametrize("migration", [19, 28])
def test_counts_equal_the_full_listing_before_16(make_db, migration: int) -> None:
    db = make_db(migration)
    damaged_story(db.conn)
    assert_same_counts(db.dsn, server_version=150000)


def test_counts_follow_the_severity_overrides(make_db) -> None:
    """An override that raises the hazards to warning lists them; one that lowers damage counts it."""
    db = make_db(28)
    damaged_story(db.conn)
    overrides = {"shared-config": {"info": "warning", "warning": "warning", "critical": "critical"},
                 "orphan-build": {"critical": "info", "info": "info"}}
    full = assert_same_counts(db.dsn, selection=Selection(severity_overrides=overrides))
    assert not [k for k in full if k[0] == "shared-config" and k[1] == "info"]
    with open_audit(Settings(dsn=db.dsn), selection=Selection(severity_overrides=overrides)) as run:
        listed, counted = _listed_and_hidden(run, Listing("warning"), "json")
    assert any(k[0] == "shared-config" and k[1] == "warning" for k in listed)
    assert not any(k[0] == "orphan-build" for k in listed) and any(k[0] == "orphan-build" for k in counted)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_counts_equal_the_full_listing_on_generated_databases(pg_server, seed: int) -> None:
    name = pg_server.create_database(None)
    try:
        dsn = pg_server.dsn(name)
        generate(dsn, Spec(releases=1500, apps=30, tie_rate=0.2, orphan_rate=0.05, seed=seed))
        full = assert_same_counts(dsn)
        assert sum(full.values()) > 0
    finally:
        pg_server.drop_database(name)


@pytest.mark.parametrize("migration", [19, 28])
def test_cross_app_rows_are_counted_as_they_are_listed(make_db, migration: int) -> None:
    """The shared checks count their cross-app rows without their listing: a row on another app's
    live release (critical), one on another app's older release (warning), and a row that one release
    of another app alone uses (a cross-app reference, shared by nobody: no shared-config finding)."""
    db = make_db(migration)
    ctl = db.controller()
    billing = ctl.create_app("billing")
    billing.config_set(PLAN="pro")  # v2 on config C
    shop = ctl.create_app("shop")
    shop.push(image="shop:1")  # v2
    alone = shop.point_at(2, billing)  # shop's v2 now uses billing's C
    shop.config_set(OWN="1")  # v3 on a config of shop's own: C is on no live release
    billing.config_set(PLAN="max")  # v3 on config D
    with db.conn.transaction():
        db.conn.execute("SET LOCAL session_replication_role = replica")
        db.conn.execute("UPDATE api_release SET config_id = %s WHERE app_id = %s AND version = 2",
                        (billing.current().config, billing.uuid))  # billing's v2 leaves C: only shop v2 uses it
    crm = ctl.create_app("crm")
    crm.config_set(TIER="gold")  # v2 on config E, crm's live release
    web = ctl.create_app("web")
    web.push(image="web:1")  # v2
    web.push(image="web:2")  # v3, web's live release
    web.point_at(2, crm)  # web's v2 (not its live release) uses crm's live E
    support = ctl.create_app("support")
    support.push(image="support:1")  # v2, support's live release
    shared_live = support.point_at(2, crm)  # support's live v2 uses E too: deleting E removes it (critical)
    hr = ctl.create_app("hr")
    hr.config_set(DEPT="1")  # v2 on config F
    ops = ctl.create_app("ops")
    ops.push(image="ops:1")  # v2
    ops.push(image="ops:2")  # v3, ops's live release
    off_live = ops.point_at(2, hr)  # ops's v2 (not live) uses hr's F: a warning
    full = assert_same_counts(db.dsn)
    assert full[("shared-config", "critical", "crm")] == 1 and full[("shared-config", "warning", "hr")] == 1
    assert not [k for k in full if k[0] == "shared-config" and k[2] == "billing" and k[1] != "info"]
    with open_audit(Settings(dsn=db.dsn), selection=Selection(include=("shared-config", "cross-app-reference"))) as run:
        found = list(run.findings())
    assert [(f.object_id, f.severity) for f in found if f.check == "shared-config" and f.severity != "info"] == [
        (shared_live, "critical"), (off_live, "warning")]
    assert any(alone in f.message for f in found if f.check == "cross-app-reference")


def test_apps_of_one_scope_are_counted_like_everything(make_db) -> None:
    db = make_db(28)
    damaged_story(db.conn)
    with open_audit(Settings(dsn=db.dsn), apps=["live-reuse", "left-behind", "app-00003"]) as run:
        full, _ = _listed_and_hidden(run, EVERYTHING, "findings")
        listed, counted = _listed_and_hidden(run, Listing("warning"), "json")
    assert listed + counted == full and counted


def test_a_listing_floor_lists_what_the_exit_code_depends_on() -> None:
    assert Listing.of("warning", "warning").floor == "warning"
    assert Listing.of("critical", "warning").floor == "warning"
    assert Listing.of("warning", "info").floor == "info"
    assert Listing.of("critical", "never").floor == "critical"
    assert Listing.of("info", "critical").floor == "info"


@pytest.mark.parametrize("migration", [19, 28])
def test_latest_rows_are_counted_as_they_are_listed(make_db, migration: int) -> None:
    """latest-build-not-live and latest-ambiguous count with their own SELECT: a failed push's build left
    newest (critical up to 0019, info after), tied newest configs (warning) and builds (warning up to
    0019, info after), on three apps and both sides of the default floor."""
    db = make_db(migration)
    ctl = db.controller()
    web = ctl.create_app("web")
    web.push(image="web:1")
    web.failed_push(image="web:2")  # the failed push's build is web's newest
    api = ctl.create_app("api")
    api.config_set(A="1")
    api.orphan_config(at=ctl.clock, B="2")  # ties with api's live config
    shop = ctl.create_app("shop")
    shop.push(image="shop:1")
    when = ctl.clock
    shop.orphan_build(at=when)
    shop.orphan_build(at=when)  # three builds tie at shop's newest, the live one among them
    full = assert_same_counts(db.dsn)
    old = migration <= 19
    assert full[("latest-build-not-live", "critical" if old else "info", "web")] == 1
    assert full[("latest-ambiguous", "warning", "api")] == 1
    assert full[("latest-ambiguous", "warning" if old else "info", "shop")] == 1


@pytest.mark.parametrize("migration", [19, 28])
def test_the_default_statement_carries_each_check_once(make_db, migration: int) -> None:
    """A check listed and counted by the default floor is planned once: its counting SELECT is its own,
    not its listing's SQL again (but missing-constraint, which reads 17 rows of the catalogue)."""
    db = make_db(migration)
    generation = detect(db.conn)
    checks = [c for c in CATALOGUE.values() if c.applies_to(generation)]
    statement = build_statement(generation, checks, Scope(), listing=Listing("warning")).as_string(db.conn)
    fragments = scope_fragments(Scope())
    twice = [c.id for c in checks if statement.count(c.sql_for(generation).compose(**fragments).as_string(db.conn)) > 1]
    assert twice == ["missing-constraint"]


def _branches(statement: str, check_id: str) -> list[str]:
    """The check's SELECTs in ``statement``, in order: ``listed`` (finding by finding) or ``counted``."""
    marks = re.findall(rf"SELECT '{check_id}' AS check_id, \"([cn])\d+\"", statement)
    return ["listed" if mark == "c" else "counted" for mark in marks]


@pytest.mark.parametrize("migration", [19, 28])
def test_a_level_the_generation_cannot_give_is_not_planned(make_db, migration: int) -> None:
    """From api migration 0020 on the controller never reads ``build_set.latest()``: orphan-build and
    latest-build-not-live give only info findings there, so at the default floor they are counted and
    their listing SELECT is not in the statement (it was, with its joins and sub-selects, planned and run
    for a severity filter to drop every row).  Up to 0019 their newest rows are critical: listed (and
    latest-build-not-live, which gives nothing else there, is not counted)."""
    db = make_db(migration)
    generation = detect(db.conn)
    checks = [c for c in CATALOGUE.values() if c.applies_to(generation)]
    statement = build_statement(generation, checks, resolve_scope(db.conn, ()), ordered=False,
                                listing=Listing("warning")).as_string(db.conn)
    old = migration <= 19
    assert _branches(statement, "orphan-build") == (["listed", "counted"] if old else ["counted"])
    assert _branches(statement, "latest-build-not-live") == (["listed"] if old else ["counted"])
    assert _branches(statement, "orphan-config") == ["listed", "counted"]
    assert _branches(statement, "latest-config-not-live") == ["listed"]
    everything = build_statement(generation, checks, resolve_scope(db.conn, ()), ordered=False).as_string(db.conn)
    assert _branches(everything, "orphan-build") == _branches(everything, "latest-build-not-live") == ["listed"]


@pytest.mark.parametrize("migration", [19, 28])
def test_ties_among_builds_are_not_listed_where_they_are_counted(make_db, migration: int) -> None:
    """latest-ambiguous: from 0020 on a tie among builds is info, so at the default floor its listing
    SELECT reads the configs' ties alone (the builds' part was planned and run for the severity filter
    to drop every row); the count still counts the builds' ties.  Up to 0019 they are warnings: listed."""
    db = make_db(migration)
    generation = detect(db.conn)
    statement = build_statement(generation, [CATALOGUE["latest-ambiguous"]], resolve_scope(db.conn, ()),
                                ordered=False, listing=Listing("warning")).as_string(db.conn)
    listed, _, counted = statement.partition("SELECT 'latest-ambiguous' AS check_id, \"n")
    assert ("latest_bld lx" in listed) == (migration <= 19)
    assert "latest_bld lx" in counted
    everything = build_statement(generation, [CATALOGUE["latest-ambiguous"]], resolve_scope(db.conn, ()),
                                 ordered=False).as_string(db.conn)
    assert "latest_bld lx" in everything


def test_the_levels_a_check_can_give_follow_the_generation() -> None:
    """The orphan and latest-not-live checks give the level of what their newest row breaks on the
    generation (critical before 0010 for configs, up to 0019 for builds), the orphans info besides;
    every other check can give each of its levels."""
    def levels(check_id: str, migration: int) -> tuple[str, ...]:
        generation = Generation("deis" if migration <= 23 else "hephy", migration, f"{migration:04d}_x",
                                migration >= 20, migration >= 26, {})
        return CATALOGUE[check_id].levels_for(generation)

    assert [levels("orphan-config", m) for m in (8, 10, 28)] == [("critical", "info"), ("warning", "info"),
                                                                 ("warning", "info")]
    assert [levels("latest-config-not-live", m) for m in (8, 10, 28)] == [("critical",), ("warning",), ("warning",)]
    assert [levels("orphan-build", m) for m in (19, 20, 28)] == [("critical", "info"), ("info",), ("info",)]
    assert [levels("latest-build-not-live", m) for m in (19, 20, 28)] == [("critical",), ("info",), ("info",)]
    generational = {"orphan-config", "orphan-build", "latest-config-not-live", "latest-build-not-live"}
    assert all(levels(c.id, m) == c.levels for c in CATALOGUE.values() if c.id not in generational for m in (8, 28))


def _plan_nodes(node: dict) -> Iterator[dict]:
    """``node`` and every plan node under it, depth first (planned, whether they run or not)."""
    yield node
    for child in node.get("Plans", ()):
        yield from _plan_nodes(child)


def _planned_ctes(node: dict) -> set[str]:
    """The CTEs the plan under ``node`` holds (planned, whether they run or not)."""
    return {n["Subplan Name"][4:] for n in _plan_nodes(node) if n.get("Subplan Name", "").startswith("CTE ")}


@pytest.mark.parametrize("migration", [19, 28])
@pytest.mark.parametrize("apps", [(), ("shop",)], ids=["every-app", "one-app"])
def test_a_statement_counting_the_shared_rows_plans_no_window_pass(make_db, migration: int, apps: tuple[str, ...]) -> None:
    """When the shared checks' info findings are counted (the default floor), the statement lists their
    cross-app rows alone: their in-app part, and the window pass over every release in scope it reads
    (``rel_pos``, and ``rel`` under it), are not in the statement to be planned (a severity filter above
    a UNION prunes nothing before planning: for the largest app, planning them cost more than running
    them).  With every finding listed they are there."""
    db = make_db(migration)
    damaged_story(db.conn)
    generation = detect(db.conn)
    scope = resolve_scope(db.conn, apps)
    checks = [c for c in CATALOGUE.values() if c.applies_to(generation)]
    params = params_for(scope, 300, 60)
    planned = {}
    for floor in ("warning", "info"):
        statement = build_statement(generation, checks, scope, db.conn.info.server_version, ordered=False,
                                    listing=Listing(floor)).as_string(db.conn).encode()
        plan = db.conn.execute(b"EXPLAIN (FORMAT JSON) " + statement, params).fetchone()[0][0]
        planned[floor] = _planned_ctes(plan["Plan"])
    assert {"rel_notable", "xuse", "config_use", "build_use"} <= planned["warning"]
    assert not {"rel_pos", "rel"} & planned["warning"]
    assert {"rel_pos"} <= planned["info"]


def _nodes_under_cte(node: dict, cte: str, inside: bool = False) -> list[dict]:
    """The plan nodes under the CTE named ``cte``."""
    inside = inside or node.get("Subplan Name") == f"CTE {cte}"
    found = [node] if inside else []
    for child in node.get("Plans", ()):
        found += _nodes_under_cte(child, cte, inside)
    return found


@pytest.mark.parametrize("migration", [19, 28])
def test_one_apps_window_sorts_by_its_position_in_the_scope(make_db, migration: int) -> None:
    """Under ``--app`` the window under ``rel_notable`` partitions by the app's position in the scope (an
    integer), not by its uuid: the sort of the app's releases no longer begins every comparison with two
    equal uuids (for the largest app, 10,000 releases, it was most of the sort), and its frame is ``ROWS``
    (the order ends with the release's uuid: no peers).  The whole-database window is unchanged."""
    db = make_db(migration)
    damaged_story(db.conn)
    generation = detect(db.conn)
    checks = [c for c in CATALOGUE.values() if c.applies_to(generation)]
    keys = {}
    for apps in ((), ("shop", "clutter")):
        scope = resolve_scope(db.conn, apps)
        statement = build_statement(generation, checks, scope, db.conn.info.server_version, ordered=False,
                                    listing=Listing("warning")).as_string(db.conn).encode()
        plan = db.conn.execute(b"EXPLAIN (VERBOSE, FORMAT JSON) " + statement, params_for(scope, 300, 60)).fetchone()[0][0]
        nodes = _nodes_under_cte(plan["Plan"], "rel_notable")
        keys[apps] = [n.get("Sort Key", [""])[0] for n in nodes if n["Node Type"] in ("Sort", "Incremental Sort")]
        windows = [n for n in nodes if n["Node Type"] == "WindowAgg"]
        assert windows, apps
        if apps and any("Window" in n for n in windows):  # EXPLAIN shows the window's definition since 17
            assert any("ROWS UNBOUNDED PRECEDING" in n["Window"] for n in windows), windows
    assert keys[()] and all(k.endswith("app_id") for k in keys[()]), keys
    assert keys[("shop", "clutter")] and all(k.endswith(".n") for k in keys[("shop", "clutter")]), keys


@pytest.mark.parametrize("migration", [19, 28])
@pytest.mark.parametrize("apps", [(), ("shop",)], ids=["every-app", "one-app"])
def test_the_default_window_computes_no_positions(make_db, migration: int, apps: tuple[str, ...]) -> None:
    """The window under ``rel_notable`` computes what its readers read: no release's position in its app
    (``row_number``) and no running count of non-failed releases, which only the shared rows' listing
    (``rel_pos``) reads; with every finding listed ``rel_pos`` computes both."""
    db = make_db(migration)
    damaged_story(db.conn)
    generation = detect(db.conn)
    scope = resolve_scope(db.conn, apps)
    checks = [c for c in CATALOGUE.values() if c.applies_to(generation)]
    outputs = {}
    for floor in ("warning", "info"):
        statement = build_statement(generation, checks, scope, db.conn.info.server_version, ordered=False,
                                    listing=Listing(floor)).as_string(db.conn).encode()
        plan = db.conn.execute(b"EXPLAIN (VERBOSE, FORMAT JSON) " + statement, params_for(scope, 300, 60)).fetchone()[0][0]
        cte = "rel_notable" if floor == "warning" else "rel_pos"
        windows = [n for n in _nodes_under_cte(plan["Plan"], cte) if n["Node Type"] == "WindowAgg"]
        assert windows, floor
        outputs[floor] = " ".join(" ".join(n["Output"]) for n in windows)
        assert "lag(" in outputs[floor] and "max(" in outputs[floor], outputs[floor]
    assert "row_number()" not in outputs["warning"] and "sum(" not in outputs["warning"], outputs["warning"]
    assert "row_number()" in outputs["info"] and "sum(" in outputs["info"], outputs["info"]


_NOTABLE_COLUMNS = ("uuid, app_id, version, created, failed, config_id, build_id, prev_version, next_version,"
                    " app_releases, app_max_version, app_newest_created, app_live_created")

#: Apps of the damaged story whose histories the window must get right: a clock that went backwards, releases
#: tied at the newest, a live tie, a repeated version, a gap, failed releases last, cross-app and dangling rows.
_ODD_APPS = ("backwards", "tie", "live-tie", "repeated", "gap", "shop", "borrower", "ghost-rows", "app-00003")


def _notable_rows(conn, generation: Generation, scope: Scope, window_listed: bool) -> list[tuple]:
    """The ``rel_notable`` pass's rows, by itself: its own window, or (``window_listed``) filtered from
    ``rel_pos``, the window over every release with both windows of its app."""
    passes = passes_for(generation, window_listed, scoped=not scope.everything)
    fragments = scope_fragments(scope)
    ctes = sql.SQL(",\n").join(sql.SQL("{} AS ({})").format(sql.Identifier(p.name), p.body.compose(**fragments))
                               for p in closure(passes, {"rel_notable"}))
    statement = sql.SQL("WITH {} SELECT {} FROM rel_notable ORDER BY app_id, version, created, uuid").format(
        ctes, sql.SQL(_NOTABLE_COLUMNS))
    return conn.execute(statement, params_for(scope, 300, 60)).fetchall()


@pytest.mark.parametrize("migration", [19, 28])
@pytest.mark.parametrize("apps", [_ODD_APPS, ("gap",)], ids=["odd-apps", "one-app"])
def test_the_notable_releases_are_those_of_the_whole_apps_window(make_db, migration: int, apps: tuple[str, ...]) -> None:
    """Under ``--app`` ``rel_notable``'s own window (the running window in reverse order, the app's window over
    its candidates alone) gives the rows and columns the filter over both windows of every release gives
    (``rel_pos``), on every odd history of the damaged story."""
    db = make_db(migration)
    damaged_story(db.conn)
    generation = detect(db.conn)
    scope = resolve_scope(db.conn, [a for a in apps if db.conn.execute(
        "SELECT 1 FROM api_app WHERE id = %s", (a,)).fetchone()])
    own = _notable_rows(db.conn, generation, scope, window_listed=False)
    assert own == _notable_rows(db.conn, generation, scope, window_listed=True)
    assert len({row[1] for row in own}) == len(scope.uuids) > 0


@pytest.mark.parametrize("migration", [19, 28])
@pytest.mark.parametrize("apps", [("shop",), _ODD_APPS], ids=["one-app", "odd-apps"])
def test_the_apps_window_runs_over_the_candidates_alone(make_db, migration: int, apps: tuple[str, ...]) -> None:
    """Under ``--app`` the window of ``rel_notable`` over each app's whole partition (its count and maxima)
    reads only the candidate releases the running window keeps, not every release: it held every release
    of the app until its partition ended (for the largest app, 10,000 rows, about half of the window pass)."""
    db = make_db(migration)
    damaged_story(db.conn)
    generation = detect(db.conn)
    scope = resolve_scope(db.conn, [a for a in apps if db.conn.execute(
        "SELECT 1 FROM api_app WHERE id = %s", (a,)).fetchone()])
    checks = [c for c in CATALOGUE.values() if c.applies_to(generation)]
    statement = build_statement(generation, checks, scope, db.conn.info.server_version, ordered=False,
                                listing=Listing("warning")).as_string(db.conn).encode()
    plan = db.conn.execute(b"EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params_for(scope, 300, 60)).fetchone()[0][0]
    windows = [n for n in _nodes_under_cte(plan["Plan"], "rel_notable") if n["Node Type"] == "WindowAgg"]
    releases = db.conn.execute("SELECT count(*) FROM api_release WHERE app_id = ANY(%s)", (list(scope.uuids),)).fetchone()[0]
    assert releases > 0
    assert windows[-1]["Actual Rows"] == releases  # the running window: every release in scope
    top = windows[0]["Plans"][0]
    assert top["Actual Rows"] * top["Actual Loops"] < releases, top


def _anti_joins(node: dict) -> list[dict]:
    """The anti-joins in the plan under ``node``."""
    return [n for n in _plan_nodes(node) if n.get("Join Type") in ("Anti", "Right Anti")]


@pytest.mark.parametrize("migration", [19, 28])
@pytest.mark.parametrize("check_id", ["shared-config", "shared-build"])
def test_the_shared_count_tests_cross_app_rows_without_a_join(make_db, migration: int, check_id: str) -> None:
    """The count of a shared check's info findings leaves out the rows used across apps (``xuse``, almost
    always empty) by a membership test, not by an anti-join: planned as one, the join hashed every shared
    line of the use pass (~235k per table at 1M releases) to find none of them in ``xuse``.  The counts
    are the listing's (:func:`test_counts_equal_the_full_listing_on_the_damaged_story`)."""
    db = make_db(migration)
    damaged_story(db.conn)
    generation = detect(db.conn)
    statement = build_statement(generation, [CATALOGUE[check_id]], Scope(), db.conn.info.server_version,
                                ordered=False, listing=Listing("warning")).as_string(db.conn).encode()
    plan = db.conn.execute(b"EXPLAIN (FORMAT JSON) " + statement, params_for(Scope(), 300, 60)).fetchone()[0][0]
    assert _anti_joins(plan["Plan"]) == []


def _live_lookups(node: dict) -> int:
    """The scans of ``api_release`` as ``l`` in the plan under ``node``: the shared checks' lookups of a
    release app's live release (the listing's ``is_live``, the count's ``foreign_live``)."""
    return sum(1 for n in _plan_nodes(node)
               if n.get("Relation Name") == "api_release" and re.fullmatch(r"l(_\d+)?", n.get("Alias", "")))


@pytest.mark.parametrize("migration", [19, 28])
@pytest.mark.parametrize("apps", [(), ("shop",)], ids=["every-app", "one-app"])
@pytest.mark.parametrize("check_id", ["shared-config", "shared-build"])
def test_a_count_of_the_info_findings_alone_plans_no_cross_app_count(make_db, migration: int, apps: tuple[str, ...],
                                                                     check_id: str) -> None:
    """At the default floor a shared check lists its critical and warning findings (the cross-app rows)
    and counts its info ones: the counting SELECT is the info part alone, without the cross-app part
    (its live-release look-ups, a join of ``xuse`` with the releases) whose rows the severity filter
    would all drop after planning and running them.  Counting warning findings too, it is there; the
    counts are the listing's (:func:`test_counts_equal_the_full_listing_on_the_damaged_story`)."""
    db = make_db(migration)
    damaged_story(db.conn)
    generation = detect(db.conn)
    scope = resolve_scope(db.conn, apps)
    lookups = {}
    for floor in ("warning", "critical"):
        statement = build_statement(generation, [CATALOGUE[check_id]], scope, db.conn.info.server_version,
                                    ordered=False, listing=Listing(floor)).as_string(db.conn).encode()
        plan = db.conn.execute(b"EXPLAIN (FORMAT JSON) " + statement, params_for(scope, 300, 60)).fetchone()[0][0]
        lookups[floor] = _live_lookups(plan["Plan"])
    assert lookups["warning"] < lookups["critical"]  # the listing's alone; the count's too when it counts warnings


def _is_pointer_scan(node: dict) -> bool:
    """A scan of ``api_release`` by the array of the rows in scope (``config_id = ANY`` / ``build_id = ANY``)."""
    conditions = " ".join(str(node.get(k, "")) for k in ("Index Cond", "Recheck Cond", "Filter"))
    return node.get("Relation Name") == "api_release" and ("config_id = ANY" in conditions or "build_id = ANY" in conditions)


@pytest.mark.parametrize("migration", [19, 28])
def test_one_apps_pointer_scans_return_only_other_apps_releases(make_db, migration: int) -> None:
    """Under ``--app`` the scans of the release table for the app's configs and builds (cross-app uses)
    return only other apps' releases: the app's own (10,000 for the largest) are left out as the table is
    read, not joined and then thrown away (its releases using another app's row come from ``foreign_rel``)."""
    db = make_db(migration)
    damaged_story(db.conn)
    generation = detect(db.conn)
    checks = [c for c in CATALOGUE.values() if c.applies_to(generation)]
    scope = resolve_scope(db.conn, ("shop",))
    statement = build_statement(generation, checks, scope, db.conn.info.server_version, ordered=False,
                                listing=Listing("warning")).as_string(db.conn).encode()
    plan = db.conn.execute(b"EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params_for(scope, 300, 60)).fetchone()[0][0]
    scans = [n for n in _plan_nodes(plan["Plan"]) if _is_pointer_scan(n) and n.get("Actual Loops")]
    assert scans
    others = db.conn.execute(
        "SELECT count(*) FROM api_release r JOIN api_config c ON c.uuid = r.config_id"
        " WHERE c.app_id = %(app)s AND r.app_id IS DISTINCT FROM %(app)s", {"app": scope.uuids[0]}).fetchone()[0]
    others += db.conn.execute(
        "SELECT count(*) FROM api_release r JOIN api_build b ON b.uuid = r.build_id"
        " WHERE b.app_id = %(app)s AND r.app_id IS DISTINCT FROM %(app)s", {"app": scope.uuids[0]}).fetchone()[0]
    own = db.conn.execute("SELECT count(*) FROM api_release WHERE app_id = %s", (scope.uuids[0],)).fetchone()[0]
    assert own > 0
    assert sum(n["Actual Rows"] * n["Actual Loops"] for n in scans) == others


def _cte_scans(node: dict) -> Counter:
    """How many scans of each CTE run in the plan under ``node`` (EXPLAIN ANALYZE: a scan in a branch
    the planner proved empty never runs)."""
    return Counter(n["CTE Name"] for n in _plan_nodes(node) if n.get("Node Type") == "CTE Scan" and n.get("Actual Loops"))


@pytest.mark.parametrize("migration", [19, 28])
@pytest.mark.parametrize("floor", ["warning", "info"])
def test_every_release_is_sorted_once_and_never_spooled(make_db, migration: int, floor: str) -> None:
    """The per-app release checks and ``live`` read ``rel_notable`` (the few releases they look at,
    filtered from the window over every release as it comes).  At the default floor nothing else reads
    the window pass ``rel_pos``, which then never runs (it was written to a tuplestore and read back by
    each of them); when the shared rows' info findings are listed, ``rel_notable`` filters ``rel_pos``
    (one sort of the releases either way).  dangling-reference and app-without-release read no pass of
    every release, and the use passes and the window read the release table themselves: no pass of
    every release (``rel``) is written to a tuplestore and read back (at 1M releases it was 88 MB on
    disk, read three times)."""
    db = make_db(migration)
    damaged_story(db.conn)
    generation = detect(db.conn)
    checks = [c for c in CATALOGUE.values() if c.applies_to(generation)]
    # The statement this server gets (before 16: the JSON values read on the client, as when the cast fails).
    statement = build_statement(generation, checks, Scope(), db.conn.info.server_version, ordered=False,
                                listing=Listing(floor))
    explain = db.conn.execute(b"EXPLAIN (ANALYZE, FORMAT JSON) " + statement.as_string(db.conn).encode(),
                              params_for(Scope(), 300, 60)).fetchone()[0][0]
    scans = _cte_scans(explain["Plan"])
    assert scans["rel"] == 0
    assert scans["rel_notable"] >= 4
    if floor == "warning":
        assert scans["rel_pos"] == 0
    else:  # the shared rows' info listings (config and build) and rel_notable
        assert scans["rel_pos"] == 3


def _aggregates_of(node: dict, function: str) -> list[dict]:
    """The aggregate nodes under ``node`` (planned, whether they run or not) that compute ``function``."""
    return [n for n in _plan_nodes(node)
            if n["Node Type"] == "Aggregate" and any(f"{function}(" in column for column in n.get("Output", ()))]


@pytest.mark.parametrize("migration", [19, 28])
@pytest.mark.parametrize("apps", [(), ("shop",)], ids=["every-app", "one-app"])
@pytest.mark.parametrize("path", ["server", "cast", "client"])
def test_invalid_jsons_tables_share_one_lateral(make_db, migration: int, apps: tuple[str, ...], path: str) -> None:
    """invalid-json's suspect rows of every table (configs, builds, apps, app settings) go through one
    LATERAL that aggregates a row's bad values, not one copy per table: each copy was planned (~0.6 MB of
    planner memory and its share of a fresh session's time, for rows that are almost never there).  On
    each path: validated by the server (16+, behind the gate), by the cast before 16, or shipped to the
    client."""
    db = make_db(migration)
    damaged_story(db.conn)
    generation = detect(db.conn)
    scope = resolve_scope(db.conn, apps)
    checks = [CATALOGUE["invalid-json"]]
    version = db.conn.info.server_version if path == "server" else 150000
    gated = cast_gate(generation, checks, scope, version) if path == "server" else None
    client_side = frozenset({"invalid-json"}) if path == "client" else frozenset()
    statement = build_statement(generation, checks, scope, version, ordered=False, client_side=client_side,
                                gated=gated).as_string(db.conn).encode()
    params = {**params_for(scope, 300, 60), "cast_refused": None}
    plan = db.conn.execute(b"EXPLAIN (VERBOSE, FORMAT JSON) " + statement, params).fetchone()[0][0]
    assert len(_aggregates_of(plan["Plan"], "json_agg")) == 1
