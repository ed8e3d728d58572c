"""``explain APP`` as text, and as JSON, SVG and HTML: one app's history, what is wrong with it, what to
run next."""

from __future__ import annotations

import json
import shlex
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import compress
from typing import Any, NamedTuple

from auditor.audit.story import AppStory, Latest, ReleaseRow, RowUse
from auditor.core.catalogue import REPAIRS
from auditor.core.controller import wrong_sentence
from auditor.core.findings import SEVERITIES, Counted, Finding
from auditor.core.text import escape
from auditor.reports.explain_doc import explain_document

_LISTED_VERSIONS = 6
#: Releases either side of the live one that the collapsed history always shows.
AROUND_LIVE = 2
#: The shortest run of uneventful history rows collapsed into one line (shorter runs are shown).
MIN_COLLAPSED = 3
_SUMMARY_WIDTH = 40
#: ``explain --format`` choices.
EXPLAIN_FORMATS: tuple[str, ...] = ("text", "json", "svg", "html")


def _tabulate(rows: list[list[str]], **options: Any) -> str:
    """tabulate's table; the library is imported when :func:`_table` needs it (not for --help nor JSON)."""
    from tabulate import tabulate

    return tabulate(rows, **options)


def _table(rows: Sequence[Sequence[str]], headers: Sequence[str] = ()) -> str:
    """tabulate's table of text cells without number parsing: its "simple" format with ``headers``,
    "plain" without.  Where every cell and header is printable ASCII (a cell's width is its length,
    and tabulate's per-cell type inference changes nothing when no number is parsed), the table is
    written here with tabulate's rules: cells stripped and flushed left, a column as wide as its
    widest cell or its header plus two, columns two spaces apart, lines stripped at the right, a
    line of dashes under the headers.  Any other table (control characters, wide or combining
    characters, ANSI codes, rows of unequal length, no rows) is tabulate's own."""
    width = len(rows[0]) if rows else 0
    text = " ".join([" ".join(headers)] + [" ".join(row) for row in rows])
    if (not width or (headers and len(headers) != width) or any(len(row) != width for row in rows)
            or not (text.isascii() and text.isprintable())):
        options: dict[str, Any] = {"headers": list(headers), "tablefmt": "simple"} if headers else {"tablefmt": "plain"}
        return _tabulate([list(row) for row in rows], disable_numparse=True, **options)
    columns = [[cell.strip() for cell in column] for column in zip(*rows, strict=True)]
    floor = [len(h) + 2 for h in headers] if headers else [0] * width
    widths = [max(least, *map(len, column)) for least, column in zip(floor, columns, strict=True)]
    lines = []
    if headers:
        lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
        lines.append("  ".join("-" * w for w in widths).rstrip())
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
              for row in zip(*columns, strict=True)]
    return "\n".join(lines)


def _versions(versions: Iterable[int]) -> str:
    listed = list(versions)
    text = ", ".join(f"v{v}" for v in listed[:_LISTED_VERSIONS])
    return text + (f" (+{len(listed) - _LISTED_VERSIONS})" if len(listed) > _LISTED_VERSIONS else "")


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _release_notes(story: AppStory, rel: ReleaseRow) -> list[str]:
    notes = []
    if story.live is not None and rel.uuid == story.live.uuid:
        notes.append("LIVE" if len(story.live_tied) == 1 else "LIVE?")
    elif any(rel.uuid == t.uuid for t in story.live_tied):
        notes.append("LIVE?")
    if story.order_broken and any(rel.uuid == t.uuid for t in story.newest_tied):
        notes.append("release_set.latest()" + ("?" if len(story.newest_tied) > 1 else ""))
    if story.future_dated(rel.created):
        notes.append("FUTURE-DATED")
    for kind, uses, uid in (("config", story.configs, rel.config), ("build", story.builds, rel.build)):
        use = uses.get(uid) if uid else None
        if use is None:
            if uid:
                notes.append(f"{kind} not in this app")
            continue
        others = [v for v in use.versions if v != rel.version]
        if others:
            notes.append(f"{kind} shared with {_versions(others)}")
        if use.foreign_apps:
            notes.append(f"{kind} also used by app {', '.join(use.foreign_apps)} (cross-app)")
        today = story.latest[kind].today
        if today is not None and today.uuid == uid:
            notes.append(f"{kind} = latest()")
    return notes


