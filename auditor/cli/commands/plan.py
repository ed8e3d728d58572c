"""``controller-audit plan``: make a repair plan; ``plan show`` and ``plan sql`` review it."""

from __future__ import annotations

import click

from auditor.cli import params
from auditor.cli.default_group import DefaultCommand, DefaultGroup
from auditor.cli.script_output import write_script
from auditor.core.errors import EXIT_CRITICAL, EXIT_OK
from auditor.core.fileio import atomic_write, check_output, is_stdout
from auditor.core.settings import Settings


@click.group("plan", cls=DefaultGroup)
def plan() -> None:
    """Plan repairs into a file: read-only, writes nothing to the database.

    \b
    controller-audit plan -o PLAN [--app NAME]... [--repair REPAIR]...   (read-only: writes only PLAN)
    controller-audit plan show PLAN [--format html]                      (what changes and why)
    controller-audit plan sql PLAN [-o FILE]                             (the plan as a psql script)
    """


@plan.command("run", cls=DefaultCommand, hidden=True)
@params.settings(*params.CONNECTS, "apps", "grace_seconds", "skew_seconds",
                 help={"grace_seconds": "Rows younger than this are a deploy in flight: never pruned, never "
                                        "re-dated around."})
@params.REPAIR
@params.output("Write the plan (JSON) to PLAN.", metavar="PLAN")
@params.detailed_exitcode("Exit 0 when there is nothing to repair, 2 when the plan has actions.")
def make(settings: Settings, repairs: tuple[str, ...], output: str | None, detailed_exitcode: bool) -> int:
    """Plan repairs into a file: read-only, writes nothing to the database.

    Review it with `plan show PLAN` or `plan sql PLAN`, then `apply PLAN`.
    """
    if output is None:
        raise click.UsageError("-o PLAN is required: where to write the plan")
    from repairs.planfile import FORMAT as PLAN_FORMAT
    from repairs.planner import make_plan

    check_output(output, replaces=PLAN_FORMAT)  # a plan replaces an older plan, never an undo file
    made = make_plan(settings, repairs=repairs)
    checksum = made.write(output)
    counts = made.actions.repair_counts()
    apps_touched = len(made.actions.app_uuids())
    detail = ", ".join(f"{r} {counts[r]}" for r in made.repairs)
    to_stderr = is_stdout(output)  # `-o -`: the plan is on stdout, the summary goes beside it
    click.echo(f"plan {output}: {len(made.actions)} action(s) in {apps_touched} app(s) ({detail}); "
               f"{len(made.refusals)} not repaired; {checksum}", err=to_stderr)
    if made.empty:
        click.echo("nothing to repair.", err=to_stderr)
    else:
        click.echo(f"review: controller-audit plan show {output}   then: controller-audit apply {output}",
                   err=to_stderr)
    return EXIT_CRITICAL if detailed_exitcode and not made.empty else EXIT_OK


@plan.command("show")
@params.file_argument("plan_file", "PLAN")
@params.choice("text", "html", default="text",
               help="text (reads only the file), or html: per app the picture before and after the repair "
                    "(reads the database now, read-only; it must be the plan's database).")
@params.output()
@params.settings(*params.CONNECTS)
def show(settings: Settings, plan_file: str, fmt: str, output: str | None) -> int:
    """Summarise a plan: per app what changes and why, counts, totals (html: with pictures)."""
    from repairs.planfile import load_plan
    from repairs.summary import show as render_summary

    loaded = load_plan(plan_file)
    if fmt == "text":
        text = render_summary(loaded, plan_file) + "\n"
    else:
        from auditor.reports.picture.plan_show import plan_show_html

        text = plan_show_html(loaded, plan_file, settings)
    if output is None:
        click.echo(text, nl=False)
    else:
        atomic_write(output, text, mode=0o600)  # the review quotes data, like the plan itself
    return EXIT_OK


@plan.command("sql")
@params.file_argument("plan_file", "PLAN")
@params.output("Write the script to FILE (atomically) instead of stdout.")
@params.settings("config", "lock_timeout",
                 help={"lock_timeout": "SET LOCAL lock_timeout of the script's transaction, with its unit (5s, 500ms)."})
def sql_script(settings: Settings, plan_file: str, output: str | None) -> int:
    """Write the plan as a script for `psql -v ON_ERROR_STOP=1 -f` (one transaction, checked)."""
    from repairs.planfile import load_plan
    from repairs.script import script

    text = script(load_plan(plan_file), settings.lock_timeout)
    write_script(text, output)
    return EXIT_OK
