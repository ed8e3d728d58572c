"""Every file the tool writes goes through one writer (issue 13, cases 1 and 4).

A regular file is replaced atomically; a symbolic link is followed and its target replaced (the
link stays); a FIFO or a character device is written through, never replaced; a directory or a
socket is refused with one line.  Never the real ``/dev/null``: the FIFO, the link and the
device are made in the test's temporary directory.  Reports that can hold data values are 0600.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from repairs.planfile import load_plan
from repairs.undofile import load_undo
from tests.helpers import gone_dsn, messages
from tests.reliability.faults import CLI


def damaged(db) -> None:
    web = db.controller().create_app("web")
    web.push()
    web.orphan_build()
    web.config_set(DATABASE_URL="postgres://app:TopSecret99@db/app")
    db.conn.execute("UPDATE api_config SET tags = %s WHERE uuid = %s",
                    ('{"DATABASE_URL": "postgres://app:TopSecret99@db/app"', web.current().config))


def _plan(run, db) -> None:
    assert run("plan", "--dsn", db.dsn, "-o", "made.plan").exit_code == 0


#: name -> (writes its file at PATH, exit codes it ends with, how to check what was written)
WRITERS: dict[str, tuple[Callable, set[int], Callable[[bytes], object]]] = {
    "check json": (lambda run, db, path: run("check", "--dsn", db.dsn, "--format", "json", "-o", path),
                   {2}, lambda data: json.loads(data)["version"]),
    "check table": (lambda run, db, path: run("check", "--dsn", db.dsn, "-o", path),
                    {2}, lambda data: data.decode().index("CRITICAL - app web")),
    "check prometheus": (lambda run, db, path: run("check", "--dsn", db.dsn, "--format", "prometheus", "-o", path),
                         {2}, lambda data: data.decode().index("controller_audit_up{")),
    "check prometheus failed": (lambda run, db, path: run("check", "--dsn", gone_dsn(db.dsn), "--format",
                                                          "prometheus", "-o", path),
                                {3}, lambda data: data.decode().index("controller_audit_last_run_success{")),
    "plan": (lambda run, db, path: run("plan", "--dsn", db.dsn, "-o", path),
             {0}, lambda data: json.loads(data)["format"] == "controller-audit-plan" or None),
    "plan sql": (lambda run, db, path: (_plan(run, db), run("plan", "sql", "made.plan", "-o", path))[1],
                 {0}, lambda data: data.decode().index("COMMIT;")),
    "baseline": (lambda run, db, path: run("baseline", "create", path, "--dsn", db.dsn),
                 {0}, lambda data: json.loads(data)["entries"]),
    "undo file": (lambda run, db, path: (_plan(run, db), run("apply", "made.plan", "--dsn", db.dsn, "--yes",
                                                              "--undo-file", path))[1],
                  {0}, lambda data: json.loads(data)["format"] == "controller-audit-undo" or None),
}


def _written(run, db, name: str, path: Path):
    write, codes, understood = WRITERS[name]
    result = write(run, db, str(path))
    assert result.exit_code in codes, (name, result.output)
    return result, understood


@pytest.mark.parametrize("name", WRITERS)
def test_a_fifo_is_written_through_never_replaced(hephy_db, run, tmp_path, name):
    damaged(hephy_db)
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader is there: the writer does not wait
    try:
        _, understood = _written(run, hephy_db, name, fifo)
        try:
            data = os.read(reader, 1 << 20)
        except BlockingIOError:
            data = b""
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), f"{name} replaced the FIFO"
    assert data, f"{name}: the FIFO's reader got nothing"
    assert understood(data) is not None


@pytest.mark.parametrize("name", [w for w in WRITERS if w != "undo file"])
def test_a_symlink_is_followed_and_its_target_replaced(hephy_db, run, tmp_path, name):
    damaged(hephy_db)
    real = tmp_path / "collector"
    real.mkdir()
    (real / "audit.out").write_text("old\n")
    link = tmp_path / "audit.out"
    link.symlink_to(real / "audit.out")
    _, understood = _written(run, hephy_db, name, link)
    assert link.is_symlink() and os.readlink(link) == str(real / "audit.out"), f"{name} replaced the link"
    assert understood((real / "audit.out").read_bytes()) is not None
    assert sorted(p.name for p in real.iterdir()) == ["audit.out"]  # written atomically: no temp file left
    if name == "plan":
        assert load_plan(link).actions


def test_an_undo_file_link_is_followed_but_never_overwrites(hephy_db, run, tmp_path):
    """An undo file is never overwritten (it may be the only way back of an earlier apply): a link
    to an existing file is refused, a dangling link creates its target."""
    damaged(hephy_db)
    real = tmp_path / "undo"
    real.mkdir()
    (real / "taken.json").write_text("old\n")
    (tmp_path / "taken.json").symlink_to(real / "taken.json")
    write, _, understood = WRITERS["undo file"]
    refused = write(run, hephy_db, str(tmp_path / "taken.json"))
    assert refused.exit_code == 4 and "undo file exists" in refused.stderr
    assert (real / "taken.json").read_text() == "old\n"
    link = tmp_path / "fresh.json"
    link.symlink_to(real / "fresh.json")
    assert write(run, hephy_db, str(link)).exit_code == 0
    assert link.is_symlink() and understood((real / "fresh.json").read_bytes()) is not None
    assert load_undo(link).actions


def test_a_dangling_symlink_creates_its_target(hephy_db, run, tmp_path):
    damaged(hephy_db)
    link = tmp_path / "audit.json"
    link.symlink_to(tmp_path / "real.json")
    _written(run, hephy_db, "check json", link)
    assert link.is_symlink() and json.loads((tmp_path / "real.json").read_text())["version"] == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a character device needs root")
@pytest.mark.parametrize("name", WRITERS)
def test_a_character_device_is_written_through_never_replaced(hephy_db, run, tmp_path, name):
    damaged(hephy_db)
    device = tmp_path / "null"
    os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a null device of our own
    _written(run, hephy_db, name, device)
    st = os.lstat(device)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3), f"{name} replaced the device"


def test_dash_is_standard_output(hephy_db, run, tmp_path):
    damaged(hephy_db)
    result = run("check", "--dsn", hephy_db.dsn, "--format", "json", "-o", "-")
    assert json.loads(result.stdout)["version"] == 1
    planned = run("plan", "--dsn", hephy_db.dsn, "-o", "-")
    assert planned.exit_code == 0
    assert json.loads(planned.stdout)["format"] == "controller-audit-plan"  # the summary went to stderr
    assert messages(planned.stderr).startswith("plan -: ")
    assert not [p for p in tmp_path.iterdir() if p.name != "made.plan"]


@pytest.mark.parametrize("name", ["check json", "plan", "baseline"])
def test_a_directory_or_socket_is_refused_with_one_line(hephy_db, run, tmp_path, name):
    damaged(hephy_db)
    directory = tmp_path / "reports"
    directory.mkdir()
    sock_path = tmp_path / "s.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        for path, problem in ((directory, "is a directory"), (sock_path, "is a socket")):
            result = WRITERS[name][0](run, hephy_db, str(path))
            assert result.exit_code == 3, (name, path, result.output)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("controller-audit: ") and problem in lines[0], lines
        assert stat.S_ISSOCK(os.lstat(sock_path).st_mode) and directory.is_dir()
    finally:
        sock.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_reports_with_data_values_are_private(hephy_db, run, tmp_path):
    """Case 4: the JSON report quotes the first 80 characters of an invalid config value."""
    damaged(hephy_db)
    assert run("check", "--dsn", hephy_db.dsn, "--format", "json", "-o", "r.json").exit_code == 2
    assert "TopSecret99" in (tmp_path / "r.json").read_text()  # the evidence excerpt
    assert _mode(tmp_path / "r.json") == 0o600
    assert run("check", "--dsn", hephy_db.dsn, "-o", "r.txt").exit_code == 2
    assert _mode(tmp_path / "r.txt") == 0o600
    old = tmp_path / "old.json"  # a report an older version left world-readable
    old.write_text("{}")
    old.chmod(0o644)
    run("check", "--dsn", hephy_db.dsn, "--format", "json", "-o", str(old))
    assert _mode(old) == 0o600
    # The Prometheus textfile holds counts only and node_exporter must read it.
    run("check", "--dsn", hephy_db.dsn, "--format", "prometheus", "-o", "m.prom")
    assert _mode(tmp_path / "m.prom") == 0o644
    # Plans, scripts and undo files were private already; they stay so.
    run("plan", "--dsn", hephy_db.dsn, "-o", "p.plan")
    run("plan", "sql", "p.plan", "-o", "p.sql")
    assert _mode(tmp_path / "p.plan") == 0o600 and _mode(tmp_path / "p.sql") == 0o600


def test_a_descriptor_path_writes_that_descriptor(hephy_db, tmp_path):
    """``-o /dev/fd/1`` under a shell's ``>> log``: the report is appended, the log kept."""
    damaged(hephy_db)
    log = tmp_path / "audit.log"
    log.write_text("earlier run\n")
    with log.open("a") as appended:
        done = subprocess.run([CLI, "check", "--dsn", hephy_db.dsn, "--format", "json", "-o", "/dev/fd/1"],
                              stdout=appended, stderr=subprocess.PIPE, text=True, check=False, timeout=300)
    assert done.returncode == 2, done.stderr
    text = log.read_text()
    assert text.startswith("earlier run\n{") and json.loads(text.split("\n", 1)[1])["version"] == 1