class _Noted:
    """Whether :func:`_release_notes` has a note beyond sharing inside the app (LIVE, LIVE?,
    release_set.latest(), FUTURE-DATED, a row of another app, cross-app, latest()), without
    writing the notes (most releases of a long history have none): what decides it is gathered
    once per story."""

    def __init__(self, story: AppStory, pinned: set[str]) -> None:
        self.pinned = pinned  # the live, tied and newest releases are pinned
        self.future_after = story.future_after
        self.configs, self.builds = story.configs, story.builds
        # The rows of the app whose use is a note: used by another app, or what latest() returns.
        self.noted_configs = self._noted(story.configs, story.latest["config"])
        self.noted_builds = self._noted(story.builds, story.latest["build"])

    @staticmethod
    def _noted(uses: dict[str, RowUse], latest: Latest) -> set[str]:
        noted = {uuid for uuid, use in uses.items() if use.foreign_apps}
        if latest.today is not None:
            noted.add(latest.today.uuid)
        return noted

    def __call__(self, rel: ReleaseRow) -> bool:
        if rel.uuid in self.pinned or (self.future_after is not None and rel.created > self.future_after):
            return True
        config, build = rel.config, rel.build  # a row of another app, or a noted one of this app
        if config and (config not in self.configs or config in self.noted_configs):
            return True
        return bool(build) and (build not in self.builds or build in self.noted_builds)


def _orphan_row(story: AppStory, kind: str, use: RowUse) -> list[str]:
    if use.orphan:
        what = "used by no release"
    else:
        what = f"used only by {use.foreign_uses} release(s) of app {', '.join(use.foreign_apps)}"
    note = f"ORPHAN {kind}" if use.orphan else f"CROSS-APP {kind}"
    if story.future_dated(use.created):
        note += "; FUTURE-DATED"
    latest = story.latest[kind].today
    if latest is not None and latest.uuid == use.uuid:
        note += f"; {kind} = latest()"
    return ["-", _when(use.created), "", f"({what})",
            use.uuid if kind == "config" else "", use.uuid if kind == "build" else "", note]


def involved_ids(findings: Iterable[Finding]) -> set[str]:
    """Every id the findings name: their objects, and every string of their related rows and
    evidence (a release, config or build among them is involved in the finding)."""
    ids: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            ids.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    for finding in findings:
        ids.add(finding.object_id)
        walk(finding.related)
        walk(finding.evidence)
    return ids


def _pinned(story: AppStory) -> set[str]:
    """The releases the collapsed history always shows, whatever their notes: the first, the
    highest, the newest, the live one (tied ones too) and :data:`AROUND_LIVE` either side of it."""
    releases = story.releases
    if not releases:
        return set()
    pinned = {releases[0].uuid, releases[-1].uuid}
    pinned.update(r.uuid for r in story.newest_tied)
    pinned.update(r.uuid for r in story.live_tied)
    if story.live is not None:
        at = next(i for i, r in enumerate(releases) if r.uuid == story.live.uuid)
        pinned.update(r.uuid for r in releases[max(0, at - AROUND_LIVE):at + AROUND_LIVE + 1])
    return pinned


def _release_cells(story: AppStory, rel: ReleaseRow) -> list[str]:
    return [f"v{rel.version}", _when(rel.created), "FAILED" if rel.failed else "",
            escape(rel.summary or "")[:_SUMMARY_WIDTH], rel.config, rel.build or "(none)",
            "; ".join(_release_notes(story, rel))]


#: A line of the history before it is written: a release, or a config/build no release of the app
#: uses with its kind.
HistoryItem = ReleaseRow | tuple[str, RowUse]


class History(NamedTuple):
    """The history's lines before the findings are known (:func:`story_history`): ``items`` in
    order, ``remarkable`` each one's flag but for the findings' ids, and ``quiet`` for each id a line
    that is not remarkable names (a release, its config or build; an unused row) the positions of
    those lines.  Lists, not an object per line: a long history has 10,000 of them."""

    items: list[HistoryItem]
    remarkable: list[bool]
    quiet: dict[str, list[int]]

    def involving(self, involved: Iterable[str]) -> list[bool]:
        """The flags, the lines naming an id of ``involved`` (a finding's object, related rows or
        evidence) remarkable too: the work after the findings arrive is one look-up per id."""
        flags = list(self.remarkable)
        quiet = self.quiet
        for uid in involved:
            for at in quiet.get(uid, ()):
                flags[at] = True
        return flags


