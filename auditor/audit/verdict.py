"""What ``latest()`` returns compared with what it should, as a short code and a sentence.

The same verdict the text of ``explain`` prints, for its JSON form and its pictures.  What a
``latest()`` row that is not the live release's breaks depends on the controller generation
(``controller-schema.md`` §8), so the sentence does too.
"""

from __future__ import annotations

from auditor.audit.story import Latest

#: ``ok``: returns the live release's row; ``wrong``: returns another row; ``ambiguous``: several
#: rows tie on the newest ``created``; ``no-live``: no live release to compare with; ``none``:
#: the app has no such row.
VERDICTS: tuple[str, ...] = ("ok", "wrong", "ambiguous", "no-live", "none")

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


def verdict(latest: Latest, migration: int | None = None) -> tuple[str, str]:
    """``(code, sentence)`` for one ``latest()`` on api migration ``migration``."""
    if latest.today is None:
        return "none", f"returns nothing (the app has no {latest.kind})"
    if latest.ok:
        return "ok", "returns the live release's row"
    if latest.ties > 1:
        return "ambiguous", f"{latest.ties} {latest.kind}s share the newest created time"
    if latest.expected is None:
        return "no-live", "no live release to compare with"
    return "wrong", wrong_sentence(latest.kind, migration)
