"""The demo, end to end, as a newcomer runs it: real commands, clean ending, nothing left behind."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg
import pytest

STEPS = ("Audit the whole database", "fails with a duplicate key", "what did it leave behind", "was rolled back",
         "Plan the repairs", "Review the plan", "SQL script", "Rehearse", "Apply for real",
         "Audit again", "a new plan is empty")


def _demo(tmp_path: Path, *args: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, TMPDIR=str(tmp_path))
    env.pop("XDG_RUNTIME_DIR", None)
    return subprocess.Popen([sys.executable, "-m", "auditor", "demo", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)


@pytest.fixture
def tmp_path():
    """A short private TMPDIR (unix socket paths must stay under ~100 characters)."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="cad-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _servers_under(path: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["name"] == "postgres" and str(path) in cmdline:
            found.append(proc)
    return found


@pytest.mark.parametrize("generation", ["hephy", "deis-old"])
def test_demo_runs_to_a_clean_ending_and_leaves_nothing(tmp_path, generation):
    proc = _demo(tmp_path, "--generation", generation)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    for step in STEPS:
        assert step in out, f"step {step!r} missing from the demo"
    assert "0 critical, 0 warning, 0 info" in out
    assert "nothing to repair" in out and "Traceback" not in out
    assert list(tmp_path.iterdir()) == [] and _servers_under(tmp_path) == []


def test_demo_on_a_given_server_drops_its_database(pg_server, tmp_path):
    proc = _demo(tmp_path, "--dsn", pg_server.admin_dsn, "--generation", "deis")
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    with psycopg.connect(pg_server.admin_dsn) as conn:
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'controller_demo_%'").fetchone()[0]
    assert left == 0


def test_interrupted_demo_stops_the_server_and_removes_its_files(tmp_path):
    proc = _demo(tmp_path)
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        if "Audit the whole database" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    for _ in range(50):
        if not _servers_under(tmp_path) and not list(tmp_path.iterdir()):
            break
        time.sleep(0.1)
    assert _servers_under(tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def test_keep_leaves_a_database_to_explore(tmp_path):
    proc = _demo(tmp_path, "--keep")
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    dsn = shlex.split(re.search(r"export DATABASE_URL=(.+)$", out, re.MULTILINE).group(1))[0]
    pid_file = Path(re.search(r"head -1 (\S+postmaster\.pid)", out).group(1))
    try:
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT count(*) FROM api_app").fetchone()[0] == 7
    finally:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, signal.SIGINT)
        psutil.Process(pid).wait(30)
