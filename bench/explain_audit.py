"""Where the audit statement's time goes: ``EXPLAIN (ANALYZE, BUFFERS)`` per pass and per check.

Builds the statement exactly as ``check --format json`` sends it (the runner's unordered union
of every check, wrapped by :mod:`auditor.streamed` so the server renders each line; before
PostgreSQL 16 the same once the tool's JSON cast probe passed, and with ``--legacy`` or when it
fails the plain union with invalid-json's client-side rows, which the client renders), runs it under
``EXPLAIN (ANALYZE, BUFFERS, VERBOSE, FORMAT JSON)`` in the audit's session settings, and attributes the
time: to each shared pass (a CTE: the nodes under it), to each check (its branch of the
union, its own nodes only: reading a pass is the pass's time) and to the rendering on top.
Spills (sorts and hashes to disk, tuplestores on disk) are listed with their sizes.
``--split`` also counts the findings and their JSON bytes per check and severity (one more
run of the statement).

Run: ``python -m bench.explain_audit --dsn DSN [--app NAME] [--legacy] [--split] [--raw FILE]``.
EXPLAIN ANALYZE times every node, which costs time of its own: compare parts with each other,
and the total with the statement run plainly (printed too).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from auditor.audit import open_audit
from auditor.audit.listing import Listing
from auditor.audit.runner import build_statement, cast_gate, client_side_checks, params_for
from auditor.audit.streamed import wrap
from auditor.core.server_support import SHA256_SINCE
from auditor.core.settings import Settings

Node = dict[str, Any]


@dataclass
class Breakdown:
    """Self time (ms) per part of the plan, and what spilled."""

    total_ms: float
    planning_ms: float = 0.0
    parts: Counter = field(default_factory=Counter)
    rows: dict[str, float] = field(default_factory=dict)
    spills: list[str] = field(default_factory=list)
    statement_ms: float | None = None


def _children(node: Node) -> list[Node]:
    return list(node.get("Plans", ()))


def _total(node: Node) -> float:
    """Actual total time of ``node`` over all its loops (ms)."""
    return float(node.get("Actual Total Time", 0.0)) * float(node.get("Actual Loops", 1) or 1)


def _spill(node: Node) -> str | None:
    kind = node.get("Node Type", "")
    if node.get("Sort Space Type") == "Disk":
        return f"{kind} {node.get('Sort Key')}: {node.get('Sort Method')} {node.get('Sort Space Used')} kB on disk"
    if int(node.get("HashAgg Batches", 0) or 0) > 1:
        return f"{kind} {node.get('Group Key')}: {node['HashAgg Batches']} batches, {node.get('Disk Usage')} kB on disk"
    if int(node.get("Hash Batches", 0) or 0) > 1:
        return f"{kind}: {node['Hash Batches']} batches"
    if node.get("Storage") == "Disk":
        name = node.get("CTE Name") or node.get("Relation Name") or ""
        return f"{kind} {name}: tuplestore on disk, {node.get('Maximum Storage')} kB"
    return None


def _cte_totals(node: Node) -> Iterator[tuple[str, float]]:
    for child in _children(node):
        label = child.get("Subplan Name", "")
        if label.startswith("CTE "):
            yield label[4:], _total(child)
        yield from _cte_totals(child)


def _check_of(node: Node, check_ids: Sequence[str]) -> str | None:
    """The check whose branch ``node`` is: its output (EXPLAIN VERBOSE) starts with the check id."""
    output = node.get("Output") or []
    first = output[0] if output else ""
    for check_id in check_ids:
        if first.startswith(f"'{check_id}'"):
            return check_id
    return None


def _mark_branches(node: Node, check_ids: Sequence[str]) -> None:
    """Tag the union's members (nested unions inside a check are flattened into it) with their check."""
    for child in _children(node):
        if child.get("Parent Relationship") == "Member":
            found = _check_of(child, check_ids)
            if found:
                child["_check"] = found
                continue
        _mark_branches(child, check_ids)


