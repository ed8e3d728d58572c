"""Samples in README.md and docs/*.md are real output: each sample block follows a marker naming
the commands that produce it and the story database they run on::

    <!-- sample: controller-audit check --fail-on never | head -12 -->
    ```text
    $ controller-audit check --fail-on never
    controller-audit: database db.internal:5432/deis (hephy 0028)
    ...
    ```

The marker holds commands separated by `` ; ``; each is shown as ``$ COMMAND`` followed by what it
printed (stderr and stdout, interleaved as on a terminal); ``| head -N`` keeps its first N lines
(then ``...``), ``| tail -N`` its last N; a command starting with ``@`` runs without being shown (``@controller-audit plan
-o shop.plan ; controller-audit plan show shop.plan``); ``!SQL`` runs a statement on the story's
database between commands (a change made after planning, say); ``COMMAND < /dev/null`` reads
nothing on stdin (every other command answers ``y``). ``<!-- sample story=NAME: ... -->`` picks
the story (default ``demo``: the demo's database, :func:`auditor.demo.write_story`); ``{shared_config}``
in a command is a name the story returns (a uuid it made). Each block
runs in a fresh copy of its story, in an empty working directory, with ``DATABASE_URL`` set.

``tests/test_samples.py`` runs every block and compares it with what the page shows (uuids,
durations, the current time and the test server's path and database name aside).
Regenerate them all after changing output::

    .venv/bin/python -m tests.samples --write
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The pages whose samples are generated.
PAGES = ("README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")))
#: Set by ``python -m tests.samples --write``: the test rewrites the blocks instead of comparing.
WRITE_ENV = "CONTROLLER_AUDIT_WRITE_SAMPLES"
#: How the test server's database is shown in a sample.
SHOWN_HOST, SHOWN_DB = "db.internal", "deis"
#: The terminal width samples are rendered at.
COLUMNS = "100"

_MARKER = re.compile(r"^<!-- sample(?: story=(?P<story>[\w-]+))?: (?P<commands>.+?) -->\n```text\n(?P<body>.*?)```\n",
                     re.M | re.S)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DURATION = re.compile(r"\b\d+(?:\.\d+)? ?(?:s|ms)\b(?=[),;\s]|$)")
_EPOCH = re.compile(r"\b1[7-9]\d{8}(?:\.\d+)?\b")
_SECONDS_SERIES = re.compile(r"^(\w+_seconds(?:\{[^}]*\})?) \S+$", re.M)
_SECONDS_MEMBER = re.compile(r'("\w*seconds\w*": )[0-9.]+')
_NOW = re.compile(r"\b20(?!20-)\d\d-\d\d-\d\d[ T]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d(?::?\d\d)?)?")
_CUT = re.compile(r"\s+\|\s+(head|tail)\s+-(\d+)$")
#: Per-run values a sample cannot fix: a plan's checksum (it covers the time the plan was made).
_PER_RUN = (re.compile(r"sha256:[0-9a-f]{64}"),)


@dataclass(frozen=True)
class Command:
    """One command of a sample: its words, whether it is shown, which of its lines (``head -N``:
    the first N, ``tail -N``: the last N)."""

    line: str
    shown: bool
    cut: tuple[str, int] | None
    #: What the command reads on stdin: ``y`` to every question, or nothing (``< /dev/null``).
    stdin: str = "y\n"

    @classmethod
    def parse(cls, text: str) -> Command:
        text = text.strip()
        if text.startswith("!"):  # SQL run on the story's database between commands, never shown
            return cls(text[1:].strip(), False, None, "")
        shown = not text.startswith("@")
        text = text.lstrip("@")
        cut = _CUT.search(text)
        if cut:
            text = text[: cut.start()]
        stdin = "y\n"
        if text.endswith(" < /dev/null"):
            text, stdin = text.removesuffix(" < /dev/null"), ""
        return cls(text, shown, (cut.group(1), int(cut.group(2))) if cut else None, stdin)

    @property
    def is_sql(self) -> bool:
        return not self.line.startswith("controller-audit")

    def lines(self, output: str) -> list[str]:
        """The lines of ``output`` shown (``...`` where some were cut)."""
        lines = output.splitlines()
        if self.cut is None or len(lines) <= self.cut[1]:
            return lines
        where, count = self.cut
        return [*lines[:count], "..."] if where == "head" else ["...", *lines[-count:]]


@dataclass(frozen=True)
class Sample:
    """A marker and the block under it, where they are."""

    page: str
    index: int
    story: str
    commands: tuple[Command, ...]
    body: str

    @property
    def id(self) -> str:
        return f"{self.page}#{self.index}"


def samples(page: str) -> list[Sample]:
    """Every sample block of ``page``, in order."""
    text = (ROOT / page).read_text(encoding="utf-8")
    return [Sample(page, i, m.group("story") or "demo", tuple(Command.parse(c) for c in m.group("commands").split(" ; ")),
                   m.group("body"))
            for i, m in enumerate(_MARKER.finditer(text))]


def all_samples() -> list[Sample]:
    return [s for page in PAGES for s in samples(page)]


def comparable(text: str) -> str:
    """``text`` with what differs from run to run made the same: uuids (numbered by first
    appearance), durations, the current time."""
    seen: dict[str, str] = {}
    text = _UUID.sub(lambda m: seen.setdefault(m.group(0), f"<uuid{len(seen) + 1}>"), text)
    text = _NOW.sub("<now>", text)
    text = _SECONDS_SERIES.sub(r"\1 <n>", _EPOCH.sub("<now>", text))
    text = _SECONDS_MEMBER.sub(r"\1<n>", text)
    for per_run in _PER_RUN:
        text = per_run.sub("<per-run>", text)
    return _DURATION.sub("<duration>", text)


@contextmanager
def _inside(directory: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(before)


def render(sample: Sample, dsn: str, workdir: Path, shown_as: Callable[[str], str],
           names: Mapping[str, str] | None = None) -> str:
    """Run the sample's commands (in ``workdir``, against ``dsn``) and return its block's text;
    ``{name}`` in a command is the story's ``names[name]`` (a uuid the story made, say)."""
    import psycopg
    from click.testing import CliRunner

    from auditor.cli import cli

    out = []
    # Only the story's database and the sample's width: no PG* or CONTROLLER_AUDIT_* of the shell.
    env: dict[str, str | None] = {name: None for name in os.environ
                                  if name.startswith(("PG", "CONTROLLER_AUDIT_", "DEIS_DATABASE_"))}
    env.update(DATABASE_URL=dsn, COLUMNS=COLUMNS)
    with _inside(workdir):
        for command in sample.commands:
            line = command.line
            for key, value in (names or {}).items():
                line = line.replace("{" + key + "}", value)
            if command.is_sql:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(line.encode())
                continue
            words = shlex.split(line)
            result = CliRunner().invoke(cli, words[1:], env=env, input=command.stdin, catch_exceptions=False,
                                       prog_name="controller-audit")
            assert "Traceback" not in result.output, f"{sample.id}: {command.line}: {result.output}"
            if not command.shown:
                continue
            typed = f"{line} < /dev/null" if not command.stdin else line
            out.append("\n".join([f"$ {typed}", *command.lines(shown_as(result.output))]))
    return "\n\n".join(out) + "\n"


def write_block(sample: Sample, body: str) -> None:
    """Replace the block of ``sample`` in its page with ``body``."""
    path = ROOT / sample.page
    text = path.read_text(encoding="utf-8")
    matches = list(_MARKER.finditer(text))
    match = matches[sample.index]
    start, end = match.span("body")
    path.write_text(text[:start] + body + text[end:], encoding="utf-8")


def main(argv: list[str]) -> int:
    """``python -m tests.samples --write``: regenerate every sample (runs tests/test_samples.py)."""
    import pytest

    if argv != ["--write"]:
        print("usage: python -m tests.samples --write", file=sys.stderr)
        return 2
    os.environ[WRITE_ENV] = "1"
    return int(pytest.main(["-q", "-p", "no:cacheprovider", str(ROOT / "tests" / "test_samples.py")]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
