"""Running the command line in-process (click's CliRunner) against the test databases."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result

from auditor.cli import cli


@pytest.fixture
def run(tmp_path, monkeypatch) -> Callable[..., Result]:
    """``run(*args, env=...)``: invoke ``controller-audit`` in an empty working directory.

    The working directory is a fresh temp dir, so no stray ``controller-audit.toml`` or
    ``pyproject.toml`` is picked up; the database variables of the environment are cleared.
    """
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "PGPASSWORD", "DEIS_DATABASE_USER", "DEIS_DATABASE_PASSWORD",
                 "DEIS_DATABASE_NAME", "DEIS_DATABASE_SERVICE_HOST", "DEIS_DATABASE_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    # Tables fit the terminal (100 columns when there is none); tests of their content read them
    # unwrapped, the wrapping tests set their own width.
    monkeypatch.setenv("COLUMNS", "400")

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    return invoke


def report(result: Result) -> dict:
    """The JSON document a ``check --format json`` run printed."""
    return json.loads(result.stdout)
