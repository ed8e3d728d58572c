"""Runs one step of the demo the way a user would, and shows it in a few lines.

A step is one real ``controller-audit`` command line, run in a subprocess: one narrating line,
the command with its exit code, and its output (cut to its first and last lines when long, the
whole of it kept in a file whose path the cut names).  Colours are click's, so they reach a
terminal only; on a terminal, lines wider than it are cut too (the files keep them whole).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from auditor.core.connection import redact
from auditor.core.errors import AuditorError


class StepFailed(AuditorError):
    """A step of the walkthrough exited with a status it should not have (exit code 3)."""

    kind = "demo step failed"


@dataclass(frozen=True)
class Cut:
    """Which lines of a long output to show: the first ``head`` and the last ``tail``.  With
    ``before``, the first lines end before the first line that starts with it; with ``groups``,
    at a blank line (tables and groups are never cut in half)."""

    head: int
    tail: int = 0
    before: str | None = None
    groups: bool = False


def excerpt(lines: Sequence[str], cut: Cut, where: str) -> tuple[list[str], str | None, list[str]]:
    """The first lines to show, a ``(N more lines in WHERE)`` line standing for the hidden ones
    (None when nothing is hidden), and the last lines to show."""
    head_end = min(cut.head, len(lines))
    if cut.before is not None:
        head_end = next((i for i, line in enumerate(lines[:head_end]) if line.startswith(cut.before)), head_end)
    if cut.groups and head_end < len(lines) and lines[head_end].strip():
        head_end = next((i for i in range(head_end - 1, 0, -1) if not lines[i].strip()), head_end)
    tail_start = max(head_end, len(lines) - cut.tail)
    hidden = tail_start - head_end
    if hidden <= 1:  # a marker would take as much room as the line it stands for
        return list(lines), None, []
    head = list(lines[:head_end])
    while head and not head[-1].strip():
        head.pop()
    return head, f"({hidden} more lines in {where})", list(lines[tail_start:])


def clip(line: str, width: int | None) -> str:
    """``line`` cut to ``width`` columns (``...`` marking the cut); whole when ``width`` is None."""
    if width is None or len(line) <= width:
        return line
    return line[: max(width - 3, 1)] + "..."


@dataclass
class Presenter:
    """Runs the steps against ``dsn`` in ``workdir`` and narrates them through ``echo``."""

    dsn: str
    workdir: Path
    echo: Callable[[str], None] = click.echo
    #: The terminal's width when the output is a terminal (lines are cut to it), else None.
    width: int | None = None
    #: The line every command that connects prints first (the database it works on): shown once.
    database_line: str | None = None

    def say(self, narration: str) -> None:
        """One narrating line, after a blank one."""
        self.echo("")
        self.echo(click.style(f"# {narration}", fg="cyan", bold=True))

    def run(self, narration: str, *args: str, keep_as: str, cut: Cut | None = None,
            expect: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
        """Narrate, run the command, show it with its exit code, then (an excerpt of) its output;
        the whole output is kept in ``keep_as`` (in the working directory)."""
        self.say(narration)
        env = dict(os.environ, DATABASE_URL=self.dsn, COLUMNS="160")
        env.pop("CONTROLLER_AUDIT_DEBUG", None)
        result = subprocess.run([sys.executable, "-m", "auditor", *args], cwd=self.workdir, env=env,
                                capture_output=True, text=True, check=False)
        self.echo(click.style("$ controller-audit " + " ".join(shlex.quote(a) for a in args), bold=True)
                  + click.style(f"   # exit code {result.returncode}", dim=True))
        first, _, rest = result.stderr.partition("\n")
        # the database line comes first, as a terminal shows it (the command prints it before anything)
        parts = (first, result.stdout, rest) if first.startswith("controller-audit: database ") else (
            result.stdout, result.stderr)
        output = redact("\n".join(s.rstrip("\n") for s in parts if s.strip()))
        kept = self.workdir / keep_as
        kept.write_text(output + "\n" if output else "", encoding="utf-8")
        shown = output.splitlines()
        if first.startswith("controller-audit: database "):  # the same database every step: said once
            if self.database_line is not None:
                shown.remove(redact(first))
            self.database_line = first
        self.show(shown, cut, kept)
        if result.returncode not in expect:
            raise StepFailed(f"controller-audit {' '.join(args)} exited {result.returncode} (its output: {kept})")
        return result

    def show(self, lines: Sequence[str], cut: Cut | None, kept: Path, indent: str = "") -> None:
        """Echo ``lines`` (an excerpt when ``cut``), each cut to the terminal's width (the line
        naming the file that holds the rest never is)."""
        head, marker, tail = excerpt(lines, cut, str(kept)) if cut is not None else (list(lines), None, [])
        width = None if self.width is None else self.width - len(indent)
        for line in head:
            self.echo(indent + clip(line, width) if line.strip() else "")
        if marker is not None:
            self.echo(indent + marker)
        for line in tail:
            self.echo(indent + clip(line, width) if line.strip() else "")

    def show_file(self, name: str, title: str, pick: Callable[[list[str]], list[str]]) -> None:
        """Echo the lines ``pick`` chooses from the working directory's file ``name``, under ``title``."""
        path = self.workdir / name
        lines = path.read_text(encoding="utf-8").splitlines()
        picked = pick(lines)
        self.echo(click.style(f"{title} ({len(picked)} of its {len(lines)} lines; the file: {path}):", dim=True))
        self.show(picked, None, path, indent="  ")
