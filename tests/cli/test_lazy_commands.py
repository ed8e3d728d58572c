"""Issue #16, `explain` start-up: a command imports only what it runs.

The root group imports a command's module when that command is resolved
(:mod:`auditor.cli.lazy_group`), so ``--help`` and ``explain`` start without the repairs, the
HTML/SVG pictures' templates (jinja2) or the SQL formatter (sqlglot); ``--help`` still lists
every command with its own summary, and a mistyped command is offered the closest names.
"""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from auditor.cli import COMMANDS, cli
from tests.repairs.helpers import story

#: What neither ``--help`` nor ``explain`` (text) may import.
NOT_AT_START = ("sqlglot", "jinja2", "repairs")


#: What the audit's paths (``check``, ``explain``, their ``--help``) may not import
#: either: each is imported where it is used (a table's text, a config file, a mistyped name, a
#: baseline's spool, ``blast-radius``).
NOT_ON_THE_AUDIT_PATH = ("tabulate", "tomllib", "difflib", "pickle", "auditor.audit.blast")


def _modules(args: list[str], cwd: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``python -m auditor ARGS`` in a fresh interpreter; every module it imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL", "DEIS_DATABASE"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "auditor", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    modules = {line.rpartition("|")[2].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return done, modules


def _imported(args: list[str], cwd: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``python -m auditor ARGS`` in a fresh interpreter; the top-level packages it imported."""
    done, modules = _modules(args, cwd)
    return done, {name.split(".")[0] for name in modules}


def test_help_imports_no_command_module_nor_heavy_library(tmp_path):
    done, names = _imported(["--help"], str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "explain  " in done.stdout and "apply  " in done.stdout
    assert names.isdisjoint(NOT_AT_START), sorted(names & set(NOT_AT_START))
    assert "auditor.cli.commands.apply" not in done.stderr


def test_explain_imports_neither_the_repairs_nor_jinja2_nor_sqlglot(hephy_db, tmp_path):
    story(hephy_db.controller())  # `web` has orphans and a poisoned latest(): the text names repairs
    done, names = _imported(["explain", "web", "--dsn", hephy_db.dsn], str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "controller-audit plan --app web --repair restore-latest -o web.plan" in done.stdout
    assert names.isdisjoint(NOT_AT_START), sorted(names & set(NOT_AT_START))


@pytest.mark.parametrize("args", [["check", "--help"], ["explain", "--help"], ["--help"]])
def test_help_imports_nothing_only_a_run_needs(tmp_path, args):
    done, modules = _modules(args, str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert modules.isdisjoint(NOT_ON_THE_AUDIT_PATH), sorted(modules & set(NOT_ON_THE_AUDIT_PATH))


@pytest.mark.parametrize("args", [["check", "--app", "web", "--format", "json", "--fail-on", "never"],
                                  ["check", "--app", "web", "--format", "json", "--min-severity", "info",
                                   "--fail-on", "never"],
                                  ["explain", "web", "--format", "json"], ["explain", "web"]])
def test_the_audit_path_imports_nothing_it_does_not_use(hephy_db, tmp_path, args):
    """``check`` and ``explain`` of an app import no library they do not run: neither the pictures'
    templates (jinja2) for JSON, nor tabulate (``explain``'s text writes its tables of printable
    ASCII itself, with tabulate's bytes: tests/cli/test_explain_table.py), no TOML parser without a
    config file, no difflib without a mistyped name, no pickle without a baseline, not
    ``blast-radius``'s engine."""
    story(hephy_db.controller())
    done, modules = _modules([*args, "--dsn", hephy_db.dsn], str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "web" in done.stdout
    found = modules & {*NOT_ON_THE_AUDIT_PATH, *NOT_AT_START}
    assert not found, sorted(found)


@pytest.mark.parametrize("width", [40, 80, 200])
def test_help_lists_every_command_as_the_commands_themselves_would(width):
    listed = CliRunner().invoke(cli, ["--help"], terminal_width=width, max_content_width=width).stdout
    eager = click.Group("controller-audit", commands=[entry.load() for entry in COMMANDS.values()])
    ctx = click.Context(eager, info_name="controller-audit", terminal_width=width, max_content_width=width)
    formatter = ctx.make_formatter()
    eager.format_commands(ctx, formatter)
    assert formatter.getvalue() in listed
    assert [line.split()[0] for line in formatter.getvalue().splitlines()[1:]] == sorted(COMMANDS)


def test_each_registered_summary_is_its_commands_first_paragraph():
    for name, entry in COMMANDS.items():
        command = entry.load()
        assert command.name == name
        assert entry.summary == " ".join((command.help or "").partition("\n\n")[0].split()), name


def test_a_mistyped_command_is_offered_the_closest_names_before_any_is_imported(tmp_path):
    done, _ = _imported(["chek"], str(tmp_path))
    assert done.returncode == 3
    assert ("controller-audit: bad usage: No such command 'chek'. (Did you mean one of: 'check', 'checks'?) "
            "(see: controller-audit --help)") in done.stderr


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_check_imports_the_pictures_templates_only_for_html_and_tabulate_for_tables(hephy_db, tmp_path, fmt):
    story(hephy_db.controller())
    done, names = _imported(["check", "--dsn", hephy_db.dsn, "--format", fmt, "--fail-on", "never"], str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert names.isdisjoint(NOT_AT_START), sorted(names & set(NOT_AT_START))
    assert ("tabulate" in names) == (fmt == "table")  # the table's library, for the table alone


_COLLECTIONS = """
import gc, sys
collections = []
gc.callbacks.append(lambda phase, info: collections.append(info["generation"]) if phase == "start" else None)
from auditor.cli import COMMANDS
at_start = (len(collections), gc.get_freeze_count() > 0, gc.isenabled())
frozen = gc.get_freeze_count()
COMMANDS["explain"].load()
print(at_start, len(collections) - at_start[0], gc.get_freeze_count() > frozen, gc.isenabled())
"""


def test_start_up_imports_run_no_collection_and_are_frozen(tmp_path):
    """The command line's imports and a command's module are imported with the cyclic collector
    paused, then frozen (out of every later collection), and the collector is restored: its
    collections rescanned the ~100,000 objects they make again and again (~35 ms of every start)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL", "DEIS_DATABASE"))}
    done = subprocess.run([sys.executable, "-c", _COLLECTIONS], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(0, True, True) 0 True True"
