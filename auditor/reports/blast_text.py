"""``blast-radius`` as text: counts per table first, then the loud warnings, then the releases."""

from __future__ import annotations

from tabulate import tabulate

from auditor.audit.blast import BlastRadius
from auditor.core.text import escape


def render(radius: BlastRadius) -> str:
    """Counts per table first, then the loud warnings, then the (capped) list of releases."""
    if radius.kind == "app":
        subject = f"app {radius.subject}"
    else:
        subject = f"{radius.kind} {radius.subject} (app {radius.app or '?'})"
    out = [f"Deleting {subject} through the controller (Django ORM, on_delete=CASCADE) would delete:", ""]
    rows = [(table, n) for table, n in radius.counts.items()]
    rows.append(("total", radius.total))
    out.append(tabulate(rows, headers=["table", "rows"], colalign=("left", "right")))
    if radius.foreign_releases:
        out.append("")
        out.append(f"!!! the cascade crosses into app {', '.join(radius.foreign_apps)}: "
                   f"{radius.foreign_releases} release(s) of OTHER apps would be deleted too: they reference "
                   f"this {'app' if radius.kind == 'app' else radius.kind}'s rows (cross-app reference).")
    for live in radius.live_hit:
        out.append("")
        if radius.kind == "app" and live.app == radius.subject:
            out.append(f"!!! THE LIVE RELEASE v{live.version} OF APP {live.app} WOULD BE DELETED with the app.")
        else:
            out.append(f"!!! THE LIVE RELEASE v{live.version} OF APP {live.app} WOULD BE DELETED: the app would "
                       f"be left without the release it runs; the controller would deploy, scale and roll back "
                       f"from an older one.")
    out.append("")
    shown = len(radius.releases)
    more = f", showing the first {shown}" if shown < radius.release_total else ""
    out.append(f"releases that would be deleted ({radius.release_total}{more}):")
    if radius.releases:
        rel_rows = [(escape(r.app or "?"), f"v{r.version}", r.created.strftime("%Y-%m-%d %H:%M:%S"),
                     "FAILED" if r.failed else "", r.uuid, "LIVE" if r.live else "") for r in radius.releases]
        out.append(tabulate(rel_rows, headers=["app", "version", "created", "failed", "uuid", ""]))
    else:
        out.append("  none")
    out.append("")
    out.append("(The database's own foreign keys are NO ACTION: a raw SQL DELETE cascades nothing and fails at "
               "COMMIT; this is what the controller's ORM would do.)")
    return "\n".join(out)