def breakdown(plan: Node, check_ids: Sequence[str]) -> Breakdown:
    """Self time per shared pass, per check and for the rest (rendering, the outer query)."""
    root = plan["Plan"]
    out = Breakdown(total_ms=float(plan.get("Execution Time", 0.0)), planning_ms=float(plan.get("Planning Time", 0.0)))
    # What is left of each pass's time to take out of its scans: the scan that runs the pass (not
    # always the first one walked; a rescanned one spreads it over its loops) is charged with it.
    uncharged = dict(_cte_totals(root))
    _mark_branches(root, check_ids)

    def walk(node: Node, part: str) -> None:
        children = _children(node)
        # A CTE's time is inside the scans that read it (charged below); any other sub-plan's is
        # inside the node that evaluates it, this one.
        own = _total(node) - sum(_total(c) for c in children if not c.get("Subplan Name", "").startswith("CTE "))
        name = node.get("CTE Name", "") if node.get("Node Type") == "CTE Scan" else ""
        if name in uncharged:
            taken = min(max(own, 0.0), uncharged[name])
            own -= taken
            uncharged[name] -= taken
        out.parts[part] += max(own, 0.0)
        out.rows.setdefault(part, float(node.get("Actual Rows", 0)) * float(node.get("Actual Loops", 1) or 1))
        spill = _spill(node)
        if spill:
            out.spills.append(f"[{part}] {spill}")
        for child in children:
            label = child.get("Subplan Name", "")
            if label.startswith("CTE ") and part.startswith("check "):
                walk(child, f"{part} / its CTE {label[4:]}")  # a check's own WITH
            elif label.startswith("CTE "):
                walk(child, f"pass {label[4:]}")
            elif "_check" in child:
                walk(child, f"check {child['_check']}")
            else:
                walk(child, part)

    walk(root, "rendering and the outer query")
    return out


def audit_statement(conn: psycopg.Connection, run: Any, legacy: bool | None,
                    min_severity: str = "warning") -> tuple[sql.Composable, dict[str, object]]:
    """The statement ``check --format json --min-severity MIN_SEVERITY`` sends, and its parameters."""
    version = conn.info.server_version
    is_legacy = version < 160000 if legacy is None else legacy
    as_version = 150000 if is_legacy else max(version, 160000)
    params = params_for(run.scope, run.settings.grace_seconds, run.settings.skew_seconds)
    # ``--legacy``: the pre-16 statement with every client-filtered check read on the client; else,
    # before 16, what the tool sends after its cast probe (auditor.audit.precast).
    # When the probe passes, the tool's statement is gated by the same casts (cast_gate).
    client_side = None if legacy else client_side_checks(conn, run.generation, run.checks, run.scope, params,
                                                         as_version)
    gated = None if client_side != frozenset() else cast_gate(run.generation, run.checks, run.scope, as_version)
    statement = build_statement(run.generation, run.checks, run.scope, as_version, ordered=False,
                                listing=Listing(min_severity), client_side=client_side, gated=gated, stable=True)
    client_rendered = is_legacy and any(c.legacy_filter is not None and (client_side is None or c.id in client_side)
                                        for c in run.checks)
    if not client_rendered:
        server_key = version >= SHA256_SINCE and run.generation.encoding != "SQL_ASCII"
        statement = wrap(statement, "json", version, server_key)
        params["severity_overrides"] = json.dumps({})
    return statement, params


