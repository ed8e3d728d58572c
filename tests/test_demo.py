"""The demo, end to end, as a newcomer runs it: real commands, a short story that ends clean,
``--keep`` leaving a damaged database with the lines that use and remove it, nothing else left."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shlex
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from auditor.demo import write_story
from auditor.demo.presenter import Cut, Presenter, StepFailed, clip, excerpt
from auditor.demo.walkthrough import README_SECTIONS
from tests.testbed import server_binary

ROOT = Path(__file__).resolve().parents[1]
#: The story in few lines (150 before the first check's table showed what --min-severity left
#: unlisted: its footer, blank line and summary, and the alert its summary line).
MAX_LINES = 160
#: The story's commands, in order (each one ran for real: its exit code follows it).
STORY = (
    "check --fail-on never", "baseline create known.json",
    "check --baseline known.json --format prometheus --label database=demo -o controller_audit.prom",
    "check --baseline known.json", "explain search", "blast-radius config ", "plan -o repair.plan ",
    "plan show repair.plan", "plan sql repair.plan -o repair.sql", "apply repair.plan --yes", "check --fail-on info",
    "undo repair.plan.undo.json --yes", "check --baseline known.json", "apply repair.plan --yes",
    "check --fail-on info",
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
MARKER = re.compile(r"^\((\d+) more lines in (\S+)\)$", re.MULTILINE)


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, TMPDIR=str(tmp_path))
    for name in ("XDG_RUNTIME_DIR", "COLUMNS", "LINES"):
        env.pop(name, None)
    return env


def _demo(tmp_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "auditor", "demo", *args], env=_env(tmp_path), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _demo_on_a_terminal(tmp_path: Path, columns: int, *args: str) -> tuple[int, str]:
    """Run the demo with a pseudo-terminal ``columns`` wide as its stdout; (exit code, output)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "auditor", "demo", *args], env=_env(tmp_path),
                            stdout=follower, stderr=follower, stdin=subprocess.DEVNULL)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the demo closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(timeout=240), b"".join(chunks).decode().replace("\r\n", "\n")


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


def _steps(out: str) -> list[tuple[str, int, str]]:
    """(command, exit code, output) of each step, in order."""
    found = re.findall(r"^\$ controller-audit (.*?)   # exit code (\d+)\n(.*?)(?=^# |\n\n|\Z)", out, re.M | re.S)
    return [(command, int(code), output) for command, code, output in found]


def _assert_the_story(out: str, tmp_path: Path) -> Path:
    """The story's commands in order, short and readable, ending clean; returns its files' directory."""
    assert "Traceback" not in out
    assert len(out.splitlines()) <= MAX_LINES, f"{len(out.splitlines())} lines"
    steps = _steps(out)
    assert len(steps) == len(STORY)
    for (command, _, _), expected in zip(steps, STORY, strict=True):
        assert command.startswith(expected), (command, expected)
    codes = [code for _, code, _ in steps]
    assert codes == [0, 0, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0]
    # Cron: the alert names tonight's damage only (search's release order), the rest accepted.
    alert = steps[3][2]
    assert re.findall(r"^(CRITICAL|WARNING) - app (\S+)", alert, re.M) == [("CRITICAL", "search")]
    assert "release-order" in alert and re.search(r"^\d+ known findings? suppressed by baseline known.json", alert, re.M)
    # Repaired, undone (the same alert again), repaired again: the database ends clean.
    assert steps[10][2].startswith("no findings (")
    assert steps[-1][2].startswith("no findings (")
    assert "the database ends clean" in out
    # The whole outputs and files are kept where the cuts say, and only there.
    workdir = Path(re.search(r"^Whole outputs and files go to (\S+?)[.;]", out, re.M).group(1))
    assert workdir.parent == tmp_path and workdir.is_dir()

    def timeless(name: str) -> str:
        return re.sub(r"[0-9.]+ s\)", "", (workdir / name).read_text())

    assert timeless("check-undone.txt") == timeless("check-alert.txt")  # undone: tonight's damage is back
    markers = MARKER.findall(out)
    assert len(markers) >= 5
    for hidden, where in markers:
        assert Path(where).parent == workdir and len(Path(where).read_text().splitlines()) > int(hidden)
    sql = (workdir / "repair.sql").read_text().splitlines()
    assert len(sql) > 100 and "\n".join(f"  {line[:60]}" for line in sql[:4]) in re.sub(r"(?m)^(  .{60}).*$", r"\1", out)
    assert "controller_audit_findings{database=\"demo\",check=\"release-order\",severity=\"critical\"} 1" in out
    assert (workdir / "repair.plan.undo.json").exists() and f"(the undo file: {workdir}/repair.plan.undo.json)" in out
    # The names newcomers read: no app named like the tables; where to read on; --keep.
    assert not re.search(r"\bapp api\b", out) and "app payments" in out
    assert all(f'"{section}"' in out for section in README_SECTIONS)
    assert "demo --keep" in out
    return workdir


