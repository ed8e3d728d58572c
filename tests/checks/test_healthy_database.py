"""A few thousand apps written the way the controller works, without damage.

In the controller's own (shared) form nothing may be reported above ``info``: the sharing a
push or ``config:set`` creates is normal.  In ledger form (every release owns its config and
build rows) no check of the catalogue may report anything at all.
"""

from __future__ import annotations

import pytest

from auditor.core.findings import at_least
from checks import CATALOGUE
from tests.checks.stories import healthy_app
from tests.helpers import audit

APPS = 2000


def write_healthy(db, apps: int, ledger: bool = False, rollbacks: bool = False) -> None:
    ctl = db.controller(ledger=ledger)
    with ctl.batch():
        for index in range(apps):
            healthy_app(ctl, index, rollbacks=rollbacks)


@pytest.fixture(params=[19, 28], ids=lambda m: f"mig{m:04d}")
def big_db(request, make_db):
    return make_db(request.param)


def test_shared_form_reports_nothing_above_info(big_db):
    write_healthy(big_db, APPS)
    assert big_db.scalar("SELECT count(*) FROM api_app") == APPS
    findings = audit(big_db)
    loud = [(f.check, f.app_name, f.message) for f in findings if at_least(f.severity, "warning")]
    assert loud == []
    # the normal sharing is there, and reported quietly
    assert {f.check for f in findings} >= {"shared-config", "shared-build"}


def test_ledger_form_reports_nothing(big_db):
    write_healthy(big_db, APPS, ledger=True)
    assert big_db.scalar("SELECT count(*) FROM api_release") == big_db.scalar("SELECT count(*) FROM api_config")
    assert audit(big_db) == []


def test_ledger_form_with_rollbacks_reports_nothing(hephy_db):
    write_healthy(hephy_db, 200, ledger=True, rollbacks=True)
    assert hephy_db.scalar("SELECT count(*) FROM api_release WHERE summary LIKE '%%rolled back%%'") == 50
    assert audit(hephy_db) == []


def test_every_check_ran(hephy_db):
    """The silence above is from every check in the catalogue, not from an empty selection."""
    write_healthy(hephy_db, 8)
    ctl = hephy_db.controller()
    web = ctl.create_app("web")
    web.push()
    web.rollback(1)
    web.orphan_config(X="1")
    ctl.failed_create_app("ghost")
    reported = {f.check for f in audit(hephy_db)}
    mine = {"latest-config-not-live", "latest-build-not-live", "shared-config", "shared-build",
            "app-without-release"}
    assert mine <= reported and mine <= set(CATALOGUE)