def story_history(story: AppStory) -> History:
    """The releases in version order with the unused configs/builds placed by ``created``, before
    the findings are known (``explain`` builds it while the server runs the audit).

    A line is remarkable when it is pinned (:func:`_pinned`), failed, or has a note beyond sharing
    inside the app (live, latest(), cross-app, future-dated, a row of another app); an unused row
    when it is used by another app, future-dated or what latest() returns. The ids a finding names
    make more lines remarkable (:meth:`History.involving`).
    """
    noted = _Noted(story, _pinned(story))
    loose = sorted(
        [(u.created, "config", u) for u in story.configs.values() if not u.versions]
        + [(u.created, "build", u) for u in story.builds.values() if not u.versions],
        key=lambda item: (item[0], item[1]),
    )
    items: list[HistoryItem] = []
    flags: list[bool] = []
    quiet: dict[str, list[int]] = {}
    name = quiet.setdefault

    def unused(kind: str, use: RowUse) -> None:
        latest = story.latest[kind].today
        remarkable = (not use.orphan or story.future_dated(use.created)
                      or (latest is not None and latest.uuid == use.uuid))
        if not remarkable:
            name(use.uuid, []).append(len(items))
        items.append((kind, use))
        flags.append(remarkable)

    placed = 0
    for rel in story.releases:
        while placed < len(loose) and loose[placed][0] < rel.created:
            unused(loose[placed][1], loose[placed][2])
            placed += 1
        remarkable = rel.failed or noted(rel)
        if not remarkable:
            at = len(items)
            name(rel.uuid, []).append(at)
            name(rel.config, []).append(at)
            if rel.build is not None:
                name(rel.build, []).append(at)
        items.append(rel)
        flags.append(remarkable)
    for _, kind, use in loose[placed:]:
        unused(kind, use)
    return History(items, flags, quiet)


def _cells(story: AppStory, item: HistoryItem) -> list[str]:
    if isinstance(item, ReleaseRow):
        return _release_cells(story, item)
    return _orphan_row(story, *item)


def history_rows(story: AppStory) -> list[list[str]]:
    """Every row of the history (the HTML page's table)."""
    return [_cells(story, item) for item in story_history(story).items]


def _gap_line(run: list[HistoryItem]) -> str:
    versions = [item.version for item in run if isinstance(item, ReleaseRow)]
    parts = []
    if versions:
        parts.append(f"{len(versions):,} release{'s' if len(versions) != 1 else ''} v{versions[0]}..v{versions[-1]}")
    unused = len(run) - len(versions)
    if unused:
        parts.append(f"{unused:,} unused config{'s' if unused != 1 else ''} or build{'s' if unused != 1 else ''}")
    return f"... {' and '.join(parts)} with nothing to report (--all lists them)"


_HEADERS = ["version", "created", "failed", "summary", "config", "build", "notes"]


def history_table(story: AppStory, findings: Iterable[Finding] = (), *, everything: bool = False,
                  told: History | None = None) -> list[str]:
    """The history table's lines: every row with ``everything``, else the remarkable rows (see
    :func:`story_history` and :meth:`History.involving`) with each run of at least :data:`MIN_COLLAPSED`
    other rows on one line; ``told`` the story's history built beforehand (:func:`story_history`)."""
    told = told or story_history(story)
    items = told.items
    shown: list[HistoryItem] = items if everything else []
    gaps: dict[int, str] = {}  # line after the n-th shown row -> the collapsed run's line
    if not everything:
        start = 0  # each run of lines that are not remarkable ends at the next one that is, or at the end
        for at in [*compress(range(len(items)), told.involving(involved_ids(findings))), len(items)]:
            run = items[start:at]
            if len(run) >= MIN_COLLAPSED:
                gaps[len(shown)] = _gap_line(run)
            else:
                shown.extend(run)
            shown.extend(items[at:at + 1])
            start = at + 1
    table = _table([_cells(story, item) for item in shown], _HEADERS).split("\n")
    head, body = table[:2], table[2:]
    lines = head + ([gaps[0]] if 0 in gaps else [])
    for index, line in enumerate(body, start=1):
        lines.append(line)
        if index in gaps:
            lines.append(gaps[index])
    return lines


def latest_lines(story: AppStory) -> list[str]:
    """What ``latest()`` returns today and what it should return."""
    lines = []
    for latest in story.latest.values():
        lines.append(_latest_line(story, latest))
    return lines


