"""The demo's story, step by step: cron finds tonight's damage, on call explains it, a reviewed
plan repairs the database, undo takes the repair back, and the repair goes in again.

Each step is one real command line (:class:`auditor.demo.presenter.Presenter`); what the
narration says each damage breaks is ``../shared/controller-schema.md`` section 8, and it
names no severity the checks do not give on every generation (the output shows them).
"""

from __future__ import annotations

import click

from auditor.demo.presenter import Cut, Presenter
from auditor.demo.story import Story, write_tonights_damage

PLAN = "repair.plan"
UNDO = f"{PLAN}.undo.json"
REPAIRS = ("prune-orphans", "release-order", "unshare", "restore-latest")
TEXTFILE = "controller_audit.prom"
#: README sections the summary sends a newcomer to (tests/test_demo.py checks they exist).
README_SECTIONS = ("On call: explain, plan, apply, undo", "Cron: exit codes, Prometheus, Nagios, a baseline",
                   "SQL scripts: plan sql, review, psql, undo sql", "Connecting, and a least-privilege role")
#: The check table's first group below warning: the excerpts stop before it.
INFO_GROUP = "INFO - app "


def nonzero_series(lines: list[str]) -> list[str]:
    """The findings and baseline series of a Prometheus textfile whose value is not 0."""
    wanted = ("controller_audit_findings{", "controller_audit_baseline_suppressed_findings{")
    return [line for line in lines if line.startswith(wanted) and line.rsplit(" ", 1)[-1] != "0"]


def walk(steps: Presenter, story: Story) -> None:
    """The whole story; raises :class:`auditor.demo.presenter.StepFailed` when a step fails."""
    names = story.names()
    search, payments = names["out_of_order"], names["rolled_back"]
    alert = Cut(head=8, tail=2, before=INFO_GROUP, groups=True)

    # Cron: the damage already known is accepted, so the nightly job alerts on tonight's only.
    steps.run("The database as it is: what damage does it hold? (most severe first)", "check", "--fail-on", "never",
              keep_as="check.txt", cut=Cut(head=14, tail=1, before=INFO_GROUP, groups=True))
    steps.run("Cron: accept the damage the team knows in a baseline, so the nightly job reports only new damage.",
              "baseline", "create", "known.json", keep_as="baseline.txt")
    steps.say(f"Tonight a controller replica whose clock runs 10 minutes behind handles a push of {search!r}.")
    write_tonights_damage(story)
    steps.run("The nightly job: check against the baseline into node-exporter's textfile (exit 2: critical).",
              "check", "--baseline", "known.json", "--format", "prometheus", "--label", "database=demo",
              "-o", TEXTFILE, keep_as="check-cron.txt", expect=(2,))
    steps.show_file(TEXTFILE, f"{TEXTFILE}, the series that are not 0", nonzero_series)
    steps.run("The alert, as a person reads it: tonight's damage only, the accepted findings suppressed.",
              "check", "--baseline", "known.json", keep_as="check-alert.txt", expect=(2,), cut=alert)

    # On call: why, and what a careless delete would take with it.
    steps.run(f"3 a.m., paged: every config:set, push and rollback of {search!r} fails on a duplicate key. Why?",
              "explain", search, keep_as=f"explain-{search}.txt", cut=Cut(head=13))
    steps.run(f"{payments!r} was rolled back, so its live v5 shares v3's config. What would deleting that take along?",
              "blast-radius", "config", names["shared_config"], keep_as="blast-radius.txt", cut=Cut(head=9))

    # Repair: plan, review, apply; undo; apply again.
    repairs = [arg for repair in REPAIRS for arg in ("--repair", repair)]
    steps.run("Plan every repair (release-order only if asked: it can change the live release); writes nothing.",
              "plan", "-o", PLAN, *repairs, keep_as="plan.txt")
    steps.run("Review the plan: per app, each change and why.", "plan", "show", PLAN, keep_as="plan-show.txt",
              cut=Cut(head=4, tail=3))
    steps.run("Or as a SQL script to review and run with psql yourself.", "plan", "sql", PLAN, "-o", "repair.sql",
              keep_as="plan-sql.txt")
    steps.show_file("repair.sql", "repair.sql, its first lines", lambda lines: lines[:4])
    steps.run("Apply: one transaction that checks, applies, verifies, then commits; the undo file is written first.",
              "apply", PLAN, "--yes", keep_as="apply.txt")
    steps.echo(click.style(f"(the undo file: {steps.workdir / UNDO})", dim=True))
    steps.run("Audit again: nothing left, not even an info finding.", "check", "--fail-on", "info",
              keep_as="check-repaired.txt")
    steps.run("Changed your mind? The undo file takes the repair back, row for row.", "undo", UNDO, "--yes",
              keep_as="undo.txt")
    steps.run("The nightly job's check again: tonight's damage is back, and the accepted damage with it.",
              "check", "--baseline", "known.json", keep_as="check-undone.txt", expect=(2,), cut=alert)
    steps.run("The reviewed plan still holds: apply it again (a second undo file; the first is kept).",
              "apply", PLAN, "--yes", keep_as="apply-again.txt")
    steps.run("And the database ends clean.", "check", "--fail-on", "info", keep_as="check-end.txt")


def summary(steps: Presenter, program: str, keep: bool) -> None:
    """What the walkthrough showed, and where to read on (``program``: how the user runs the tool;
    with ``keep`` the kept database is described next)."""
    echo = steps.echo
    echo("")
    echo(click.style("Demo finished. Shown: check; cron's baseline, Prometheus textfile and alert; explain and "
                     "blast-radius;", fg="green", bold=True))
    echo(click.style("plan, plan show, plan sql; apply, undo, apply again: the database ends clean.", fg="green",
                     bold=True))
    echo(f"Its files (baseline, textfile, plan, SQL script, undo files, whole outputs): {steps.workdir}")
    echo("Read on in README.md: " + ", ".join(f'"{section}"' for section in README_SECTIONS[:2]) + ",")
    echo("  " + ", ".join(f'"{section}"' for section in README_SECTIONS[2:]) + "; every option: docs/cli.md.")
    if not keep:
        echo(f"Practise on a damaged database of your own: {program} demo --keep")
