"""Where ``plan sql`` and ``undo sql`` put their script: stdout, or a private file named on stderr."""

from __future__ import annotations

import sys

import click

from auditor.core.fileio import PRIVATE, atomic_write


def write_script(text: str, output: str | None) -> None:
    """Write ``text`` to stdout, or to ``output`` (0600: the script quotes data) with how to run it."""
    if output is None:
        sys.stdout.write(text)
        return
    atomic_write(output, text, mode=PRIVATE)
    click.echo(f"script {output}: run it with  psql -v ON_ERROR_STOP=1 -f {output}", err=True)
