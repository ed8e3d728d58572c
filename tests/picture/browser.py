"""Headless Chromium (Debian's package) driven by Playwright: open a generated file offline,
record console messages and every request, read the DOM, take a screenshot."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Flags for a browser that must not talk to anything.
CHROMIUM_FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
                  "--disable-default-apps")
_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium_path() -> str | None:
    """The Chromium executable: ``$CHROMIUM``, Debian's, or one on PATH (None: not installed)."""
    wanted = os.environ.get("CHROMIUM")
    if wanted:
        return wanted if os.access(wanted, os.X_OK) else None
    for candidate in _CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Visit:
    """What opening one file did."""

    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # uncaught page errors
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    failed: list[str] = field(default_factory=list)

    @property
    def console_errors(self) -> list[str]:
        return [text for kind, text in self.console if kind in ("error", "warning")]

    @property
    def network(self) -> list[str]:
        """Requests for anything but the file itself (there must be none)."""
        return [url for url in self.requests if not url.startswith("file://")]


class Browser:
    """One Chromium for a test session; :meth:`open` gives a fresh page per file."""

    def __init__(self, executable: str) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(executable_path=executable, args=list(CHROMIUM_FLAGS),
                                                 headless=True)

    @contextmanager
    def open(self, path: Path, width: int = 1400, height: int = 900) -> Iterator[tuple[Any, Visit]]:
        """Open ``path`` offline: every request that is not this file fails and is recorded."""
        visit = Visit()
        context = self._browser.new_context(viewport={"width": width, "height": height}, offline=True,
                                            java_script_enabled=True)
        page = context.new_page()
        page.on("console", lambda m: visit.console.append((m.type, m.text)))
        page.on("pageerror", lambda e: visit.errors.append(str(e)))
        page.on("request", lambda r: visit.requests.append(r.url))
        page.on("requestfailed", lambda r: visit.failed.append(r.url))
        target = path.resolve().as_uri()
        context.route(lambda url: url != target, lambda route: route.abort())
        page.goto(target, wait_until="load")
        try:
            yield page, visit
        finally:
            context.close()

    def close(self) -> None:
        self._browser.close()
        self._pw.stop()
