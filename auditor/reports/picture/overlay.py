"""A plan's actions laid over an app's story: the marks of the "before" picture, and the story
"after" (copies as new rows, re-pointed releases, pruned rows gone, re-dated rows moved).

The after story is what the actions imply, not a re-read: ``apply`` checks the real result.
``latest()`` after is the controller's own rule (the row with the greatest ``created``)
against the live release's row; the live release after is the controller's too (the newest
by ``created`` that did not fail): only release-order changes a release's ``created``, and
with it, possibly, which release is live.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from auditor.audit.story import AppStory, Latest, RowUse, newest_of
from auditor.reports.picture.graph import Marks
from repairs.model import Action, kind_of


@dataclass
class Overlay:
    """What the plan does to one app, as the two pictures need it."""

    before: Marks
    after_story: AppStory
    after: Marks
    problems: list[str] = field(default_factory=list)  # actions that do not fit the database now


def _when(text: str | None) -> datetime:
    if not text:
        raise ValueError("action without a new created time")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _latest(kind: str, rows: dict[str, RowUse], expected: str | None) -> Latest:
    if not rows:
        return Latest(kind, None, 0, expected)
    newest = max(rows.values(), key=lambda r: r.created)
    ties = sum(1 for r in rows.values() if r.created == newest.created)
    return Latest(kind, newest, ties, expected)


def overlay(story: AppStory, actions: list[Action]) -> Overlay:
    """Apply ``actions`` (a forward plan's, in plan order) to ``story``."""
    before, after = Marks(), Marks()
    problems: list[str] = []
    rows = {"config": dict(story.configs), "build": dict(story.builds)}
    pointers = {rel.uuid: {"config": rel.config, "build": rel.build} for rel in story.releases}
    dated = {rel.uuid: rel.created for rel in story.releases}
    for action in actions:
        kind = kind_of(action.table)
        uses = rows.get(kind)
        if action.table == "api_release" and action.kind == "redate" and action.row in dated:
            before.mark(before.releases, action.row, "redate")
            after.mark(after.releases, action.row, "redated")
            dated[action.row] = _when(action.new_created)
        elif uses is None:
            problems.append(f"{action.describe()}: not a config or build")
        elif action.kind in ("prune", "redate") and action.row not in uses:
            problems.append(f"{action.describe()}: the row is not in the database now")
        elif action.kind == "prune":
            before.mark(before.rows, action.row, "prune")
            del uses[action.row]
        elif action.kind == "redate":
            before.mark(before.rows, action.row, "redate")
            after.mark(after.rows, action.row, "redated")
            uses[action.row] = uses[action.row]._replace(created=_when(action.new_created))
        elif action.kind == "copy" and action.release in pointers and action.new_uuid:
            before.mark(before.edges, (action.release, kind), "repoint")
            before.mark(before.releases, action.release, "repoint")
            pointers[action.release][kind] = action.new_uuid
            uses[action.new_uuid] = RowUse(action.new_uuid, _when(action.new_created), (), 0)
            after.mark(after.rows, action.new_uuid, "copy")
            after.mark(after.edges, (action.release, kind), "repointed")
            after.mark(after.releases, action.release, "repointed")
        else:
            problems.append(f"{action.describe()}: does not fit the database now (or is not a plan's action)")
    releases = [rel._replace(config=pointers[rel.uuid]["config"] or rel.config, build=pointers[rel.uuid]["build"],
                             created=dated[rel.uuid]) for rel in story.releases]
    users: dict[tuple[str, str], list[int]] = {}
    for rel in releases:
        users.setdefault(("config", rel.config), []).append(rel.version)
        if rel.build is not None:
            users.setdefault(("build", rel.build), []).append(rel.version)
    for kind, uses in rows.items():
        for uuid, use in uses.items():
            uses[uuid] = use._replace(versions=tuple(sorted(users.get((kind, uuid), []))))
    live_tied = newest_of([r for r in releases if not r.failed])
    live = live_tied[0] if live_tied else None
    newest_tied = newest_of(releases)
    after_story = AppStory(story.name, story.uuid, releases, rows["config"], rows["build"], live,
                           live_tied=live_tied, newest=newest_tied[0] if newest_tied else None,
                           newest_tied=newest_tied, now=story.now, skew_seconds=story.skew_seconds,
                           migration=story.migration)
    after_story.latest = {
        "config": _latest("config", rows["config"], live.config if live else None),
        "build": _latest("build", rows["build"], live.build if live else None),
    }
    return Overlay(before, after_story, after, problems)
