"""A process killed while writing a plan, undo or report file never leaves a truncated file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from auditor.core.fileio import atomic_write

_WRITER = """
import json, sys
from auditor.core.fileio import atomic_write
payload = json.dumps({"rows": ["x" * 200] * 200000, "complete": True})
for _ in range(1000):
    atomic_write(sys.argv[1], payload)
"""


def test_killed_writer_leaves_old_or_new_file_never_a_torn_one(tmp_path):
    target = tmp_path / "plan.json"
    atomic_write(target, json.dumps({"rows": [], "complete": True}))
    for delay in (0.05, 0.15, 0.3, 0.5, 0.8):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)])
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        document = json.loads(target.read_text())  # a torn file would not parse
        assert document["complete"] is True
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "plan.json"]
    # Temp files of a killed writer may remain, but they are never the target name.
    assert all(name.startswith(".plan.json.") and name.endswith(".tmp") for name in leftovers)


def test_atomic_write_replaces_and_keeps_mode(tmp_path):
    target = tmp_path / "report.prom"
    atomic_write(target, "a 1\n", mode=0o600)
    atomic_write(target, "a 2\n", mode=0o600)
    assert target.read_text() == "a 2\n"
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in tmp_path.iterdir()] == ["report.prom"]
