"""release-version-gap: versions missing from 1..max."""

from __future__ import annotations

from tests.checks.stories import linear_history
from tests.helpers import audit, by_check

CHECK = "release-version-gap"


def findings(db, **kwargs):
    return by_check(audit(db, [CHECK], **kwargs), CHECK)


def orm_delete_config(db, config: str) -> None:
    """What Django's ``Config.delete()`` does: every release using it first, then the row."""
    db.conn.execute("DELETE FROM api_release WHERE config_id = %s", (config,))
    db.conn.execute("DELETE FROM api_config WHERE uuid = %s", (config,))


def test_orm_cascade_from_a_shared_config_leaves_a_gap(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    v2 = web.config_set(A="1")
    web.push()  # v3 shares v2's config
    web.config_set(B="2")  # v4
    orm_delete_config(db, v2.config)
    (finding,) = findings(db)
    assert finding.severity == "warning" and (finding.object_table, finding.object_id) == ("api_app", web.uuid)
    assert finding.evidence == {"missing_versions": [2, 3], "missing_count": 2, "missing_truncated": False,
                                "max_version": 4, "releases": 2}
    assert "v2, v3" in finding.message


def test_missing_v1(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    web.push()
    db.conn.execute("DELETE FROM api_release WHERE app_id = %s AND version = 1", (web.uuid,))
    (finding,) = findings(db)
    assert finding.evidence["missing_versions"] == [1] and finding.evidence["max_version"] == 2


def test_long_gaps_are_capped_at_fifty(hephy_db):
    ctl = hephy_db.controller()
    web = ctl.create_app("web")
    linear_history(web, 2)  # v2, v3
    hephy_db.conn.execute("UPDATE api_release SET version = 100000 WHERE app_id = %s AND version = 3", (web.uuid,))
    api = ctl.create_app("api")
    linear_history(api, 59)  # v2..v60
    hephy_db.conn.execute("DELETE FROM api_release WHERE app_id = %s AND version BETWEEN 3 AND 58 AND version %% 2 = 0",
                          (api.uuid,))
    found = {f.app_name: f.evidence for f in findings(hephy_db)}
    assert found["web"]["missing_count"] == 99997 and found["web"]["missing_versions"] == list(range(3, 53))
    assert found["web"]["missing_truncated"] is True
    assert found["api"]["missing_count"] == 28 and found["api"]["missing_versions"] == list(range(4, 59, 2))


def test_failed_deploys_of_either_era_leave_no_gap(db):
    ctl = db.controller()
    web = ctl.create_app("web")
    linear_history(web, 3)
    web.failed_config_set(A="1")  # era A: no release; era C: a failed release keeps its version
    web.failed_push()
    web.push()
    ctl.create_app("fresh")
    assert findings(db) == []


def test_app_restriction(db):
    ctl = db.controller()
    for name in ("web", "api"):
        app = ctl.create_app(name)
        app.push()
        db.conn.execute("DELETE FROM api_release WHERE app_id = %s AND version = 1", (app.uuid,))
    assert [f.app_name for f in findings(db, apps=["api"])] == ["api"]
    assert len(findings(db)) == 2