def _latest_line(story: AppStory, latest: Latest) -> str:
    label = f"{latest.kind}_set.latest()"
    if latest.today is None:
        return f"  {label:<20} returns nothing (the app has no {latest.kind})"
    today = latest.today
    if today.versions:
        used = f"used by {_versions(today.versions)}"
    else:
        used = ("ORPHAN: used by no release" if today.orphan
                else f"used only by a release of app {', '.join(today.foreign_apps)}")
    if len(story.live_tied) > 1:
        live = "live release ambiguous"
    else:
        live = f"live v{story.live.version}'s" if story.live else "no live release"
    should = latest.expected or "(none)"
    future = ""
    if latest.future:
        future = (f"; FUTURE-DATED: created after now() + {story.skew_seconds:g}s, it stays latest() through "
                  f"every new {latest.kind}")
    if latest.ok:
        verdict = "ok" + future
    elif latest.ties > 1:
        verdict = f"AMBIGUOUS: {latest.ties} {latest.kind}s share the newest created time"
    elif latest.expected is None:
        verdict = "no live release to compare with" if story.live is None or latest.kind == "config" else (
            f"the live release v{story.live.version} has no {latest.kind}")
    elif len(story.live_tied) > 1:
        verdict = "the live release is ambiguous (see release order)"
    else:
        verdict = "WRONG: " + wrong_sentence(latest.kind, story.migration) + future
        if verdict.startswith("WRONG: differs"):
            verdict = verdict.removeprefix("WRONG: ")
    return (f"  {label:<20} returns {today.uuid} (created {_when(today.created)}, {used})\n"
            f"  {'':<20} should be {should} ({live})  -> {verdict}")


def release_order_lines(story: AppStory) -> list[str]:
    """What ``release_set.latest()`` returns and what the next release's version would be."""
    label = "release_set.latest()"
    if story.newest is None or story.highest is None:
        return [f"  {label:<20} returns nothing (the app has no release): the next release is v1"]
    tied = story.newest_tied
    if len(tied) > 1:
        which = ", ".join(f"v{r.version}" for r in sorted(tied, key=lambda r: r.version))
        returns = f"returns any of {which} (they share the newest created, {_when(tied[0].created)})"
    else:
        returns = f"returns v{story.newest.version} (created {_when(story.newest.created)}, the newest by created)"
    if story.future_dated(story.newest.created):
        returns += "; FUTURE-DATED: every later release is dated before it"
    repeated = story.repeated_versions
    nexts = sorted({r.version + 1 for r in tied})
    versions = {r.version for r in story.releases}
    taken = [n for n in nexts if n in versions]
    if taken:
        verdict = (f"BROKEN: the next release would be v{', v'.join(map(str, nexts))}; v{taken[0]} exists, so every "
                   "config:set, push, pull and rollback fails on UNIQUE(app_id, version)")
    elif len(tied) == 1 and story.newest == story.highest and story.future_dated(story.newest.created):
        verdict = (f"BROKEN: the next release would be v{nexts[0]}, dated before v{story.highest.version}, which stays "
                   f"release_set.latest(): the deploy after it is numbered v{nexts[0]} again and fails on "
                   "UNIQUE(app_id, version) (plan --repair release-order moves it back)")
    elif story.order_broken and not repeated:
        verdict = (f"BROKEN: the next release would be v{nexts[0]} (a free number) although v{story.highest.version} "
                   "exists: the deploy after it fails on UNIQUE(app_id, version)")
    else:
        verdict = f"ok: the next release is v{nexts[0]}"
    if repeated:
        verdict += (f"; versions repeat (v{', v'.join(map(str, repeated))}): UNIQUE(app_id, version) is not "
                    "enforced, a rollback to them fails")
    lines = [f"  {label:<20} {returns}",
             f"  {'':<20} highest version v{story.highest.version} (created {_when(story.highest.created)})  "
             f"-> {verdict}"]
    if len(story.live_tied) > 1:
        which = ", ".join(f"v{r.version}" for r in sorted(story.live_tied, key=lambda r: r.version))
        lines.append(f"  {'live release':<20} AMBIGUOUS: {which} did not fail and share the newest created: deploy, "
                     "scale, config:set and boot may each use another one")
    return lines


#: The order in which ``plan`` composes repairs (each is planned on the state the previous leaves).
REPAIR_ORDER: tuple[str, ...] = REPAIRS


