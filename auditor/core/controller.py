"""What the controller's own code does with the rows, per schema generation (``controller-schema.md`` §8).

One home for the facts the checks grade severities by and the reports put into words.
"""

from __future__ import annotations

#: Last api migration whose ``Config.save`` merges ``config:set`` over ``config_set.latest()`` (Deis v2.0).
CONFIG_SET_MERGES_OVER_LATEST_UNTIL = 9
#: Last api migration whose ``Build.save`` diffs a push against ``build_set.latest()``.
BUILD_DIFFS_AGAINST_LATEST_UNTIL = 19


def wrong_sentence(kind: str, migration: int | None) -> str:
    """What a ``latest()`` row that is not the live release's breaks on api migration ``migration``
    (None: unknown, said without naming a consequence)."""
    if migration is None:
        return "returns a row the live release does not use"
    if kind == "config":
        if migration <= CONFIG_SET_MERGES_OVER_LATEST_UNTIL:
            return "the next config:set merges over a row the live release does not use"
        return ("boot re-saves this row (merging the live config under it) and App.create builds on it once the app "
                "has lost every release; config:set merges over the live release's config")
    if migration <= BUILD_DIFFS_AGAINST_LATEST_UNTIL:
        return ("the next push diffs its procfile against this row and fails when the live release runs a process "
                "type it lacks (404 Container type ... does not exist)")
    return "differs, harmless here: Deis 2.7+ and Hephy never read build_set.latest()"
