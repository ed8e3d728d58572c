"""Issue #15, case 3: ``apply`` and ``undo`` execute what psycopg composes, with no sqlglot at all.

The commands run in a fresh interpreter in which ``import sqlglot`` fails, so nothing on the write
path (statements, locks, checks, invariants, the undo file) can go through its parser or generator.
Only ``plan sql`` / ``undo sql`` use it, to lay the statements out for review.
"""

from __future__ import annotations

import subprocess
import sys

from tests.repairs.helpers import contents, story

#: Run the command line with sqlglot unimportable (``None`` in ``sys.modules`` makes the import fail).
BLOCKED = ("import sys; sys.modules['sqlglot'] = None; from auditor.cli import main; "
           "main(sys.argv[1:], prog_name='controller-audit')")


def cli_without_sqlglot(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKED, *args], capture_output=True, text=True, check=False,
                          timeout=300)


def test_sqlglot_is_really_blocked():
    done = subprocess.run([sys.executable, "-c", "import sys; sys.modules['sqlglot'] = None; import sqlglot"],
                          capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "import of sqlglot halted" in done.stderr


def test_plan_apply_and_undo_run_without_sqlglot(hephy_db, tmp_path):
    story(hephy_db.controller())
    before = contents(hephy_db)
    plan, undo = str(tmp_path / "p.json"), str(tmp_path / "u.json")
    for args, codes in ((["check", "--format", "json"], (1, 2)), (["plan", "-o", plan], (0,)),
                        (["apply", plan, "--yes", "--rehearse"], (0,)), (["apply", plan, "--yes", "--undo-file", undo], (0,)),
                        (["check", "--fail-on", "info", "--check", "shared-config"], (0,)), (["undo", undo, "--yes"], (0,))):
        done = cli_without_sqlglot(*args, "--dsn", hephy_db.dsn)
        assert done.returncode in codes, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and "sqlglot" not in done.stderr
    assert contents(hephy_db) == before
