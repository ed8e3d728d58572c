"""What ``latest()`` returns compared with what it should, as a short code and a sentence.

The same verdict the text of ``explain`` prints, for its JSON form and its pictures.  What a
``latest()`` row that is not the live release's breaks depends on the controller generation
(:mod:`auditor.core.controller`).
"""

from __future__ import annotations

from auditor.audit.story import Latest
from auditor.core.controller import wrong_sentence

#: ``ok``: returns the live release's row; ``wrong``: returns another row; ``ambiguous``: several
#: rows tie on the newest ``created``; ``no-live``: no live release to compare with; ``none``:
#: the app has no such row.
VERDICTS: tuple[str, ...] = ("ok", "wrong", "ambiguous", "no-live", "none")

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
