"""``controller-audit apply PLAN``: a plan in one verified transaction, an undo file written first.

Every run ends as one of three outcomes, each said in so many words: **committed** (the undo
file is kept and named), **rolled back** (nothing was changed: refused, aborted, interrupted
before COMMIT), or **outcome unknown** (exit 6: the answer to COMMIT was lost and could not be
recovered; the undo file is kept; running the same command again says "already applied" if it
did commit).
"""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from auditor.cli import params
from auditor.cli.commands._repair import after_commit, confirm, not_skipped, refuse_outside_allow_list, unreported, warn
from auditor.core.errors import EXIT_CRITICAL, EXIT_OK, OutcomeUnknown, RepairInterrupted, interrupt_name
from auditor.core.settings import Settings
from repairs.executor import Outcome
from repairs.model import Invariants
from repairs.planfile import Plan


@click.command("apply")
@params.file_argument("plan_file", "PLAN")
@params.settings(*params.CONNECTS, "commit_timeout")
@params.YES
@params.REHEARSE
@params.detailed_exitcode("Exit 2 when changes were committed, 0 when everything was already in effect.")
@params.UNDO_FILE
def apply(settings: Settings, plan_file: str, yes: bool, rehearse: bool, detailed_exitcode: bool,
          undo_file: str | None) -> int:
    """Apply a plan in one verified transaction, writing an undo file before COMMIT.

    Exit status: 0 applied, rehearsed, or already applied (with --detailed-exitcode: 2 applied
    now, 0 already in effect); 3 bad input or cannot connect; 4 refused, nothing changed (edited,
    foreign action, stale, other database, newer format, read-only server, missing privileges,
    undo file exists, declined); 5 aborted and rolled back (lock conflict, invariant broken,
    timeout); 6 outcome unknown (the undo file is kept: run apply again); 130 interrupted before
    COMMIT, rolled back.
    """
    from auditor.core.collector import gc_paused

    with gc_paused():  # a plan's rows live until the end: full collections would rescan them again and again
        return _apply(settings, plan_file, yes, rehearse, detailed_exitcode, undo_file)


def _apply(settings: Settings, plan_file: str, yes: bool, rehearse: bool, detailed_exitcode: bool,
           undo_file: str | None) -> int:
    from repairs.executor import RepairSession
    from repairs.planfile import load_plan
    from repairs.progress import StepLine
    from repairs.summary import show
    from repairs.undofile import UndoRecorder, default_undo_path, reserve

    try:
        plan = load_plan(plan_file)
    except KeyboardInterrupt:
        raise RepairInterrupted(f"{interrupt_name()} before the repair started: nothing was changed") from None
    if plan.empty:
        click.echo(f"plan {plan_file} is empty: nothing to apply.")
        return EXIT_OK
    refuse_outside_allow_list(settings, [name for _, name in plan.actions.apps], "plan")
    target = settings.target
    steps = StepLine("apply")
    undo_path: Path | None = None
    recorder: UndoRecorder | None = None
    keep_undo = False
    outcome = None
    invariants = plan.checked_invariants()  # derived from every action: once (the report reads them too)
    try:
        if not rehearse:
            wanted = Path(undo_file) if undo_file else default_undo_path(plan_file)
            undo_path = reserve(wanted, fresh=undo_file is None)
        session = RepairSession(settings, plan.identity, what="plan", columns=plan.columns)
        try:
            if not yes and not rehearse:
                click.echo(show(plan, plan_file))
                confirm(f"Apply these {len(plan.actions)} action(s) to {target.describe()}?")
            if undo_path is not None:
                columns = {t: list(session.generation.columns[t]) for t in plan.columns}
                recorder = UndoRecorder(undo_path, plan.actions, session.identity, plan.checksum, columns)
            try:
                outcome = session.run(plan.actions, invariants, rehearse=rehearse,
                                      grace_seconds=plan.grace_seconds, recorder=recorder, progress=steps,
                                      notify=steps.message)
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
            warn(f"interrupted after COMMIT: the repair is committed; undo file: {undo_path}")
            return EXIT_OK
        if recorder is not None and recorder.written:  # in the few instructions around COMMIT
            keep_undo = True
            raise OutcomeUnknown(f"{interrupt_name()} around COMMIT; the undo file {undo_path} is kept; find out by running "
                                 f"`controller-audit apply {shlex.quote(plan_file)}` again") from None
        raise RepairInterrupted(f"{interrupt_name()} before COMMIT: nothing was changed") from None
    finally:
        steps.close()
        if undo_path is not None and not keep_undo:
            if recorder is not None:
                recorder.discard()
            else:
                undo_path.unlink(missing_ok=True)
    try:
        return _report_apply(plan, invariants, plan_file, target.describe(), outcome, rehearse, undo_file,
                             undo_path, detailed_exitcode)
    except KeyboardInterrupt:
        if not outcome.committed:
            raise RepairInterrupted(f"{interrupt_name()} after the rollback: nothing was changed") from None
        warn(f"interrupted after COMMIT: the repair is committed; undo file: {undo_path}")
        return EXIT_OK
    except OSError as exc:  # standard output cannot be written: the outcome still has to be said
        code = None if rehearse else unreported(outcome, exc, "repair", detailed_exitcode, undo_path)
        if code is None:
            raise
        return code


def _report_apply(plan: Plan, invariants: Invariants, plan_file: str, where: str, outcome: Outcome, rehearse: bool,
                  undo_file: str | None, undo_path: Path | None, detailed_exitcode: bool) -> int:
    """The lines that say what ``apply`` did."""
    from repairs.summary import changes_text
    from repairs.undofile import default_undo_path

    if outcome.already:
        verb = "rehearsal of" if rehearse else "already applied:"
        click.echo(f"{verb} {plan_file}: every action is in effect on {where} already; nothing was changed.")
        return EXIT_OK
    applied = not_skipped(plan.actions, outcome, "already applied", "action")
    changes = changes_text(applied.expected_changes())
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
        return EXIT_OK
    fresh = "" if undo_file or undo_path == default_undo_path(plan_file) else \
        f" ({default_undo_path(plan_file)} exists, kept)"
    click.echo(f"applied {plan_file} to {where}: {outcome.actions} action(s): {changes}; "
               f"undo file: {undo_path}{fresh}")
    click.echo(checks)
    click.echo(f"to take it back: controller-audit undo {undo_path}")
    after_commit(outcome)
    return EXIT_CRITICAL if detailed_exitcode else EXIT_OK