@pytest.mark.parametrize("generation", ["hephy", "deis-old"])
def test_demo_tells_the_story_in_few_lines_and_ends_clean(tmp_path, generation):
    if generation == "hephy":
        proc = _demo(tmp_path)
        out, _ = proc.communicate(timeout=240)
        code = proc.returncode
        assert not ANSI.search(out), "colours only on a terminal"
    else:  # on a terminal 100 columns wide: colours, and lines cut to its width
        code, raw = _demo_on_a_terminal(tmp_path, 100, "--generation", generation)
        assert ANSI.search(raw)
        out = ANSI.sub("", raw)
        rows = [line for line in out.splitlines() if line.startswith("release-order ")]
        assert rows and all(len(line) == 100 and line.endswith("...") for line in rows)
        assert "(Lines wider than this terminal's 100 columns are cut here, never in the files.)" in out
    assert code == 0, out
    workdir = _assert_the_story(out, tmp_path)
    assert f"{'hephy 0028' if generation == 'hephy' else 'deis 0019'} controller database" in out
    assert list(tmp_path.iterdir()) == [workdir] and _servers_under(tmp_path) == []


def test_demo_on_a_given_server_drops_its_database(pg_server, tmp_path):
    proc = _demo(tmp_path, "--dsn", pg_server.admin_dsn, "--generation", "deis")
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    _assert_the_story(out, tmp_path)
    assert "deis 0023 controller database" in out
    with psycopg.connect(pg_server.admin_dsn) as conn:
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'controller_demo_%'").fetchone()[0]
    assert left == 0


@pytest.mark.parametrize("keep", [False, True])
def test_interrupted_demo_stops_the_server_and_removes_its_files(tmp_path, keep, stop_servers_left):
    proc = _demo(tmp_path, *(["--keep"] if keep else []))
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        if line.startswith("# ") or time.monotonic() > deadline:  # the first step is under way
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


def _kept(out: str) -> tuple[str, str]:
    """The DSN of the ``export DATABASE_URL=`` line, and the example command under it."""
    export = re.search(r"^  export DATABASE_URL=(.+)$", out, re.M)
    assert export is not None, out
    example = out[export.end():].splitlines()[1].split("  #")[0].strip()
    return shlex.split(export.group(1))[0], example


