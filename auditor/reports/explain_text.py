"""``explain APP`` as text, and as JSON, SVG and HTML: one app's history, what is wrong with it, what to
run next."""

from __future__ import annotations

import json
import shlex
from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from tabulate import tabulate

from auditor.audit.story import AppStory, Latest, ReleaseRow, RowUse
from auditor.core.controller import wrong_sentence
from auditor.core.findings import Finding
from auditor.core.text import escape
from auditor.reports.explain_doc import explain_document
from auditor.reports.picture.explain_page import explain_html, explain_svg, fixes_of
from repairs.model import REPAIRS

_LISTED_VERSIONS = 6
_SUMMARY_WIDTH = 40
#: ``explain --format`` choices.
EXPLAIN_FORMATS: tuple[str, ...] = ("text", "json", "svg", "html")


def _versions(versions: Iterable[int]) -> str:
    listed = list(versions)
    text = ", ".join(f"v{v}" for v in listed[:_LISTED_VERSIONS])
    return text + (f" (+{len(listed) - _LISTED_VERSIONS})" if len(listed) > _LISTED_VERSIONS else "")


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _release_notes(story: AppStory, rel: ReleaseRow) -> str:
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
    return "; ".join(notes)


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


def history_rows(story: AppStory) -> list[list[str]]:
    """The releases in version order with the unused configs/builds placed by ``created``."""
    loose = sorted(
        [(u.created, "config", u) for u in story.configs.values() if not u.versions]
        + [(u.created, "build", u) for u in story.builds.values() if not u.versions],
        key=lambda item: (item[0], item[1]),
    )
    rows: list[list[str]] = []
    placed = 0
    for rel in story.releases:
        while placed < len(loose) and loose[placed][0] < rel.created:
            _, kind, use = loose[placed]
            rows.append(_orphan_row(story, kind, use))
            placed += 1
        summary = escape(rel.summary or "")[:_SUMMARY_WIDTH]
        rows.append([f"v{rel.version}", _when(rel.created), "FAILED" if rel.failed else "", summary,
                     rel.config, rel.build or "(none)", _release_notes(story, rel)])
    rows += [_orphan_row(story, kind, use) for _, kind, use in loose[placed:]]
    return rows


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
    uses = Counter(r.version for r in story.releases)
    repeated = sorted(v for v, n in uses.items() if n > 1)
    nexts = sorted({r.version + 1 for r in tied})
    taken = [n for n in nexts if n in uses]
    if taken:
        verdict = (f"BROKEN: the next release would be v{', v'.join(map(str, nexts))}; v{taken[0]} exists, so every "
                   "config:set, push, pull and rollback fails on UNIQUE(app_id, version)")
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


def render(story: AppStory, findings: list[Finding], generation_label: str) -> str:
    """The whole explanation as text."""
    out = [f"app {escape(story.name)} ({story.uuid}), {generation_label}"]
    if len(story.live_tied) > 1:
        which = ", ".join(f"v{r.version}" for r in sorted(story.live_tied, key=lambda r: r.version))
        out.append(f"live release: AMBIGUOUS: {which} share the newest created among the releases that did not fail")
    elif story.live is not None:
        out.append(f"live release: v{story.live.version} (config {story.live.config}, build {story.live.build or 'none'})")
    else:
        out.append("live release: NONE (no release that did not fail)")
    out.append("")
    headers = ["version", "created", "failed", "summary", "config", "build", "notes"]
    # Every cell is text already: no number parsing (half of the time at 10,000 releases).
    out.append(tabulate(history_rows(story), headers=headers, tablefmt="simple", disable_numparse=True))
    out.append("")
    out.append("release order (the next version):")
    out += release_order_lines(story)
    out.append("")
    out.append("latest():")
    out += latest_lines(story)
    out.append("")
    if not findings:
        out.append("findings: none")
        return "\n".join(out)
    out.append(f"findings ({len(findings)}):")
    rows = [(f.severity.upper(), f.check, f"fix: {f.repair or 'manual'}", escape(f.message)) for f in findings]
    out.append(tabulate(rows, tablefmt="plain", disable_numparse=True))
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
    if fmt == "svg":
        return explain_svg(story, docs, label)
    return explain_html(story, docs, label, fixes=fixes_of(findings), next_steps=steps, history=history_rows(story))
