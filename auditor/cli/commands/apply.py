"""``controller-audit apply PLAN``, ``controller-audit undo UNDO_FILE`` and ``undo sql UNDO_FILE``.

Every run ends as one of three outcomes, each said in so many words: **committed** (the undo
file is kept and named), **rolled back** (nothing was changed: refused, aborted, interrupted
before COMMIT), or **outcome unknown** (exit 6: the answer to COMMIT was lost and could not be
recovered; the undo file is kept; running the same command again says "already applied" /
"already undone" if it did commit).
"""

from __future__ import annotations

import math
import shlex
import sys
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import Any

import click

from auditor.cli.params import target_options
from auditor.core.connection import resolve_target
from auditor.core.errors import EXIT_CRITICAL, EXIT_OK, OutcomeUnknown, PlanRefused, RepairInterrupted
from repairs.commit import DEFAULT_COMMIT_TIMEOUT


def register(cli: click.Group) -> None:
    """Add ``apply`` and ``undo`` (with ``undo sql``)."""
    cli.add_command(apply)
    cli.add_command(undo)


class _Seconds(click.ParamType):
    """A finite, positive number of seconds."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds) or seconds <= 0 or seconds > 86400:
            self.fail(f"{value!r} is not a number of seconds between 0 and 86400", param, ctx)
        return seconds


def _repair_options(func: Callable) -> Callable:
    """``--yes``, ``--rehearse``, ``--commit-timeout``, ``--detailed-exitcode``."""
    func = click.option("--detailed-exitcode", is_flag=True,
                        help="Exit 2 when changes were committed, 0 when everything was already in effect.")(func)
    func = click.option("--commit-timeout", type=_Seconds(), default=DEFAULT_COMMIT_TIMEOUT, show_default=True,
                        metavar="SECONDS",
                        help="How long to wait for COMMIT's answer (e.g. from a synchronous standby) before "
                             "giving the wait up and finding out what happened.")(func)
    func = click.option("--rehearse", is_flag=True,
                        help="Do everything, verify every invariant, then roll back (asks nothing).")(func)
    func = click.option("--yes", is_flag=True, help="Do not ask for confirmation.")(func)
    return func


def _confirm(question: str) -> None:
    try:
        agreed = click.confirm(question, default=False)
    except click.Abort:
        agreed = False
    if not agreed:
        raise PlanRefused("not confirmed; nothing was changed (use --yes to skip the question)", kind="declined")


def _warn(text: str) -> None:
    click.echo(f"controller-audit: {text}", err=True)


@click.command("apply")
@click.argument("plan_file", metavar="PLAN", type=click.Path(dir_okay=False))
@target_options
@_repair_options
@click.option("--undo-file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Where to write the undo file; refused if it exists [default: PLAN.undo.json, or "
                   "PLAN.undo-2.json ... when that exists].")
@click.pass_context
def apply(ctx: click.Context, plan_file: str, dsn: str | None, statement_timeout: str, lock_timeout: str, yes: bool,
          rehearse: bool, commit_timeout: float, detailed_exitcode: bool, undo_file: str | None) -> None:
    """Apply a plan in one verified transaction, writing an undo file before COMMIT.

    Exit status: 0 applied, rehearsed, or already applied (with --detailed-exitcode: 2 applied
    now, 0 already in effect); 3 bad input or cannot connect; 4 refused, nothing changed (edited,
    foreign action, stale, other database, newer format, read-only server, missing privileges,
    undo file exists, declined); 5 aborted and rolled back (lock conflict, invariant broken,
    timeout); 6 outcome unknown (the undo file is kept: run apply again); 130 interrupted before
    COMMIT, rolled back.
    """
    from repairs.executor import RepairSession
    from repairs.planfile import load_plan
    from repairs.progress import StepLine
    from repairs.summary import show
    from repairs.undofile import UndoRecorder, default_undo_path, reserve

    try:
        plan = load_plan(plan_file)
    except KeyboardInterrupt:
        raise RepairInterrupted("Ctrl-C before the repair started: nothing was changed") from None
    if plan.empty:
        click.echo(f"plan {plan_file} is empty: nothing to apply.")
        return
    target = resolve_target(dsn)
    steps = StepLine("apply")
    undo_path: Path | None = None
    recorder: UndoRecorder | None = None
    keep_undo = False
    outcome = None
    try:
        if not rehearse:
            wanted = Path(undo_file) if undo_file else default_undo_path(plan_file)
            undo_path = reserve(wanted, fresh=undo_file is None)
        session = RepairSession(target, plan.identity, what="plan", statement_timeout=statement_timeout,
                                lock_timeout=lock_timeout, columns=plan.columns)
        try:
            if not yes and not rehearse:
                click.echo(show(plan, plan_file))
                _confirm(f"Apply these {len(plan.actions)} action(s) to {target.describe()}?")
            if undo_path is not None:
                columns = {t: list(session.generation.columns[t]) for t in plan.columns}
                recorder = UndoRecorder(undo_path, plan.actions, session.identity, plan.checksum, columns)
            try:
                outcome = session.run(plan.actions, plan.checked_invariants(), rehearse=rehearse,
                                      grace_seconds=plan.grace_seconds, recorder=recorder, progress=steps,
                                      commit_timeout=commit_timeout, notify=steps.message)
            except OutcomeUnknown as exc:
                keep_undo = True
                raise OutcomeUnknown(
                    f"{exc}; the undo file {undo_path} is kept; find out by running `controller-audit apply "
                    f"{shlex.quote(plan_file)}` again: it says 'already applied' if the repair committed, else it "
                    "applies it") from None
            keep_undo = outcome.committed
        finally:
            session.close()
    except KeyboardInterrupt:
        if outcome is not None and outcome.committed:
            _warn(f"interrupted after COMMIT: the repair is committed; undo file: {undo_path}")
            ctx.exit(EXIT_OK)
        if recorder is not None and recorder.written:  # in the few instructions around COMMIT
            keep_undo = True
            raise OutcomeUnknown(f"Ctrl-C around COMMIT; the undo file {undo_path} is kept; find out by running "
                                 f"`controller-audit apply {shlex.quote(plan_file)}` again") from None
        raise RepairInterrupted("Ctrl-C before COMMIT: nothing was changed") from None
    finally:
        steps.close()
        if undo_path is not None and not keep_undo:
            if recorder is not None:
                recorder.discard()
            else:
                undo_path.unlink(missing_ok=True)
    try:
        _report_apply(ctx, plan, plan_file, target.describe(), outcome, rehearse, undo_file, undo_path,
                      detailed_exitcode)
    except KeyboardInterrupt:
        if not outcome.committed:
            raise RepairInterrupted("Ctrl-C after the rollback: nothing was changed") from None
        _warn(f"interrupted after COMMIT: the repair is committed; undo file: {undo_path}")
        ctx.exit(EXIT_OK)


def _report_apply(ctx: click.Context, plan: Any, plan_file: str, where: str, outcome: Any, rehearse: bool,
                  undo_file: str | None, undo_path: Path | None, detailed_exitcode: bool) -> None:
    """The lines that say what ``apply`` did."""
    from repairs.summary import changes_text
    from repairs.undofile import default_undo_path

    if outcome.already:
        verb = "rehearsal of" if rehearse else "already applied:"
        click.echo(f"{verb} {plan_file}: every action is in effect on {where} already; nothing was changed.")
        ctx.exit(EXIT_OK)
    for skipped in outcome.skipped:
        click.echo(f"app {skipped.app_name or skipped.app_uuid}: already applied ({skipped.actions} action(s)), "
                   "skipped")
    done = {s.app_uuid for s in outcome.skipped}
    applied = plan.actions.only_apps(plan.actions.app_uuids() - done) if done else plan.actions
    changes = changes_text(applied.expected_changes())
    invariants = plan.checked_invariants()
    checks = (f"invariants verified: {outcome.releases_checked} release(s) unchanged but for planned pointers, "
              f"their config/build content identical, row counts as planned")
    touched = applied.app_uuids()
    extra = []
    unshared = touched & set(invariants.unshared)
    if unshared:
        extra.append(f"no sharing left in {len(unshared)} app(s)")
    latest = touched & (set(invariants.latest_config) | set(invariants.latest_build))
    if latest:
        extra.append(f"latest() is the live release's in {len(latest)} app(s)")
    ordered = touched & set(invariants.release_order)
    if ordered:
        extra.append(f"the highest version is the newest release, and only the planned release dates changed, "
                     f"in {len(ordered)} app(s)")
    if extra:
        checks += "; " + "; ".join(extra)
    if rehearse:
        click.echo(f"rehearsal of {plan_file}: {outcome.actions} action(s) would change: {changes}")
        click.echo(checks)
        click.echo("rolled back: nothing was changed.")
        return
    fresh = "" if undo_file or undo_path == default_undo_path(plan_file) else \
        f" ({default_undo_path(plan_file)} exists, kept)"
    click.echo(f"applied {plan_file} to {where}: {outcome.actions} action(s): {changes}; "
               f"undo file: {undo_path}{fresh}")
    click.echo(checks)
    click.echo(f"to take it back: controller-audit undo {undo_path}")
    _after_commit(outcome)
    ctx.exit(EXIT_CRITICAL if detailed_exitcode else EXIT_OK)


def _after_commit(outcome: Any) -> None:
    """Say on stderr what a committed outcome needs known (interrupted, answer lost, not yet replicated)."""
    if outcome.interrupted:
        _warn(f"interrupted during COMMIT, but it committed ({outcome.how})")
    elif not outcome.how.startswith("the server answered"):
        _warn(f"the answer to COMMIT was lost; found out: it committed ({outcome.how})")
    if outcome.note:
        _warn(f"warning: {outcome.note}")


class _UndoGroup(click.Group):
    """``undo UNDO_FILE ...`` runs the undo; ``undo sql UNDO_FILE`` renders it as a script."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = ["run", *args]
        return super().parse_args(ctx, args)


