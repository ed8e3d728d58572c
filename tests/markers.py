"""What the test bed's markers mean: ``compat`` (runs on every major) and ``pg(spec)`` (version gate).

Both are applied by ``tests/conftest.py``; this module holds the one list and the one parser.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Tests that run on every major of the matrix (``pytest -m compat --pg-major N``): what depends
#: on the server's version or features (catalogues, JSON functions, sha256(), locks, terminated
#: backends, psql).  Paths are relative to the repository; one ending in ``/`` takes everything
#: under it.  A single test opts in with ``@pytest.mark.compat`` instead; every test that uses
#: the ``standby`` fixture (a real hot standby) is in too.
COMPAT = (
    "tests/checks/",                            # every check, on every schema generation
    "tests/repairs/test_workflow.py",           # plan -> apply -> undo, plan -> sql -> psql
    "tests/repairs/test_from_checks.py",        # each planner plans exactly its checks' findings
    "tests/reliability/test_terminated_apply.py",
    "tests/reliability/test_commit_outcome.py",  # a lost answer to COMMIT, a never-confirming standby
    "tests/reliability/test_property_loop.py",  # the ci profile
    "tests/test_streamed.py",                   # server-rendered findings (sha256 from 11, JSON from 16)
    "tests/test_detect.py",                     # catalogue queries
    "tests/test_schema_fixtures.py",            # the schemas load and match the reference dumps
    "tests/test_server_support.py",             # the server is accepted; info states its support
)
#: Fixtures that put a test in the ``compat`` set wherever it is.
COMPAT_FIXTURES = ("standby",)


def is_compat(path: Path, fixturenames: Iterable[str]) -> bool:
    """Whether the test in ``path`` using ``fixturenames`` belongs to the ``compat`` set."""
    try:
        where = path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return False
    listed = any(where == p or (p.endswith("/") and where.startswith(p)) for p in COMPAT)
    return listed or any(name in COMPAT_FIXTURES for name in fixturenames)


_OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
              "==": operator.eq, "!=": operator.ne}
_SPEC = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*(\d+)(?:\.(\d+))?\s*$")


def version_matches(spec: str, server_version_num: int) -> bool:
    """Whether ``server_version_num`` (e.g. 140023) satisfies ``spec`` (e.g. ``">= 16"``, ``"< 9.6"``).

    A spec names a major (``16``) or, before 10, a major and minor (``9.6``); minor releases
    of that major all match it.
    """
    match = _SPEC.match(spec)
    if not match:
        raise pytest.UsageError(f"bad pg marker {spec!r}: expected e.g. '>= 16' or '< 9.6'")
    op, major, minor = match.group(1), int(match.group(2)), int(match.group(3) or 0)
    if major < 10:
        bound, number = major * 10000 + minor * 100, server_version_num // 100 * 100
    else:
        bound, number = major * 10000, server_version_num // 10000 * 10000
    return _OPERATORS[op](number, bound)
