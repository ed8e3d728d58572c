"""Issue #17, typo help: a mistyped app name, check id, repair, format or config-file key gets one
line offering the closest real ones ("did you mean 'shop'?"); app names come from the database,
in the command's own read-only snapshot."""

from __future__ import annotations

import pytest

from auditor.core.suggest import did_you_mean
from tests.helpers import messages
from tests.repairs.helpers import story


@pytest.fixture
def shop_db(hephy_db):
    ctl = hephy_db.controller()
    story(ctl)
    ctl.create_app("shop").push(image="shop:1")
    return hephy_db


@pytest.mark.parametrize("args", [
    ["explain", "shpo"], ["blast-radius", "app", "shpo"], ["check", "--app", "shpo"],
    ["plan", "--app", "shpo", "-o", "p.json"], ["baseline", "create", "b.json", "--app", "shpo"],
])
def test_a_mistyped_app_is_offered_the_closest_name(shop_db, run, args):
    result = run(*args, "--dsn", shop_db.dsn)
    assert result.exit_code == 3, result.output
    assert messages(result.stderr).strip() == (
        "controller-audit: unknown app: no app named 'shpo' in this database; did you mean 'shop'?")


def test_several_mistyped_apps_each_get_their_hint_and_a_far_name_gets_none(shop_db, run):
    result = run("check", "--app", "shpo", "--app", "wbe", "--app", "zzzzzz", "--dsn", shop_db.dsn)
    assert result.exit_code == 3
    assert messages(result.stderr).strip() == (
        "controller-audit: unknown app: no app named 'shpo' (did you mean 'shop'?), 'wbe' (did you mean 'web'?), "
        "'zzzzzz' in this database")
    far = run("explain", "zzzzzz", "--dsn", shop_db.dsn)
    assert messages(far.stderr).strip() == "controller-audit: unknown app: no app named 'zzzzzz' in this database"


def test_the_hint_stays_inside_the_allow_list(shop_db, run, tmp_path):
    (tmp_path / "audit.toml").write_text('apps = ["web", "shpx"]\n')
    result = run("check", "--config", "audit.toml", "--app", "shpo", "--dsn", shop_db.dsn)
    assert result.exit_code == 3
    assert "'shpo' is not in the apps allow-list of audit.toml; did you mean 'shpx'?" in result.stderr
    assert "'shop'" not in result.stderr


@pytest.mark.parametrize("args", [
    ["check", "--check", "orphan-confg"], ["check", "--exclude", "orphan-confg"], ["checks", "orphan-confg"],
])
def test_a_mistyped_check_id_is_offered_the_closest_ids(hephy_db, run, args):
    result = run(*args, "--dsn", hephy_db.dsn) if args[0] == "check" else run(*args)
    assert result.exit_code == 3, result.output
    line = messages(result.stderr).strip()
    assert line.startswith("controller-audit: unknown check: no check with id 'orphan-confg'; did you mean "
                           "'orphan-config'"), line
    assert line.endswith("(see: controller-audit checks)")


def test_config_file_check_ids_and_keys_are_offered_too(hephy_db, run, tmp_path):
    (tmp_path / "controller-audit.toml").write_text('exclude = ["orphan-confg"]\n')
    result = run("check", "--dsn", hephy_db.dsn)
    assert result.exit_code == 3
    assert "controller-audit.toml: exclude: no check with id 'orphan-confg'; did you mean 'orphan-config'" \
        in result.stderr
    (tmp_path / "controller-audit.toml").write_text('fial_on = "critical"\n')
    key = run("check", "--dsn", hephy_db.dsn)
    assert "controller-audit.toml: fial_on: unknown key; did you mean 'fail_on'?" in key.stderr


def test_a_mistyped_repair_or_format_is_offered_the_closest_choice(run):
    repair = run("plan", "--repair", "unshar", "-o", "p.json")
    assert repair.exit_code == 3
    assert "'unshar' is not one of" in repair.stderr and "did you mean 'unshare'?" in repair.stderr
    fmt = run("check", "--format", "prometeus")
    assert fmt.exit_code == 3 and "did you mean 'prometheus'?" in fmt.stderr


def test_did_you_mean_lists_up_to_three_and_ignores_case():
    assert did_you_mean("SHOP", ["shop", "shops", "shopping", "web"]) == "did you mean 'shop', 'shops' or 'shopping'?"
    assert did_you_mean("x", ["web", "api"]) == ""


def test_undo_app_is_offered_the_apps_of_the_undo_file(shop_db, run):
    assert run("plan", "--dsn", shop_db.dsn, "-o", "p.json").exit_code == 0
    assert run("apply", "p.json", "--dsn", shop_db.dsn, "--yes", "--undo-file", "u.json").exit_code == 0
    result = run("undo", "u.json", "--app", "wbe", "--dsn", shop_db.dsn, "--yes")
    assert result.exit_code == 3, result.output
    assert "app 'wbe' has no change in this undo file; did you mean 'web'? (its apps: " in result.stderr


@pytest.mark.parametrize("args", [
    ["explain", "shpo"], ["blast-radius", "app", "shpo"], ["check", "--app", "shpo"],
    ["plan", "--app", "shpo", "-o", "p.json"], ["baseline", "create", "b.json", "--app", "shpo"],
])
def test_an_app_without_a_name_is_no_candidate(shop_db, run, args):
    """``api_app.id`` is nullable: an app whose name is NULL is not offered, and is no internal error."""
    shop_db.conn.execute("UPDATE api_app SET id = NULL WHERE id = 'web'")
    result = run(*args, "--dsn", shop_db.dsn)
    assert result.exit_code == 3, result.output
    assert messages(result.stderr).strip() == (
        "controller-audit: unknown app: no app named 'shpo' in this database; did you mean 'shop'?")
