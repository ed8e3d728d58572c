"""A click group that imports a command's module only when that command runs (click's documented
"lazily loading subcommands" pattern), so that ``explain`` does not pay for ``apply``'s imports.

Each command is registered by name with the module and attribute that define it and the first
paragraph of its help, which ``--help`` lists without importing anything
(``tests/cli/test_lazy_commands.py`` checks that the summaries are the commands' own).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from gettext import gettext as _

import click

from auditor.core.collector import kept_imports


@dataclass(frozen=True)
class LazyCommand:
    """Where a command is defined, and the summary ``--help`` lists for it."""

    module: str
    attribute: str
    #: The first paragraph of the command's help (its docstring), as the command has it.
    summary: str

    def load(self) -> click.Command:
        """Import the module and return its command."""
        module = sys.modules.get(self.module)
        if module is None:
            with kept_imports():  # the command's imports live as long as the process
                module = importlib.import_module(self.module)
        command = getattr(module, self.attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.module}.{self.attribute} is not a click command")
        return command


class LazyGroup(click.Group):
    """A group whose commands (:attr:`lazy`, by name) are imported when first resolved."""

    lazy: Mapping[str, LazyCommand] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.add_command(self.lazy[cmd_name].load(), cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        """click's, offering the closest names among every command, imported or not."""
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as exc:
            raise click.exceptions.NoSuchCommand(str(args[0]), possibilities=self.list_commands(ctx), ctx=ctx) from exc

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing of the commands, from the summaries of those not imported yet."""
        commands: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name) or click.Command(name, help=self.lazy[name].summary)
            if not command.hidden:
                commands.append((name, command))
        if not commands:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in commands)
        with formatter.section(_("Commands")):
            formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in commands])
