"""The JSON report's spools cannot be written (``/tmp`` full, a file size limit) while the findings
still stream: one line and exit 3, not a process that hangs with the statement running and its
snapshot held (the suspended stream kept the connection's lock, which the rollback then waited for)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest


def _limited() -> None:
    """In the child: files of at most 64 KiB (the spools; the pipes are not files)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="needs RLIMIT_FSIZE")
@pytest.mark.parametrize("half", ["first", "second"])
def test_a_spool_that_cannot_be_written_mid_stream_is_one_line(hephy_db, tmp_path, half):
    """Either connection's spool (``check`` reads the checks from shared-build on with a second one,
    whose thread spools its own lines): more findings of one severity than one batch of a spool
    (2,000), written mid-stream; orphan configs are the first connection's, invalid JSON the second's."""
    web = hephy_db.controller().create_app("web")
    web.push()
    with web.ctl.batch():
        for i in range(2100):
            if half == "first":
                web.orphan_config(N=str(i))
            else:
                web.config_set(N=str(i))
    if half == "second":
        hephy_db.conn.execute("UPDATE api_config SET \"values\" = '{not json'")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL", "DEIS_DATABASE"))}
    tool = subprocess.Popen(
        [sys.executable, "-m", "auditor", "check", "--dsn", hephy_db.dsn, "--format", "json", "--min-severity", "info"],
        cwd=tmp_path, env={**env, "TMPDIR": str(tmp_path)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=_limited)
    try:
        _, stderr = tool.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        tool.kill()
        tool.communicate()
        pytest.fail("check hung after its spool could not be written")
    lines = [line for line in stderr.decode().splitlines() if not line.startswith("controller-audit: database ")]
    assert tool.returncode == 3, lines
    assert lines == ["controller-audit: file error: [Errno 27] File too large"]
