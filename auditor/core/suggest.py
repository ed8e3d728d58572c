""""Did you mean ...?" for a mistyped app name, check id, repair or key (:mod:`difflib`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: How alike a candidate must be (difflib's ratio) to be offered; at most this many are offered.
CUTOFF = 0.6
OFFERED = 3


def close_matches(word: str, candidates: Iterable[str]) -> list[str]:
    """The candidates most like ``word`` (case aside), best first."""
    import difflib  # on a mistyped name alone: not at every start

    by_folded: dict[str, str] = {}
    for candidate in candidates:
        by_folded.setdefault(candidate.casefold(), candidate)
    found = difflib.get_close_matches(word.casefold(), list(by_folded), n=OFFERED, cutoff=CUTOFF)
    return [by_folded[f] for f in found]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``did you mean 'shop'?`` (or ``'a', 'b' or 'c'``), or "" when nothing is close."""
    quoted = [repr(m) for m in close_matches(word, candidates)]
    if not quoted:
        return ""
    listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    return f"did you mean {listed}?"


def with_hint(message: str, word: str, candidates: Iterable[str]) -> str:
    """``message; did you mean ...?``, or ``message`` alone."""
    hint = did_you_mean(word, candidates)
    return f"{message}; {hint}" if hint else message


def unknown_check(cid: str, catalogue: Mapping[str, Any] | Iterable[str]) -> str:
    """``no check with id 'shared-confg'; did you mean 'shared-config'? (see: controller-audit checks)``."""
    return f"{with_hint(f'no check with id {cid!r}', cid, catalogue)} (see: controller-audit checks)"


def unknown_apps(missing: list[str], candidates: Iterable[str], where: str = "in this database") -> str:
    """``no app named 'shpo' in this database; did you mean 'shop'?`` (several: each with its own hint)."""
    known = list(candidates)
    if len(missing) == 1:
        return with_hint(f"no app named {missing[0]!r} {where}", missing[0], known)
    named = []
    for name in missing:
        hint = did_you_mean(name, known)
        named.append(f"{name!r} ({hint})" if hint else repr(name))
    return f"no app named {', '.join(named)} {where}"
