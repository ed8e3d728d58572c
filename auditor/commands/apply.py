"""``controller-audit apply PLAN`` and ``controller-audit undo UNDO_FILE``."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import click

from auditor.connection import resolve_target
from auditor.errors import AuditorError, PlanRefused
from auditor.options import target_options


def register(cli: click.Group) -> None:
    """Add ``apply`` and ``undo``."""
    cli.add_command(apply)
    cli.add_command(undo)


def _confirm(question: str) -> None:
    try:
        agreed = click.confirm(question, default=False)
    except click.Abort:
        agreed = False
    if not agreed:
        raise PlanRefused("not confirmed; nothing was changed (use --yes to skip the question)", kind="declined")


@click.command("apply")
@click.argument("plan_file", metavar="PLAN", type=click.Path(dir_okay=False))
@target_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--rehearse", is_flag=True, help="Do everything, verify every invariant, then roll back.")
@click.option("--undo-file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Where to write the undo file [default: PLAN.undo.json].")
def apply(plan_file: str, dsn: str | None, statement_timeout: str, lock_timeout: str, yes: bool, rehearse: bool,
          undo_file: str | None) -> None:
    """Apply a plan in one verified transaction, writing an undo file before COMMIT.

    Exit status: 0 applied (or rehearsed), 3 bad input or cannot connect, 4 refused (edited,
    stale, other database, newer format, read-only server or role, declined), 5 aborted and
    rolled back (lock conflict, invariant broken).
    """
    from repairs.executor import RepairSession
    from repairs.planfile import load_plan
    from repairs.summary import changes_text, show
    from repairs.undofile import UndoRecorder

    plan = load_plan(plan_file)
    if plan.empty:
        click.echo(f"plan {plan_file} is empty: nothing to apply.")
        return
    undo_path = Path(undo_file) if undo_file else Path(f"{plan_file}.undo.json")
    target = resolve_target(dsn)
    session = RepairSession(target, plan.identity, what="plan", statement_timeout=statement_timeout,
                            lock_timeout=lock_timeout, columns=plan.columns)
    try:
        if not yes:
            click.echo(show(plan, plan_file))
            _confirm(f"Apply these {len(plan.actions)} action(s) to {target.describe()}?")

        recorder = None if rehearse else UndoRecorder(undo_path, plan.actions, session.identity, plan.checksum)
        try:
            outcome = session.run(plan.actions, plan.invariants, rehearse=rehearse, recorder=recorder)
        except AuditorError:
            if recorder is not None:
                recorder.discard()  # the transaction did not commit: there is nothing to undo
            raise
    finally:
        session.close()
    changes = changes_text(plan.actions.expected_changes())
    checks = (f"invariants verified: {outcome.releases_checked} release(s) unchanged but for planned pointers, "
              f"their config/build content identical, row counts as planned")
    extra = []
    if plan.invariants.unshared:
        extra.append(f"no sharing left in {len(plan.invariants.unshared)} app(s)")
    latest = len(set(plan.invariants.latest_config) | set(plan.invariants.latest_build))
    if latest:
        extra.append(f"latest() is the live release's in {latest} app(s)")
    if plan.invariants.release_order:
        extra.append(f"the highest version is the newest release, and only the planned release dates changed, "
                     f"in {len(plan.invariants.release_order)} app(s)")
    if extra:
        checks += "; " + "; ".join(extra)
    if rehearse:
        click.echo(f"rehearsal of {plan_file}: {outcome.actions} action(s) would change: {changes}")
        click.echo(checks)
        click.echo("rolled back: nothing was changed.")
        return
    click.echo(f"applied {plan_file} to {target.describe()}: {outcome.actions} action(s): {changes}")
    click.echo(checks)
    click.echo(f"undo file: {undo_path}  (to take it back: controller-audit undo {undo_path})")


@click.command("undo")
@click.argument("undo_file", metavar="UNDO_FILE", type=click.Path(dir_okay=False))
@target_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--rehearse", is_flag=True, help="Do everything, verify, then roll back.")
def undo(undo_file: str, dsn: str | None, statement_timeout: str, lock_timeout: str, yes: bool,
         rehearse: bool) -> None:
    """Take an applied plan back, from the undo file apply wrote (same checks as apply)."""
    from repairs.executor import RepairSession
    from repairs.model import Invariants
    from repairs.summary import action_line, changes_text
    from repairs.undofile import load_undo

    identity, actions, _ = load_undo(undo_file)
    if not actions:
        click.echo(f"{undo_file} records no changes: nothing to undo.")
        return
    target = resolve_target(dsn)
    session = RepairSession(target, identity, what="undo file", statement_timeout=statement_timeout,
                            lock_timeout=lock_timeout)
    changes = changes_text(actions.expected_changes())
    try:
        if not yes:
            for action in islice(actions, 40):
                click.echo(action_line(action))
            if len(actions) > 40:
                click.echo(f"  ... and {len(actions) - 40} more")
            click.echo(f"rows: {changes}")
            _confirm(f"Undo these {len(actions)} change(s) on {target.describe()}?")
        outcome = session.run(actions, Invariants(), rehearse=rehearse)
    finally:
        session.close()
    verb = "rehearsed undo (rolled back, nothing changed)" if rehearse else "undone"
    click.echo(f"{verb}: {outcome.actions} change(s) of {undo_file}: {changes}; every row is its recorded "
               f"pre-image again; {outcome.releases_checked} release(s) checked")
