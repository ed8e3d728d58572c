"""``apply`` and ``undo`` show their steps on a terminal (stderr a pseudo-terminal here), stay
silent otherwise, and ``--rehearse`` asks nothing."""

from __future__ import annotations

import os
import pty
import subprocess

from tests.helpers import messages
from tests.reliability.faults import CLI
from tests.repairs.helpers import make_plan, story


def _on_a_terminal(*args: str) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal and no stdin: (exit code, stdout, stderr)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([CLI, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    out = proc.stdout.read().decode()
    proc.stdout.close()
    return proc.wait(timeout=120), out, seen.decode(errors="replace")


def test_apply_and_undo_show_their_steps_on_a_terminal(hephy_db, tmp_path):
    story(hephy_db.controller())
    make_plan(hephy_db, tmp_path / "p.json")
    code, out, err = _on_a_terminal("apply", str(tmp_path / "p.json"), "--dsn", hephy_db.dsn, "--rehearse")
    assert code == 0, err  # no question asked, though stdin has no answer and --yes is not given
    assert "rolled back: nothing was changed" in out
    for step in ("loading ", "locking the rows", "checking every action against the database", "changing rows",
                 "verifying the invariants"):
        assert f"controller-audit: apply: {step}" in err, err
    assert "writing the undo file" not in err  # a rehearsal writes none
    code, out, err = _on_a_terminal("apply", str(tmp_path / "p.json"), "--dsn", hephy_db.dsn, "--yes",
                                    "--undo-file", str(tmp_path / "u.json"))
    assert code == 0, err
    assert "controller-audit: apply: writing the undo file" in err and "controller-audit: apply: committing" in err
    code, out, err = _on_a_terminal("undo", str(tmp_path / "u.json"), "--dsn", hephy_db.dsn, "--yes")
    assert code == 0, err
    assert "controller-audit: undo: changing rows" in err and "undone on " in out


def test_no_progress_when_stderr_is_not_a_terminal(hephy_db, tmp_path):
    story(hephy_db.controller())
    make_plan(hephy_db, tmp_path / "p.json")
    done = subprocess.run([CLI, "apply", str(tmp_path / "p.json"), "--dsn", hephy_db.dsn, "--yes"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and messages(done.stderr) == ""