#: More writers of a file given by -o, beside :data:`WRITERS` (the plan and undo file are made first).
READERS_OUT: dict[str, Callable] = {
    "explain": lambda run, db, path: run("explain", "web", "--dsn", db.dsn, "-o", path),
    "plan show": lambda run, db, path: run("plan", "show", "made.plan", "-o", path),
    "undo sql": lambda run, db, path: run("undo", "sql", "made.undo.json", "-o", path),
}


@pytest.mark.parametrize("kind", ["undo", "plan"])
@pytest.mark.parametrize("name", [*(w for w in WRITERS if w != "undo file"), *READERS_OUT])
def test_a_plan_or_undo_file_is_never_replaced_by_another_output(make_db, run, tmp_path, kind, name):
    """An undo file is the only way back of a committed repair, and a plan what was reviewed:
    `check -o`, `plan sql -o`, `baseline create`... naming one are refused with one line (exit 3),
    the file byte for byte as it was; only `plan -o` replaces a plan (it used to replace either)."""
    spent = make_db(28)  # a database the apply repairs, so that the one written on stays damaged
    damaged(spent)
    _plan(run, spent)
    assert run("apply", "made.plan", "--dsn", spent.dsn, "--yes", "--undo-file", "made.undo.json").exit_code == 0
    db = make_db(28)
    damaged(db)
    target = tmp_path / f"kept.{kind}"
    target.write_bytes((tmp_path / ("made.undo.json" if kind == "undo" else "made.plan")).read_bytes())
    before = target.read_bytes()
    write = READERS_OUT[name] if name in READERS_OUT else WRITERS[name][0]
    result = write(run, db, str(target))
    if kind == "plan" and name == "plan":
        assert result.exit_code == 0, result.output
        assert load_plan(target).actions and target.read_bytes() != before
        return
    assert result.exit_code == 3, (name, result.output)
    what = ("is an undo file (the record apply keeps to take its repair back), which is never replaced"
            if kind == "undo" else "is a plan file, which only plan -o replaces")
    assert messages(result.stderr).splitlines()[-1] == (
        f"controller-audit: bad output: {target} {what}; nothing was written: give another path")
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp file left


@pytest.mark.parametrize("name", [w for w in WRITERS if w != "undo file"])
def test_an_empty_path_is_refused_with_one_line(hephy_db, run, tmp_path, name):
    """``-o ""`` (``-o "$UNSET"``): one line, exit 3, nothing written anywhere (it used to be a
    ``file error`` naming a temporary file in the parent directory renamed onto the working one)."""
    damaged(hephy_db)
    before = sorted(p.name for p in tmp_path.iterdir())
    parent = sorted(p.name for p in tmp_path.parent.iterdir())
    result = WRITERS[name][0](run, hephy_db, "")
    assert result.exit_code == 3, (name, result.output)
    assert messages(result.stderr).splitlines()[-1] == (
        "controller-audit: bad output: the path is empty; give a file path, - for standard output, or a FIFO or device")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "made.plan") == before
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == parent
