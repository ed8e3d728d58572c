"""A command group that is also a command: ``plan -o FILE`` / ``plan show FILE``, ``undo FILE`` /
``undo sql FILE``.

The group's own work is a hidden default subcommand that runs when the first argument does not
name a subcommand, so the group's options belong to that command alone: ``plan --grace 0 show
FILE`` is an error (the options would be silently ignored otherwise), not a ``plan show``.
"""

from __future__ import annotations

import click


class DefaultGroup(click.Group):
    """A group whose default subcommand (:attr:`default`) runs unless a subcommand is named first."""

    default = "run"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = [self.default, *args]
        return super().parse_args(ctx, args)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The default command's options (what the group itself takes), then the subcommands."""
        default = self.commands.get(self.default)
        if default is not None:
            rows = [r for r in (p.get_help_record(ctx) for p in default.get_params(ctx)) if r is not None]
            if rows:
                with formatter.section("Options"):
                    formatter.write_dl(rows)
        else:
            super().format_options(ctx, formatter)
        self.format_commands(ctx, formatter)


class DefaultCommand(click.Command):
    """The default subcommand: its usage line is its group's, and subcommand names given after its
    options are refused with a word on where they go."""

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        path = ctx.parent.command_path if ctx.parent is not None else ctx.command_path
        formatter.write_usage(path, " ".join(self.collect_usage_pieces(ctx)))

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        given = list(args)  # the parser consumes ``args``
        try:
            return super().parse_args(ctx, args)
        except click.UsageError:
            group = ctx.parent.command if ctx.parent is not None else None
            named = [a for a in given if isinstance(group, click.Group) and a in group.commands and a != self.name]
            if not named:
                raise
            path = ctx.parent.command_path if ctx.parent is not None else ""
            raise click.UsageError(f"options given before '{named[0]}' belong to `{path}` itself: write "
                                   f"`{path} {named[0]} ...` with the options after '{named[0]}'", ctx.parent or ctx) from None
