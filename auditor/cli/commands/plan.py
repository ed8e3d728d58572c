"""``controller-audit plan``: make a repair plan; ``plan show`` and ``plan sql`` review it."""

from __future__ import annotations

import sys

import click

from auditor.audit.runner import DEFAULT_GRACE_SECONDS
from auditor.cli.commands._audit import skew_option
from auditor.cli.params import DURATION, GRACE, target_options
from auditor.core.connection import resolve_target
from auditor.core.errors import EXIT_CRITICAL, EXIT_OK
from auditor.core.fileio import atomic_write, check_output, is_stdout
from repairs.model import REPAIRS


def register(cli: click.Group) -> None:
    """Add ``plan`` (with ``show`` and ``sql``)."""
    cli.add_command(plan)


@click.group("plan", invoke_without_command=True)
@target_options
@click.option("--app", "apps", multiple=True, metavar="NAME", help="Only this app (repeatable).")
@click.option("--repair", "repairs", multiple=True, type=click.Choice(REPAIRS),
              help="Only this repair (repeatable) [default: prune-orphans, unshare, restore-latest, in that "
                   "order; release-order only when asked, since it can change which release is live].")
@click.option("--grace", type=GRACE, default=DEFAULT_GRACE_SECONDS, show_default=True, metavar="SECONDS",
              help="Rows younger than this are a deploy in flight: never pruned, never re-dated around.")
@skew_option
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, metavar="PLAN",
              help="Write the plan (JSON) to PLAN.")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when there is nothing to repair, 2 when the plan has actions.")
@click.pass_context
def plan(ctx: click.Context, dsn: str | None, statement_timeout: str, lock_timeout: str, apps: tuple[str, ...],
         repairs: tuple[str, ...], grace: float, skew: float, output: str | None, detailed_exitcode: bool) -> None:
    """Plan repairs into a file: read-only, writes nothing to the database.

    Review it with `plan show PLAN` or `plan sql PLAN`, then `apply PLAN`.
    """
    if ctx.invoked_subcommand is not None:
        return
    if output is None:
        raise click.UsageError("-o PLAN is required: where to write the plan")
    from repairs.planner import make_plan

    check_output(output)
    made = make_plan(resolve_target(dsn), apps=apps, repairs=repairs, grace_seconds=grace, skew_seconds=skew,
                     statement_timeout=statement_timeout, lock_timeout=lock_timeout)
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
    ctx.exit(EXIT_CRITICAL if detailed_exitcode and not made.empty else EXIT_OK)


@plan.command("show")
@click.argument("plan_file", metavar="PLAN", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(("text", "html")), default="text", show_default=True,
              help="text (reads only the file), or html: per app the picture before and after the repair "
                   "(reads the database now, read-only; it must be the plan's database).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write to FILE (atomically) instead of stdout.")
@target_options
def show(plan_file: str, fmt: str, output: str | None, dsn: str | None, statement_timeout: str,
         lock_timeout: str) -> None:
    """Summarise a plan: per app what changes and why, counts, totals (html: with pictures)."""
    from repairs.planfile import load_plan
    from repairs.summary import show as render_summary

    loaded = load_plan(plan_file)
    if fmt == "text":
        text = render_summary(loaded, plan_file) + "\n"
    else:
        from auditor.reports.picture.plan_show import plan_show_html

        text = plan_show_html(loaded, plan_file, resolve_target(dsn), statement_timeout, lock_timeout)
    if output is None:
        click.echo(text, nl=False)
    else:
        atomic_write(output, text, mode=0o600)  # the review quotes data, like the plan itself


@plan.command("sql")
@click.argument("plan_file", metavar="PLAN", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write the script to FILE (atomically) instead of stdout.")
@click.option("--lock-timeout", type=DURATION, default="5s", show_default=True,
              help="SET LOCAL lock_timeout of the script's transaction.")
def sql_script(plan_file: str, output: str | None, lock_timeout: str) -> None:
    """Write the plan as a script for `psql -v ON_ERROR_STOP=1 -f` (one transaction, checked)."""
    from repairs.planfile import load_plan
    from repairs.script import script

    text = script(load_plan(plan_file), lock_timeout)
    if output is None:
        sys.stdout.write(text)
    else:
        atomic_write(output, text, mode=0o600)
        click.echo(f"script {output}: run it with  psql -v ON_ERROR_STOP=1 -f {output}", err=True)