class _DefaultCommand(click.Command):
    """The command ``undo UNDO_FILE`` runs (its usage line leaves out its own name)."""

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        path = ctx.parent.command_path if ctx.parent is not None else ctx.command_path
        formatter.write_usage(path, " ".join(self.collect_usage_pieces(ctx)))


@click.group("undo", cls=_UndoGroup)
def undo() -> None:
    """Take an applied plan back from the undo file apply wrote.

    \b
    controller-audit undo UNDO_FILE [--yes] [--rehearse] [--app NAME]...
    controller-audit undo sql UNDO_FILE [-o FILE]     (the way back as a psql script)
    """


@undo.command("run", cls=_DefaultCommand, hidden=True)
@click.argument("undo_file", metavar="UNDO_FILE", type=click.Path(dir_okay=False))
@target_options
@_repair_options
@click.option("--app", "apps", multiple=True, metavar="NAME",
              help="Undo only this app's changes (repeatable); the rest can be undone later.")
@click.pass_context
def undo_run(ctx: click.Context, undo_file: str, dsn: str | None, statement_timeout: str, lock_timeout: str,
             yes: bool, rehearse: bool, commit_timeout: float, detailed_exitcode: bool, apps: tuple[str, ...]) -> None:
    """Take an applied plan back (same checks as apply; only what it restores is compared).

    Exit status as for apply; "already undone" is exit 0.
    """
    from repairs.executor import CannotUndo, RepairSession
    from repairs.model import Invariants
    from repairs.progress import StepLine
    from repairs.summary import action_line, changes_text
    from repairs.undofile import load_undo

    try:
        doc = load_undo(undo_file)
    except KeyboardInterrupt:
        raise RepairInterrupted("Ctrl-C before the undo started: nothing was changed") from None
    actions = doc.actions.only_apps(doc.app_uuids(apps)) if apps else doc.actions
    if not actions:
        click.echo(f"{undo_file} records no changes: nothing to undo.")
        return
    target = resolve_target(dsn)
    scope = "".join(f" --app {shlex.quote(a)}" for a in apps)
    again = f"`controller-audit undo {shlex.quote(undo_file)}{scope}`"
    steps = StepLine("undo")
    outcome = None
    started = False
    try:
        session = RepairSession(target, doc.identity, what="undo file", statement_timeout=statement_timeout,
                                lock_timeout=lock_timeout, columns=doc.columns)
        try:
            if not yes and not rehearse:
                for action in islice(actions, 40):
                    click.echo(action_line(action))
                if len(actions) > 40:
                    click.echo(f"  ... and {len(actions) - 40} more")
                click.echo(f"rows: {changes_text(actions.expected_changes())}")
                _confirm(f"Undo these {len(actions)} change(s) on {target.describe()}?")
            started = True
            outcome = session.run(actions, Invariants(), rehearse=rehearse, progress=steps,
                                  commit_timeout=commit_timeout, notify=steps.message)
        except CannotUndo as exc:
            hint = ""
            if exc.undoable_apps:
                hint = ("; the other apps can still be undone: controller-audit undo " + shlex.quote(undo_file)
                        + "".join(f" --app {shlex.quote(a)}" for a in exc.undoable_apps))
            raise CannotUndo(f"{exc}{hint}", exc.undoable_apps) from None
        except OutcomeUnknown as exc:
            raise OutcomeUnknown(f"{exc}; find out by running {again} again: it says 'already undone' if the undo "
                                 "committed, else it undoes") from None
        finally:
            session.close()
    except KeyboardInterrupt:
        if outcome is not None and outcome.committed:
            _warn("interrupted after COMMIT: the undo is committed")
            ctx.exit(EXIT_OK)
        if started and outcome is None and not rehearse:  # in the few instructions around COMMIT
            raise OutcomeUnknown(f"Ctrl-C around COMMIT; find out by running {again} again") from None
        raise RepairInterrupted("Ctrl-C before COMMIT: nothing was changed") from None
    finally:
        steps.close()
    try:
        _report_undo(ctx, actions, undo_file + scope, target.describe(), outcome, rehearse, detailed_exitcode)
    except KeyboardInterrupt:
        if not outcome.committed:
            raise RepairInterrupted("Ctrl-C after the rollback: nothing was changed") from None
        _warn("interrupted after COMMIT: the undo is committed")
        ctx.exit(EXIT_OK)