def _check_finds_damage(dsn: str, example: str) -> None:
    done = subprocess.run(["sh", "-c", f"export DATABASE_URL={shlex.quote(dsn)} && {example}"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stdout + done.stderr  # critical: the damaged story, not the repaired one
    assert "release-order" in done.stdout and "app search" in done.stdout


@pytest.fixture
def stop_servers_left(tmp_path):
    """Whatever a failing test leaves running under ``tmp_path`` is stopped afterwards."""
    yield
    for proc in _servers_under(tmp_path):
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def test_keep_leaves_a_damaged_database_and_the_printed_line_stops_the_server(tmp_path, stop_servers_left):
    proc = _demo(tmp_path, "--keep")
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    dsn, example = _kept(out)
    stop = out.split("When done, stop the server and remove its files and the walkthrough's:\n", 1)[1].splitlines()[0]
    try:
        assert len(out.splitlines()) <= MAX_LINES + 8
        assert example == f"{shlex.quote(sys.executable)} -m auditor check"
        _check_finds_damage(dsn, example)
        with psycopg.connect(dsn) as conn:  # the walkthrough's (repaired) database is gone; only this one stays
            names = {row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'controller%'")}
            assert names == {conn.info.dbname} and conn.info.dbname.endswith("_damaged")
            assert conn.execute("SELECT count(*) FROM api_app").fetchone()[0] == 7
        assert _servers_under(tmp_path)
    finally:
        done = subprocess.run(["sh", "-c", stop.strip()], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert _servers_under(tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def test_keep_on_a_given_server_says_how_to_drop_the_database(pg_server, tmp_path):
    proc = _demo(tmp_path, "--dsn", pg_server.admin_dsn, "--keep")
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    dsn, example = _kept(out)
    drop = shlex.split(out.split("When done, drop the database (with the --dsn you gave):\n", 1)[1].splitlines()[0])
    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    try:
        _check_finds_damage(dsn, example)
    finally:
        assert drop[0] == "psql" and drop[-2:] == ["-c", f"DROP DATABASE {name}"]
        done = subprocess.run([server_binary("psql"), *drop[1:]], capture_output=True, text=True, timeout=60,
                              check=False)
    assert done.returncode == 0, done.stderr
    with psycopg.connect(pg_server.admin_dsn) as conn:
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'controller_demo_%'").fetchone()[0]
    assert left == 0


def test_no_app_of_the_story_is_named_like_the_tables(make_db):
    db = make_db(28)
    names = write_story(db.conn)
    apps = {row[0] for row in db.conn.execute("SELECT id FROM api_app")}
    assert "api" not in apps and names["rolled_back"] == "payments" and names["rolled_back"] in apps


def test_the_summary_names_readme_sections_that_exist():
    headings = set(re.findall(r"^## (.+)$", (ROOT / "README.md").read_text(), re.M))
    assert set(README_SECTIONS) <= headings


def test_a_cut_names_what_it_hides_and_never_splits_a_group():
    lines = ["CRITICAL - app a", "row 1", "row 2", "", "WARNING - app b", "row 3", "", "INFO - app c", "row 4",
             "", "2 findings"]
    head, marker, tail = excerpt(lines, Cut(head=5, tail=1, before="INFO - ", groups=True), "f.txt")
    assert (head, marker, tail) == (["CRITICAL - app a", "row 1", "row 2"], "(7 more lines in f.txt)", ["2 findings"])
    head, marker, tail = excerpt(lines, Cut(head=9, tail=1, before="INFO - ", groups=True), "f.txt")
    assert (head[-1], marker) == ("row 3", "(4 more lines in f.txt)")
    assert excerpt(lines, Cut(head=10, tail=0), "f.txt") == (lines, None, [])  # one hidden line: shown instead
    assert clip("x" * 12, 10) == "xxxxxxx..." and clip("x" * 10, 10) == "x" * 10 and clip("x" * 99, None) == "x" * 99


def test_a_failing_step_stops_the_demo_with_one_line_that_names_its_output(make_db, tmp_path):
    db = make_db(28)
    shown: list[str] = []
    steps = Presenter(db.dsn, tmp_path, echo=shown.append)
    with pytest.raises(StepFailed) as failed:
        steps.run("A step that fails.", "explain", "nope", keep_as="explain-nope.txt")
    kept = tmp_path / "explain-nope.txt"
    assert failed.value.exit_code == 3
    assert failed.value.one_line() == f"demo step failed: controller-audit explain nope exited 3 (its output: {kept})"
    database, error = kept.read_text().strip().splitlines()  # the database it works on, then the error
    assert [ANSI.sub("", line) for line in shown] == [
        "", "# A step that fails.", "$ controller-audit explain nope   # exit code 3", database, error]
    assert database.startswith("controller-audit: database ") and error.startswith("controller-audit: unknown app: ")
