"""What ``apply`` and ``undo`` share: asking, warning, and saying what a committed outcome needs known."""

from __future__ import annotations

import click

from auditor.cli.reader_gone import drop_stdout
from auditor.core.errors import EXIT_CRITICAL, EXIT_OK, PlanRefused
from auditor.core.settings import Settings
from repairs.actions import ActionTable
from repairs.executor import Outcome


def confirm(question: str) -> None:
    """Ask ``question``; :class:`PlanRefused` (exit 4, nothing changed) unless the answer is yes."""
    try:
        agreed = click.confirm(question, default=False)
    except click.Abort:  # stdin closed (or Ctrl-C): end the "[y/N]: " line so the next one does not run on
        click.echo()
        agreed = False
    if not agreed:
        raise PlanRefused("not confirmed; nothing was changed (use --yes to skip the question)", kind="declined")


def warn(text: str) -> None:
    """A line on stderr that stays (whatever the output is)."""
    click.echo(f"controller-audit: {text}", err=True)


def after_commit(outcome: Outcome) -> None:
    """Say on stderr what a committed outcome needs known (interrupted, answer lost, not yet replicated)."""
    if outcome.interrupted:
        warn(f"interrupted during COMMIT, but it committed ({outcome.how})")
    elif not outcome.how.startswith("the server answered"):
        warn(f"the answer to COMMIT was lost; found out: it committed ({outcome.how})")
    if outcome.note:
        warn(f"warning: {outcome.note}")


def unreported(outcome: Outcome, exc: OSError, what: str, detailed_exitcode: bool,
               undo_path: object = None) -> int | None:
    """An ``apply`` / ``undo`` whose report could not be written (standard output on a full disk):
    when it committed (or found everything done already), say so on stderr, with its undo file,
    and return its exit code; else None (the error stands: nothing was changed)."""
    if not (outcome.committed or outcome.already):
        return None
    drop_stdout()
    reason = f"its report could not be written ({exc.strerror or exc})"
    if outcome.already:
        done = "applied" if what == "repair" else "undone"
        warn(f"already {done}: nothing was changed; {reason}")
        return EXIT_OK
    kept = f"; undo file: {undo_path}" if undo_path is not None else ""
    warn(f"the {what} is committed, but {reason}{kept}")
    after_commit(outcome)
    return EXIT_CRITICAL if detailed_exitcode else EXIT_OK


def refuse_outside_allow_list(settings: Settings, names: list[str | None], what: str) -> None:
    """Refuse (exit 4, nothing changed) a plan or undo file that changes apps outside the config
    file's ``apps`` allow-list."""
    outside = settings.outside_allowed(names)
    if outside:
        raise PlanRefused(f"the {what} changes app(s) {', '.join(outside)}, outside the apps allow-list of "
                          f"{settings.config.source}; nothing was changed", kind="outside the allow-list")


def not_skipped(actions: ActionTable, outcome: Outcome, already: str, unit: str) -> ActionTable:
    """Say which apps were skipped as ``already`` done, and return the actions of the others."""
    for skipped in outcome.skipped:
        click.echo(f"app {skipped.app_name or skipped.app_uuid}: {already} ({skipped.actions} {unit}(s)), skipped")
    done = {s.app_uuid for s in outcome.skipped}
    return actions.only_apps(actions.app_uuids() - done) if done else actions
