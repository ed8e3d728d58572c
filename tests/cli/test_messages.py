"""Issue #17, messages a newcomer reads: a missing privilege is one line naming the GRANT (not
``permission denied: permission denied: permission denied for table``), "an undo file", a clean
database says so plainly, and a closed stdin ends the ``[y/N]:`` line."""

from __future__ import annotations

import json

from click.testing import CliRunner

from auditor.cli import cli
from tests.helpers import login_role_dsn, messages
from tests.repairs.helpers import story


def test_a_missing_select_names_the_grant(hephy_db, run):
    story(hephy_db.controller())
    dsn = login_role_dsn(hephy_db, "audit_partial", "pw-partial-31",
                         "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}", "REVOKE SELECT ON api_config FROM {}")
    for args in (["check"], ["check", "--format", "json"], ["explain", "web"], ["plan", "-o", "p.json"]):
        result = run(*args, "--dsn", dsn)
        assert result.exit_code == 3, (args, result.output)
        assert messages(result.stderr).strip() == (
            "controller-audit: permission denied: role audit_partial cannot read api_config; "
            "GRANT SELECT ON api_config TO audit_partial"), args
        assert "pw-partial-31" not in result.output


def test_a_role_that_needs_quoting_is_quoted_in_the_grant(hephy_db, run):
    dsn = login_role_dsn(hephy_db, "Audit Role", "pw-quoted-32",
                         "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}", "REVOKE SELECT ON api_build FROM {}")
    result = run("check", "--dsn", dsn)
    assert result.exit_code == 3
    assert messages(result.stderr).strip() == (
        'controller-audit: permission denied: role Audit Role cannot read api_build; '
        'GRANT SELECT ON api_build TO "Audit Role"')


def test_an_undo_file_is_an_undo_file(run, tmp_path):
    (tmp_path / "u.json").write_text(json.dumps({"format": "something-else"}))
    result = run("undo", "sql", "u.json")
    assert result.exit_code == 3
    assert "u.json is not an undo file (format is not 'controller-audit-undo')" in result.stderr
    assert "a undo" not in result.stderr


def test_a_clean_database_says_so_plainly(hephy_db, run):
    hephy_db.controller().create_app("web").push()
    result = run("check", "--dsn", hephy_db.dsn, "--check", "orphan-config", "--check", "orphan-build")
    assert result.exit_code == 0
    assert result.stdout.startswith("no findings (")
    assert "0 apps" not in result.stdout and "0 critical" not in result.stdout


def test_a_closed_stdin_ends_the_question_line(hephy_db, run, tmp_path):
    story(hephy_db.controller())
    assert run("plan", "--dsn", hephy_db.dsn, "-o", "p.json").exit_code == 0
    for args in (["apply", "p.json"], ["apply", "p.json", "--undo-file", "u.json"]):
        result = CliRunner().invoke(cli, [*args, "--dsn", hephy_db.dsn], input="")
        assert result.exit_code == 4, result.output
        assert result.stdout.endswith("[y/N]: \n"), repr(result.stdout[-80:])
        assert messages(result.stderr).strip().startswith("controller-audit: declined: not confirmed")


def test_a_bad_option_of_plan_or_undo_points_at_their_own_help(run):
    """``plan`` and ``undo`` run a hidden default command: the pointer names the command typed."""
    for args, where in ((["plan", "--grace", "nan", "-o", "x.plan"], "controller-audit plan --help"),
                        (["undo", "u.json", "--commit-timeout", "5"], "controller-audit undo --help")):
        result = CliRunner().invoke(cli, args, prog_name="controller-audit")
        assert result.exit_code == 3
        assert result.stderr.rstrip().endswith(f"(see: {where})"), result.stderr