def _report_undo(ctx: click.Context, actions: Any, what_file: str, where: str, outcome: Any, rehearse: bool,
                 detailed_exitcode: bool) -> None:
    """The lines that say what ``undo`` did."""
    from repairs.summary import changes_text

    if outcome.already:
        verb = "rehearsal of" if rehearse else "already undone:"
        click.echo(f"{verb} {what_file}: every change is taken back already on {where}; nothing was changed.")
        ctx.exit(EXIT_OK)
    for skipped in outcome.skipped:
        click.echo(f"app {skipped.app_name or skipped.app_uuid}: already undone ({skipped.actions} change(s)), "
                   "skipped")
    done = {s.app_uuid for s in outcome.skipped}
    undone = actions.only_apps(actions.app_uuids() - done) if done else actions
    changes = changes_text(undone.expected_changes())
    what = (f"{outcome.actions} change(s) of {what_file}: {changes}; every release points at its original "
            f"row again, re-dated rows have their old created, pruned rows are back as recorded; "
            f"{outcome.releases_checked} release(s) checked")
    if rehearse:
        click.echo(f"rehearsed undo (rolled back, nothing changed): {what}")
        return
    click.echo(f"undone on {where}: {what}")
    _after_commit(outcome)
    ctx.exit(EXIT_CRITICAL if detailed_exitcode else EXIT_OK)


