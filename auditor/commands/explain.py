"""``controller-audit explain APP``: one app's history, what is wrong with it, what to run next."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable

import click
from tabulate import tabulate

from auditor.audit import open_audit
from auditor.catalogue import load_catalogue
from auditor.commands._audit import settings_from
from auditor.configfile import target_for
from auditor.explain import AppStory, Latest, ReleaseRow, RowUse
from auditor.explain import app_story as read_story
from auditor.explain_doc import explain_document
from auditor.fileio import atomic_write
from auditor.findings import Finding
from auditor.options import target_options
from auditor.picture.explain_page import explain_html, explain_svg
from auditor.runner import Selection

_LISTED_VERSIONS = 6
_SUMMARY_WIDTH = 40
#: ``explain --format`` choices.
EXPLAIN_FORMATS: tuple[str, ...] = ("text", "json", "svg", "html")


def _versions(versions: Iterable[int]) -> str:
    listed = list(versions)
    text = ", ".join(f"v{v}" for v in listed[:_LISTED_VERSIONS])
    return text + (f" (+{len(listed) - _LISTED_VERSIONS})" if len(listed) > _LISTED_VERSIONS else "")


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _release_notes(story: AppStory, rel: ReleaseRow) -> str:
    notes = []
    if story.live is not None and rel.uuid == story.live.uuid:
        notes.append("LIVE")
    for kind, uses, uid in (("config", story.configs, rel.config), ("build", story.builds, rel.build)):
        use = uses.get(uid) if uid else None
        if use is None:
            if uid:
                notes.append(f"{kind} not in this app")
            continue
        others = [v for v in use.versions if v != rel.version]
        if others:
            notes.append(f"{kind} shared with {_versions(others)}")
        if story.latest[kind].today is not None and story.latest[kind].today.uuid == uid:
            notes.append(f"{kind} = latest()")
    return "; ".join(notes)


def _orphan_row(story: AppStory, kind: str, use: RowUse) -> list[str]:
    what = "used by no release" if use.orphan else f"used only by {use.foreign_uses} release(s) of another app"
    note = f"ORPHAN {kind}" if use.orphan else f"CROSS-APP {kind}"
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
        summary = (rel.summary or "")[:_SUMMARY_WIDTH]
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
        used = "ORPHAN: used by no release" if today.orphan else "used only by another app's release"
    live = f"live v{story.live.version}'s" if story.live else "no live release"
    should = latest.expected or "(none)"
    if latest.ok:
        verdict = "ok"
    elif latest.ties > 1:
        verdict = f"AMBIGUOUS: {latest.ties} {latest.kind}s share the newest created time"
    elif latest.expected is None:
        verdict = "no live release to compare with"
    else:
        verdict = "WRONG: the controller would build on a row the live release does not use"
    return (f"  {label:<20} returns {today.uuid} (created {_when(today.created)}, {used})\n"
            f"  {'':<20} should be {should} ({live})  -> {verdict}")


#: The order in which ``plan`` composes repairs (each is planned on the state the previous leaves).
REPAIR_ORDER: tuple[str, ...] = ("prune-orphans", "unshare", "restore-latest")


def _repair_of(finding: Finding, catalogue: dict) -> str | None:
    check = catalogue.get(finding.check)
    return check.repair if check is not None else None


def _next_steps(name: str, findings: list[Finding], catalogue: dict) -> list[str]:
    app = shlex.quote(name)
    plan = shlex.quote(f"{name}.plan")
    wanted = {r for r in (_repair_of(f, catalogue) for f in findings) if r}
    repairs = sorted(wanted, key=lambda r: (REPAIR_ORDER.index(r) if r in REPAIR_ORDER else len(REPAIR_ORDER), r))
    lines = []
    if repairs:
        flags = " ".join(f"--repair {r}" for r in repairs)
        lines += [f"  controller-audit plan --app {app} {flags} -o {plan}",
                  f"  controller-audit plan show {plan}",
                  f"  controller-audit apply {plan}"]
    for cid in sorted({f.check for f in findings if not _repair_of(f, catalogue)}):
        lines.append(f"  # {cid} has no automatic repair: read `controller-audit checks {cid}`")
    return lines


def render(story: AppStory, findings: list[Finding], generation_label: str) -> str:
    """The whole explanation as text."""
    out = [f"app {story.name} ({story.uuid}), {generation_label}"]
    if story.live is not None:
        out.append(f"live release: v{story.live.version} (config {story.live.config}, build {story.live.build or 'none'})")
    else:
        out.append("live release: NONE (no release that did not fail)")
    out.append("")
    headers = ["version", "created", "failed", "summary", "config", "build", "notes"]
    # Every cell is text already: no number parsing (half of the time at 10,000 releases).
    out.append(tabulate(history_rows(story), headers=headers, tablefmt="simple", disable_numparse=True))
    out.append("")
    out.append("latest():")
    out += latest_lines(story)
    out.append("")
    if not findings:
        out.append("findings: none")
        return "\n".join(out)
    out.append(f"findings ({len(findings)}):")
    catalogue = load_catalogue()
    rows = [(f.severity.upper(), f.check, f"fix: {_repair_of(f, catalogue) or 'manual'}", f.message)
            for f in findings]
    out.append(tabulate(rows, tablefmt="plain", disable_numparse=True))
    out.append("")
    out.append("next:")
    out += _next_steps(story.name, findings, catalogue)
    return "\n".join(out)


@click.command("explain")
@click.argument("app")
@click.option("--grace", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Configs/builds younger than this are a deploy in flight [default: 300].")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Config file (for the DSN source and severity overrides).")
@click.option("--format", "fmt", type=click.Choice(EXPLAIN_FORMATS), default="text", show_default=True,
              help="text; json (docs/report-format.md); svg (the timeline picture); html (a self-contained page).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write to FILE (atomically) instead of stdout.")
@target_options
def explain(app: str, grace: float | None, config_path: str | None, fmt: str, output: str | None, dsn: str | None,
            statement_timeout: str, lock_timeout: str) -> None:
    """Explain one app: releases, shared and orphan rows, latest(), findings, and the fix."""
    settings = settings_from(config_path)
    target = target_for(dsn, settings)
    selection = Selection(severity_overrides=dict(settings.severity))
    grace_seconds = grace if grace is not None else (settings.grace if settings.grace is not None else 300)
    with open_audit(target, apps=[app], selection=selection, grace_seconds=grace_seconds,
                    statement_timeout=statement_timeout, lock_timeout=lock_timeout) as run:
        story = read_story(run.conn, run.generation, app)
        findings = list(run.findings())
        label = run.generation.label
    text = render(story, findings, label) + "\n" if fmt == "text" else formatted(fmt, story, findings, label)
    if output is None:
        click.echo(text, nl=False)
    else:
        atomic_write(output, text)


def formatted(fmt: str, story: AppStory, findings: list[Finding], label: str) -> str:
    """The explanation as JSON, SVG or HTML."""
    docs = [json.loads(f.json_text()) for f in findings]
    catalogue = load_catalogue()
    steps = _next_steps(story.name, findings, catalogue)
    if fmt == "json":
        return json.dumps(explain_document(story, docs, label, steps), indent=1) + "\n"
    if fmt == "svg":
        return explain_svg(story, docs, label)
    fixes = {f.check: _repair_of(f, catalogue) for f in findings}
    return explain_html(story, docs, label, fixes=fixes, next_steps=steps, history=history_rows(story))


def register(cli: click.Group) -> None:
    """Add ``explain``."""
    cli.add_command(explain)
