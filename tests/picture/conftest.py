"""Fixtures of the picture tests: the command line in-process, and one headless Chromium."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from click.testing import CliRunner, Result

from auditor.cli import cli
from tests.picture.browser import Browser, chromium_path


@pytest.fixture
def run(tmp_path, monkeypatch) -> Callable[..., Result]:
    """``run(*args)``: invoke ``controller-audit`` in an empty working directory."""
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "PGPASSWORD", "DEIS_DATABASE_USER", "DEIS_DATABASE_PASSWORD",
                 "DEIS_DATABASE_NAME", "DEIS_DATABASE_SERVICE_HOST", "DEIS_DATABASE_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium through Playwright (skips, saying why, where it is not installed)."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium on this machine (.ci/install-browser installs Debian's chromium package)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    opened = Browser(executable)
    try:
        yield opened
    finally:
        opened.close()