@undo.command("sql")
@click.argument("undo_file", metavar="UNDO_FILE", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write the script to FILE (atomically) instead of stdout.")
@click.option("--lock-timeout", default="5s", show_default=True,
              help="SET LOCAL lock_timeout of the script's transaction.")
@click.option("--app", "apps", multiple=True, metavar="NAME", help="Only this app's changes (repeatable).")
@click.option("--dsn", metavar="DSN", default=None,
              help="Undo files written before format version 3 do not record the columns: read them from "
                   "this database (read-only) [default: DATABASE_URL, DEIS_DATABASE_*, PG*].")
def undo_sql(undo_file: str, output: str | None, lock_timeout: str, apps: tuple[str, ...], dsn: str | None) -> None:
    """Write the way back as a script for `psql -v ON_ERROR_STOP=1 -f` (one transaction, checked)."""
    from auditor.core.fileio import atomic_write
    from repairs.script import ScriptSource, script
    from repairs.undofile import load_undo

    doc = load_undo(undo_file)
    generation = doc.generation() or _columns_from_database(dsn, doc)
    actions = doc.actions.only_apps(doc.app_uuids(apps)) if apps else doc.actions
    source = ScriptSource.of_undo(doc, generation)
    source.actions = actions
    text = script(source, lock_timeout)
    if output is None:
        sys.stdout.write(text)
    else:
        atomic_write(output, text, mode=0o600)
        click.echo(f"script {output}: run it with  psql -v ON_ERROR_STOP=1 -f {output}", err=True)


def _columns_from_database(dsn: str | None, doc: Any) -> Any:
    """The generation (with columns) of the database an older undo file belongs to."""
    from auditor.core.connection import audit_session
    from auditor.core.detect import detect
    from repairs.identity import identify

    target = resolve_target(dsn)
    with audit_session(target) as conn:
        generation = detect(conn)
        doc.identity.check_same(identify(conn, generation, target), "undo file")
    return generation