def _next_steps(name: str, findings: list[Finding]) -> list[str]:
    app = shlex.quote(name)
    plan = shlex.quote(f"{name}.plan")
    wanted = {f.repair for f in findings if f.repair}
    if "release-order" in wanted:
        wanted.add("restore-latest")  # re-dating releases can change which release is live, and so its latest()
    repairs = sorted(wanted, key=lambda r: (REPAIR_ORDER.index(r) if r in REPAIR_ORDER else len(REPAIR_ORDER), r))
    lines = []
    if repairs:
        flags = " ".join(f"--repair {r}" for r in repairs)
        lines += [f"  controller-audit plan --app {app} {flags} -o {plan}",
                  f"  controller-audit plan show {plan}",
                  f"  controller-audit apply {plan}"]
    for cid in sorted({f.check for f in findings if not f.repair and not f.manual}):
        lines.append(f"  # {cid} has no automatic repair: read `controller-audit checks {cid}`")
    for finding in findings:
        if finding.manual:
            lines.append(f"  # {finding.check} {finding.object_id}: fix by hand: {escape(finding.manual)}")
    return lines


def not_listed_lines(hidden: Iterable[Counted], floor: str) -> list[str]:
    """The findings counted but not listed (below ``floor``), per severity and check, with the
    flag that lists them."""
    by_severity: Counter[str] = Counter()
    by_check: Counter[str] = Counter()
    for counted in hidden:
        by_severity[counted.severity] += counted.findings
        by_check[counted.check] += counted.findings
    if not sum(by_severity.values()):
        return []
    levels = [s for s in SEVERITIES if by_severity.get(s)]
    counts = ", ".join(f"{by_severity[s]:,} {s}" for s in levels)
    checks = ", ".join(f"{c} {n:,}" for c, n in sorted(by_check.items(), key=lambda kv: (-kv[1], kv[0])))
    return [f"not listed (below --min-severity {floor}): {counts} ({checks}); "
            f"--min-severity {levels[-1]} or --all lists them"]


def render(story: AppStory, findings: list[Finding], generation_label: str, *,
           hidden: Iterable[Counted] = (), floor: str = "info", everything: bool = False,
           told: History | None = None) -> str:
    """The whole explanation as text: the history collapsed to what matters unless ``everything``;
    ``hidden`` the findings counted but not listed (below ``floor``); ``told`` the story's history
    built before the findings arrived (:func:`story_history`)."""
    out = [f"app {escape(story.name)} ({story.uuid}), {generation_label}"]
    if len(story.live_tied) > 1:
        which = ", ".join(f"v{r.version}" for r in sorted(story.live_tied, key=lambda r: r.version))
        out.append(f"live release: AMBIGUOUS: {which} share the newest created among the releases that did not fail")
    elif story.live is not None:
        out.append(f"live release: v{story.live.version} (config {story.live.config}, build {story.live.build or 'none'})")
    else:
        out.append("live release: NONE (no release that did not fail)")
    out.append("")
    out += history_table(story, findings, everything=everything, told=told)
    out.append("")
    out.append("release order (the next version):")
    out += release_order_lines(story)
    out.append("")
    out.append("latest():")
    out += latest_lines(story)
    out.append("")
    unlisted = not_listed_lines(hidden, floor)
    if not findings:
        out.append("findings: none" + (" listed" if unlisted else ""))
        out += unlisted
        return "\n".join(out)
    out.append(f"findings ({len(findings)}):")
    rows = [(f.severity.upper(), f.check, f"fix: {f.repair or 'manual'}", escape(f.message)) for f in findings]
    out.append(_table(rows))
    out += unlisted
    out.append("")
    out.append("next:")
    out += _next_steps(escape(story.name), findings)
    return "\n".join(out)


def formatted(fmt: str, story: AppStory, findings: list[Finding], label: str) -> str:
    """The explanation as JSON, SVG or HTML."""
    docs = [json.loads(f.json_text()) for f in findings]
    steps = _next_steps(story.name, findings)
    if fmt == "json":
        return json.dumps(explain_document(story, docs, label, steps), indent=1) + "\n"
    # The pictures' templates (jinja2) are imported for SVG and HTML only: the text and JSON start faster.
    from auditor.reports.picture.explain_page import explain_html, explain_svg, fixes_of

    if fmt == "svg":
        return explain_svg(story, docs, label)
    return explain_html(story, docs, label, fixes=fixes_of(findings), next_steps=steps, history=history_rows(story))
