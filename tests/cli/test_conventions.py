"""Issue #15, case 6: one command-line convention (docs/cli.md, "Conventions").

Every command is registered explicitly, returns its exit code (never ``ctx.exit``/``sys.exit``),
takes its options from the one params module, and a command group that is also a command
(``plan``, ``undo``) refuses options that would otherwise be silently ignored.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import click

import auditor.cli
from auditor.cli import COMMANDS, cli

ROOT = Path(__file__).resolve().parents[2]
COMMAND_MODULES = ROOT / "auditor" / "cli" / "commands"


def _commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        found[prefix + name] = command
        if isinstance(command, click.Group):
            found |= _commands(command, f"{prefix}{name} ")
    return found


def test_plan_options_before_a_subcommand_are_an_error_not_ignored(run, tmp_path):
    (tmp_path / "x.plan").write_text("{}")
    result = run("plan", "--grace", "0", "show", "x.plan")
    assert result.exit_code == 3
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("controller-audit: bad usage: options given before 'show' belong to `")
    assert line.endswith(" plan show ...` with the options after 'show' (see: cli plan --help)")
    assert run("plan", "--app", "web", "sql", "x.plan").exit_code == 3
    undo = run("undo", "--yes", "sql", "x.undo")
    assert undo.exit_code == 3 and "options given before 'sql' belong to `cli undo` itself" in undo.stderr


def test_plan_help_shows_its_own_options_and_its_subcommands(run):
    result = run("plan", "--help")
    assert result.exit_code == 0
    assert "--repair" in result.stdout and "--grace" in result.stdout and "-o, --output PLAN" in result.stdout
    assert "show" in result.stdout and "sql" in result.stdout


def test_every_command_module_is_registered_explicitly():
    modules = {p.stem for p in COMMAND_MODULES.glob("*.py") if not p.stem.startswith("_")}
    registered = {entry.module.rsplit(".", 1)[1] for entry in COMMANDS.values()}
    assert registered == modules
    for name, entry in COMMANDS.items():
        command = entry.load()
        assert command.name == name and inspect.getmodule(command.callback).__name__ == entry.module
    source = inspect.getsource(auditor.cli)
    assert "pkgutil" not in source and "import_module" not in source  # no package scan


def test_every_command_returns_its_exit_code():
    for path, command in _commands(cli).items():
        if isinstance(command, click.Group):
            continue
        callback = inspect.unwrap(command.callback)
        assert inspect.signature(callback).return_annotation in (int, "int"), path
    for path in COMMAND_MODULES.glob("*.py"):
        tree = ast.parse(path.read_text())
        calls = [node for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "exit"]
        assert calls == [], f"{path.name} exits instead of returning its code"


def test_every_option_is_defined_in_the_params_module():
    for path in COMMAND_MODULES.glob("*.py"):
        assert "click.option(" not in path.read_text(), f"{path.name} defines an option outside auditor/cli/params.py"


def test_commands_that_connect_take_their_settings_as_one_object():
    for path, command in _commands(cli).items():
        names = {p.name for p in command.params}
        if "dsn" in names and path != "demo":
            first = next(iter(inspect.signature(inspect.unwrap(command.callback)).parameters))
            assert first == "settings", path
