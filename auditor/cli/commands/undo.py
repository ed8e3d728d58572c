"""``controller-audit undo UNDO_FILE`` and ``undo sql UNDO_FILE``: take an applied plan back.

The same three outcomes as ``apply`` (committed, rolled back, outcome unknown); "already undone"
is exit 0.
"""

from __future__ import annotations

import shlex
from itertools import islice

import click

from auditor.cli import params
from auditor.cli.commands._repair import after_commit, confirm, not_skipped, refuse_outside_allow_list, unreported, warn
from auditor.cli.default_group import DefaultCommand, DefaultGroup
from auditor.cli.script_output import write_script
from auditor.core.detect import Generation
from auditor.core.errors import EXIT_CRITICAL, EXIT_OK, OutcomeUnknown, RepairInterrupted, interrupt_name
from auditor.core.settings import Settings
from repairs.actions import ActionTable
from repairs.executor import Outcome
from repairs.undofile import UndoFile


@click.group("undo", cls=DefaultGroup)
def undo() -> None:
    """Take an applied plan back from the undo file apply wrote.

    \b
    controller-audit undo UNDO_FILE [--yes] [--rehearse] [--app NAME]...
    controller-audit undo sql UNDO_FILE [-o FILE]     (the way back as a psql script)
    """


@undo.command("run", cls=DefaultCommand, hidden=True)
@params.file_argument("undo_file", "UNDO_FILE")
@params.settings(*params.CONNECTS, "commit_timeout", "apps",
                 help={"apps": "Undo only this app's changes (repeatable); the rest can be undone later."})
@params.YES
@params.REHEARSE
@params.detailed_exitcode("Exit 2 when changes were committed, 0 when everything was already in effect.")
def undo_run(settings: Settings, undo_file: str, yes: bool, rehearse: bool, detailed_exitcode: bool) -> int:
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
        raise RepairInterrupted(f"{interrupt_name()} before the undo started: nothing was changed") from None
    apps = settings.apps
    actions = doc.actions.only_apps(doc.app_uuids(apps)) if apps else doc.actions
    if not actions:
        click.echo(f"{undo_file} records no changes: nothing to undo.")
        return EXIT_OK
    touched = actions.app_uuids()
    refuse_outside_allow_list(settings, [name for uuid, name in actions.apps if uuid in touched], "undo file")
    target = settings.target
    scope = "".join(f" --app {shlex.quote(a)}" for a in apps)
    again = f"`controller-audit undo {shlex.quote(undo_file)}{scope}`"
    steps = StepLine("undo")
    outcome = None
    started = False
    try:
        session = RepairSession(settings, doc.identity, what="undo file", columns=doc.columns)
        try:
            if not yes and not rehearse:
                for action in islice(actions, 40):
                    click.echo(action_line(action))
                if len(actions) > 40:
                    click.echo(f"  ... and {len(actions) - 40} more")
                click.echo(f"rows: {changes_text(actions.expected_changes())}")
                confirm(f"Undo these {len(actions)} change(s) on {target.describe()}?")
            started = True
            outcome = session.run(actions, Invariants(), rehearse=rehearse, progress=steps, notify=steps.message)
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
            warn("interrupted after COMMIT: the undo is committed")
            return EXIT_OK
        if started and outcome is None and not rehearse:  # in the few instructions around COMMIT
            raise OutcomeUnknown(f"{interrupt_name()} around COMMIT; find out by running {again} again") from None
        raise RepairInterrupted(f"{interrupt_name()} before COMMIT: nothing was changed") from None
    finally:
        steps.close()
    try:
        return _report_undo(actions, undo_file + scope, target.describe(), outcome, rehearse, detailed_exitcode)
    except KeyboardInterrupt:
        if not outcome.committed:
            raise RepairInterrupted(f"{interrupt_name()} after the rollback: nothing was changed") from None
        warn("interrupted after COMMIT: the undo is committed")
        return EXIT_OK
    except OSError as exc:  # standard output cannot be written: the outcome still has to be said
        code = None if rehearse else unreported(outcome, exc, "undo", detailed_exitcode)
        if code is None:
            raise
        return code


def _report_undo(actions: ActionTable, what_file: str, where: str, outcome: Outcome, rehearse: bool,
                 detailed_exitcode: bool) -> int:
    """The lines that say what ``undo`` did."""
    from repairs.summary import changes_text

    if outcome.already:
        verb = "rehearsal of" if rehearse else "already undone:"
        click.echo(f"{verb} {what_file}: every change is taken back already on {where}; nothing was changed.")
        return EXIT_OK
    undone = not_skipped(actions, outcome, "already undone", "change")
    changes = changes_text(undone.expected_changes())
    what = (f"{outcome.actions} change(s) of {what_file}: {changes}; every release points at its original "
            f"row again, re-dated rows have their old created, pruned rows are back as recorded; "
            f"{outcome.releases_checked} release(s) checked")
    if rehearse:
        click.echo(f"rehearsed undo (rolled back, nothing changed): {what}")
        return EXIT_OK
    click.echo(f"undone on {where}: {what}")
    after_commit(outcome)
    return EXIT_CRITICAL if detailed_exitcode else EXIT_OK


@undo.command("sql")
@params.file_argument("undo_file", "UNDO_FILE")
@params.output("Write the script to FILE (atomically) instead of stdout.")
@params.settings(*params.CONNECTS, "apps",
                 help={"lock_timeout": "SET LOCAL lock_timeout of the script's transaction, with its unit (5s, 500ms).",
                       "apps": "Only this app's changes (repeatable).",
                       "dsn": "Undo files written before format version 3 do not record the columns: read them "
                              "from this database (read-only) [default: the config file's dsn_env or dsn, "
                              "DATABASE_URL, DEIS_DATABASE_*, PG*]."})
def undo_sql(settings: Settings, undo_file: str, output: str | None) -> int:
    """Write the way back as a script for `psql -v ON_ERROR_STOP=1 -f` (one transaction, checked)."""
    from repairs.script import ScriptSource, script
    from repairs.undofile import load_undo

    doc = load_undo(undo_file)
    generation = doc.generation() or _columns_from_database(settings, doc)
    apps = settings.apps
    actions = doc.actions.only_apps(doc.app_uuids(apps)) if apps else doc.actions
    source = ScriptSource.of_undo(doc, generation)
    source.actions = actions
    text = script(source, settings.lock_timeout)
    write_script(text, output)
    return EXIT_OK


def _columns_from_database(settings: Settings, doc: UndoFile) -> Generation:
    """The generation (with columns) of the database an older undo file belongs to."""
    from auditor.core.session import read_session
    from repairs.identity import identify

    with read_session(settings) as (conn, generation):
        doc.identity.check_same(identify(conn, generation, settings.target), "undo file")
    return generation
