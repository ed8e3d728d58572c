"""``controller-audit checks [ID]`` and the generated catalogue documentation."""

from __future__ import annotations

from pathlib import Path

from auditor.reports.catalogue_doc import readme_section, render_markdown
from checks import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "regenerate with: controller-audit checks --markdown"


def test_lists_every_check(run):
    result = run("checks")
    assert result.exit_code == 0
    catalogue = CATALOGUE
    lines = result.stdout.splitlines()
    for check in catalogue.values():
        line = next(line for line in lines if line.split()[:1] == [check.id])
        assert check.severity in line and check.title in line and (check.repair or "-") in line
    assert f"{len(catalogue)} checks;" in result.stdout


def test_one_check_in_full(run):
    result = run("checks", "orphan-config")
    assert result.exit_code == 0
    out = result.stdout
    assert out.startswith("orphan-config: Config used by no release\n")
    assert "repair:      `prune-orphans` (controller-audit plan --repair prune-orphans)" in out
    assert "applies to:  all (deis and hephy)" in out
    assert "poisoned latest" in out  # the rationale


def test_unknown_check_exits_3(run):
    result = run("checks", "no-such-check")
    assert result.exit_code == 3
    assert result.stderr == "controller-audit: unknown check: no check with id 'no-such-check' (see: controller-audit checks)\n"


def test_markdown_is_hidden_but_renders_the_catalogue(run):
    assert "--markdown" not in run("checks", "--help").stdout
    result = run("checks", "--markdown")
    assert result.stdout == render_markdown(CATALOGUE)
    for cid in CATALOGUE:
        assert f"### {cid}\n" in result.stdout


def test_docs_catalogue_is_current():
    current = (ROOT / "docs" / "catalogue.md").read_text(encoding="utf-8")
    assert current == render_markdown(CATALOGUE), f"docs/catalogue.md is stale; {REGENERATE} > docs/catalogue.md"


def test_readme_catalogue_section_is_current_when_present():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme_section(readme)
    if section is None:
        assert "<!-- catalogue:start -->" not in readme and "<!-- catalogue:end -->" not in readme
        return
    assert section.strip() == render_markdown(CATALOGUE).strip(), f"README catalogue section is stale; {REGENERATE}"


def test_readme_section_extraction():
    text = "intro\n<!-- catalogue:start -->\n| a |\n<!-- catalogue:end -->\nrest\n"
    assert readme_section(text) == "\n| a |\n"
    assert readme_section("no markers here") is None
