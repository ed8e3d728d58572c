"""latest-ambiguous: rows tied at an app's newest ``created`` make ``latest()`` nondeterministic."""

from __future__ import annotations

from datetime import timedelta

from tests.checks.stories import linear_history
from tests.helpers import audit, by_check

CHECK = "latest-ambiguous"


def findings(db, **kwargs):
    return by_check(audit(db, [CHECK], **kwargs), CHECK)


def test_two_configs_dated_by_one_transactions_now(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    live = web.config_set(A="1")
    other = web.orphan_config(at=ctl.clock, B="2")  # same created as the live config
    (finding,) = findings(db)
    assert finding.severity == "warning" and finding.object_table == "api_config"
    assert finding.object_id == min(live.config, other)
    assert sorted(r["uuid"] for r in finding.related) == sorted([live.config, other])
    assert {r["uuid"]: r["is_live"] for r in finding.related} == {live.config: True, other: False}
    assert finding.evidence["tied_rows"] == 2 and finding.evidence["live_row_tied"] is True


def test_tied_builds_and_configs_are_one_finding_each(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    web.push(image="web:1")
    when = ctl.clock
    web.orphan_build(at=when)
    web.orphan_build(at=when)
    web.orphan_config(at=when + timedelta(minutes=1), A="1")
    web.orphan_config(at=when + timedelta(minutes=1), B="1")
    found = sorted((f.object_table, f.evidence["tied_rows"]) for f in findings(db))
    assert found == [("api_build", 3), ("api_config", 2)]


def test_ties_below_the_newest_row_do_not_matter(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    web.config_set(A="1")
    web.orphan_config(at=ctl.clock, B="2")
    web.config_set(C="3")  # a newer config breaks the tie for latest()
    linear_history(ctl.create_app("api"), 4)
    assert findings(db) == []


def test_app_restriction(hephy_db):
    ctl = hephy_db.controller()
    for name in ("web", "api"):
        app = ctl.create_app(name)
        app.orphan_config(at=ctl.clock, A="1")
    assert [f.app_name for f in findings(hephy_db, apps=["web"])] == ["web"]
    assert len(findings(hephy_db)) == 2