def explain_audit(dsn: str, apps: Sequence[str] = (), legacy: bool | None = None,
                  split: bool = False, min_severity: str = "warning") -> tuple[Breakdown, Node, dict[tuple[str, str], tuple[int, int]]]:
    """EXPLAIN the audit statement on ``dsn``: the breakdown, the raw plan, and with ``split``
    the findings and JSON bytes per (check, severity)."""
    with open_audit(Settings(dsn=dsn, statement_timeout="1h"), apps=apps) as run:
        conn = run.conn
        statement, params = audit_statement(conn, run, legacy, min_severity)
        began = time.perf_counter()
        with conn.cursor(name="bench_plain") as cur:
            cur.itersize = 5000
            cur.execute(statement, params)
            for _ in cur:
                pass
        plain_ms = (time.perf_counter() - began) * 1000
        query = sql.SQL("EXPLAIN (ANALYZE, BUFFERS, VERBOSE, FORMAT JSON) {}").format(statement)
        plan = conn.execute(query, params).fetchone()[0][0]
        result = breakdown(plan, [c.id for c in run.checks])
        result.statement_ms = plain_ms
        sizes: dict[tuple[str, str], tuple[int, int]] = {}
        if split and "severity_overrides" in params:
            # A row of a finding not listed counts ``counted`` findings and has no line.
            counted = sql.SQL("SELECT check_id, severity, sum(coalesce(counted, 1)), sum(length(line) + 1)"
                              " FROM ({}) s GROUP BY 1, 2").format(statement)
            for check_id, severity, n, size in conn.execute(counted, params):
                sizes[(check_id, severity)] = (n, int(size or 0))
        elif split:
            sizes = _client_split(run, min_severity)
        return result, plan, sizes


def _client_split(run: Any, min_severity: str) -> dict[tuple[str, str], tuple[int, int]]:
    """The split of a statement the client renders (before PostgreSQL 16 when JSON is checked on
    the client): the findings as the tool lists them, each line's length as ``--format json``
    writes it, and those not listed as the server counts them."""
    totals: defaultdict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    hidden: list = []
    for finding in run.findings(listing=Listing(min_severity), hidden=hidden):
        total = totals[(finding.check, finding.severity)]
        total[0] += 1
        total[1] += len(finding.json_text()) + 1
    for counted in hidden:
        totals[(counted.check, counted.severity)][0] += counted.findings
    return {key: (n, size) for key, (n, size) in totals.items()}


def report(result: Breakdown, sizes: dict[tuple[str, str], tuple[int, int]]) -> str:
    """The breakdown as text: parts by self time, spills, and the split of findings."""
    lines = [f"statement run plainly (server cursor, every row fetched): {result.statement_ms:,.0f} ms",
             f"EXPLAIN ANALYZE: planning {result.planning_ms:,.0f} ms, execution {result.total_ms:,.0f} ms"
             " (self time of the execution by part below)", ""]
    for part, ms in result.parts.most_common():
        lines.append(f"  {ms:>9,.0f} ms  {ms / max(result.total_ms, 1):>4.0%}  {part}")
    if result.spills:
        lines += ["", "spills:"] + [f"  {s}" for s in result.spills]
    if sizes:
        lines += ["", "findings and JSON bytes per check and severity:"]
        by_sev: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
        for (check_id, severity), (n, size) in sorted(sizes.items()):
            lines.append(f"  {check_id:24} {severity:9} {n:>9,} {size / 1e6:>9.1f} MB")
            by_sev[severity][0] += n
            by_sev[severity][1] += size
        for severity, (n, size) in by_sev.items():
            lines.append(f"  {'(all)':24} {severity:9} {n:>9,} {size / 1e6:>9.1f} MB")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.explain_audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--app", action="append", default=[], help="audit only this app (repeatable)")
    parser.add_argument("--legacy", action="store_true", help="the statement of servers before 16 when a JSON value does not cast"
                        " (client-side JSON, every check in it)")
    parser.add_argument("--min-severity", default="warning", choices=("critical", "warning", "info"),
                        help="the statement of this --min-severity (default warning, as check's)")
    parser.add_argument("--split", action="store_true", help="count findings and JSON bytes per check and severity")
    parser.add_argument("--raw", default=None, help="also write the JSON plan to this file")
    args = parser.parse_args(argv)
    result, plan, sizes = explain_audit(args.dsn, args.app, True if args.legacy else None, args.split, args.min_severity)
    if args.raw:
        with open(args.raw, "w", encoding="utf-8") as handle:
            json.dump(plan, handle, indent=1)
    print(report(result, sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
