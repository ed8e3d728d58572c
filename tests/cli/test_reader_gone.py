"""A reader that goes away (``controller-audit check | head -1``): the command still exits with its
own code, never a broken pipe's, and says nothing about the pipe."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys

import pytest

from tests.repairs.helpers import story


def _tool(args: list[str], cwd: str, stdout: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL", "DEIS_DATABASE"))}
    return subprocess.Popen([sys.executable, "-m", "auditor", *args], cwd=cwd, env=env, stdout=stdout,
                            stderr=subprocess.PIPE)


@pytest.mark.parametrize("form", ["table", "json", "nagios", "prometheus"])
def test_check_keeps_its_exit_code_when_the_reader_goes_away(hephy_db, tmp_path, form):
    """Every format, with the output closed before the first line."""
    story(hephy_db.controller())
    # Warnings, no critical finding: a job alerting on critical findings alone expects 0 (a broken
    # pipe used to exit 1, which reads as "warnings at or above --fail-on").
    args = ["check", "--dsn", hephy_db.dsn, "--format", form, "--min-severity", "info", "--fail-on", "critical"]
    whole = _tool(args, str(tmp_path), subprocess.DEVNULL)
    assert whole.wait(timeout=120) == 0
    gone = _tool(args, str(tmp_path), subprocess.PIPE)
    assert gone.stdout is not None and gone.stderr is not None
    gone.stdout.close()  # the reader is gone before the first line
    stderr = gone.stderr.read().decode()
    assert gone.wait(timeout=120) == 0, stderr
    assert [line for line in stderr.splitlines() if not line.startswith("controller-audit: database ")] == []


def test_explain_keeps_its_exit_code_when_the_reader_goes_away(hephy_db, tmp_path):
    story(hephy_db.controller())
    gone = _tool(["explain", "web", "--dsn", hephy_db.dsn], str(tmp_path), subprocess.PIPE)
    assert gone.stdout is not None and gone.stderr is not None
    gone.stdout.close()
    stderr = gone.stderr.read().decode()
    assert gone.wait(timeout=120) == 0, stderr


@pytest.mark.skipif(not hasattr(fcntl, "F_SETPIPE_SZ"), reason="needs Linux pipes (F_SETPIPE_SZ)")
def test_check_keeps_its_exit_code_when_the_reader_goes_away_part_way_through_the_findings(hephy_db, tmp_path):
    """The JSON report's findings are copied onto standard output by the kernel (``os.sendfile``): a
    reader that goes away in the middle of them (``check --format json | head -c N``) still leaves
    the audit's own code, not a broken pipe's (the copy's EPIPE used to reach click, which exits 1)."""
    ctl = hephy_db.controller()
    with ctl.batch():
        for i in range(40):  # ~100 info findings: far more than the pipe holds
            app = ctl.create_app(f"app-{i}")
            app.push()
            app.push()
            app.config_set(N=str(i))
    args = ["check", "--dsn", hephy_db.dsn, "--format", "json", "--min-severity", "info", "--fail-on", "critical"]
    assert _tool(args, str(tmp_path), subprocess.DEVNULL).wait(timeout=120) == 0
    read, write = os.pipe()
    fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 4096)  # the copy is still running when the reader goes
    gone = _tool(args, str(tmp_path), write)
    os.close(write)
    seen = b""
    marker = b'"findings": ['
    while marker not in seen or len(seen) < seen.index(marker) + len(marker) + 1024:  # into the findings
        chunk = os.read(read, 1024)
        assert chunk, seen[-200:]
        seen += chunk
    os.close(read)
    assert gone.stderr is not None
    stderr = gone.stderr.read().decode()
    assert gone.wait(timeout=120) == 0, stderr
    assert [line for line in stderr.splitlines() if not line.startswith("controller-audit: database ")] == []


@pytest.mark.parametrize("closed", [1, 2])
@pytest.mark.parametrize("command", [["check", "--format", "table"], ["check", "--format", "json"],
                                     ["explain", "web"], ["plan", "-o", "-"]])
def test_a_closed_standard_descriptor_keeps_the_exit_code(hephy_db, tmp_path, closed, command):
    """``check >&-`` or a cron line's ``2>&-``: Python starts with ``sys.stdout`` (``sys.stderr``)
    ``None``; the command still runs to its own code (the other stream intact), never an internal
    error."""
    story(hephy_db.controller())
    args = [*command, "--dsn", hephy_db.dsn]
    whole = _tool(args, str(tmp_path), subprocess.PIPE)
    out, err = whole.communicate(timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL", "DEIS_DATABASE"))}
    keep = subprocess.PIPE
    shut = subprocess.Popen([sys.executable, "-m", "auditor", *args], cwd=str(tmp_path), env=env,
                            stdout=keep, stderr=keep, preexec_fn=lambda: os.close(closed))
    shut_out, shut_err = shut.communicate(timeout=120)
    assert shut.returncode == whole.returncode, (shut_out + shut_err).decode()
    if closed == 1:
        assert shut_out == b""
        # the same messages (a plan's checksum differs: its file records when it was made)
        assert [line.split("sha256:")[0] for line in shut_err.decode().splitlines()] == [
            line.split("sha256:")[0] for line in err.decode().splitlines()]
    else:
        assert shut_err == b""
        assert len(shut_out) > 0 and b"internal error" not in shut_out
