"""The counts a report folds from the rows the server counted but did not list (~30k per-app rows of
the default report at 1M releases): read once, and the same counts and ranking as counting row by row."""

from __future__ import annotations

import random
from collections import Counter

from auditor.audit.streamed import StreamedFinding
from auditor.core.findings import Counted
from auditor.reports.report import Report

CHECKS = ["orphan-config", "shared-config", "shared-build", "latest-ambiguous"]


class _Reads(list):
    """A list of counted rows that counts the passes over it."""

    passes = 0

    def __iter__(self):
        type(self).passes += 1
        return super().__iter__()


def _counted(seed: int) -> list[Counted]:
    rng = random.Random(seed)
    rows = []
    for app in range(300):
        for check in CHECKS:
            if rng.random() < 0.6:
                rows.append(Counted(check, rng.choice(("info", "info", "warning")), f"app-{app:03d}", rng.randint(1, 9)))
    rows.append(Counted("orphan-config", "info", None, 4))  # a finding of no app
    return rows


def _listed() -> list[StreamedFinding]:
    return [StreamedFinding("shared-config", "info", f"app-{n:03d}", f"{n:016x}", "{}") for n in range(0, 300, 7)]


def test_the_summary_reads_the_counted_rows_once() -> None:
    """``summary()`` (and the footer) read the counted rows in one pass, not once per severity."""
    report = Report(checks=CHECKS, database={}, generation="hephy")
    report.hidden = _Reads(_counted(1))
    list(report.screen(iter(_listed())))
    _Reads.passes = 0
    report.summary()
    assert _Reads.passes <= 1


def test_the_counts_and_the_ranking_are_those_of_each_row_counted() -> None:
    """By severity, by check, apps with findings and the apps with the most hazards (ties by name) are
    what counting every row (listed or counted) one at a time gives."""
    for seed in range(5):
        hidden = _counted(seed)
        report = Report(checks=CHECKS, database={}, generation="hephy")
        report.hidden = list(hidden)
        list(report.screen(iter(_listed())))
        rows = [(f.check, f.severity, f.app_name, 1) for f in _listed()] + [tuple(c) for c in hidden]
        assert report.by_severity == Counter({s: sum(r[3] for r in rows if r[1] == s) for s in {r[1] for r in rows}})
        for check in CHECKS:
            assert report.by_check[check] == Counter({s: sum(r[3] for r in rows if r[:2] == (check, s))
                                                      for s in {r[1] for r in rows if r[0] == check}})
        assert report.apps == {r[2] or "" for r in rows}
        hazards: dict[str, dict[str, int]] = {}
        for check, severity, app, n in rows:
            if severity == "info" and app:
                hazards.setdefault(app, {})[check] = hazards.get(app, {}).get(check, 0) + n
        ranked = sorted(hazards.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))[:10]
        assert report.top_hazard_apps() == [
            (app, sum(by.values()), {c: by[c] for c in CHECKS if c in by}) for app, by in ranked]
