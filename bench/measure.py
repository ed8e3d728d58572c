"""Timing the console script and the floors, and formatting the figures for the table."""

from __future__ import annotations

import compileall
import functools
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

NOT_AVAILABLE = "not available"
# The tool's own packages (pyproject's packages.find).
TOOL_PACKAGES = ("auditor", "checks", "repairs")


def best_of(repeat: int, func: Callable[[], object]) -> float:
    """The fastest of ``repeat`` runs of ``func``, in seconds."""
    times = []
    for _ in range(max(1, repeat)):
        began = time.perf_counter()
        func()
        times.append(time.perf_counter() - began)
    return min(times)


@dataclass(frozen=True)
class CliRun:
    """One run of the console script."""

    seconds: float
    max_rss_kb: int
    returncode: int
    stderr: str
    stdout_bytes: int = 0


def console_script() -> str:
    """The installed ``controller-audit`` next to this interpreter, else on PATH."""
    here = Path(sys.executable).with_name("controller-audit")
    return str(here) if here.exists() else (shutil.which("controller-audit") or "controller-audit")


@functools.cache
def compiled_tool() -> None:
    """Compile the tool's modules to bytecode once, as pip does when it installs a package.

    An editable install (this repository's) compiles a module on its first import and caches
    it, unless ``PYTHONDONTWRITEBYTECODE`` is set (some shells and images set it): then every run
    compiles the tool's ~90 modules again (~50-70 ms of ``explain``'s wall time on a 2-core
    machine), which an installed tool never pays.  ``compileall`` writes the caches whatever that
    variable says, and the interpreter reads them either way.
    """
    for name in TOOL_PACKAGES:
        spec = importlib.util.find_spec(name)
        for location in (spec.submodule_search_locations or []) if spec else []:
            compileall.compile_dir(location, quiet=1)


def run_cli(args: Sequence[str], count_output: bool = False) -> CliRun:
    """Run ``controller-audit ARGS``; wall time and max RSS of that child alone (``wait4``).

    The tool's bytecode is compiled first (:func:`compiled_tool`), so a run measures the tool as
    installed, not the compiler.

    The report goes to ``/dev/null``, or with ``count_output`` through a pipe whose bytes are
    counted (what a cron job reading the report costs the tool).
    """
    compiled_tool()
    with tempfile.TemporaryFile() as err:
        began = time.perf_counter()
        proc = subprocess.Popen([console_script(), *args], stderr=err,
                                stdout=subprocess.PIPE if count_output else subprocess.DEVNULL)
        written = 0
        if proc.stdout is not None:
            while chunk := proc.stdout.read(1 << 20):
                written += len(chunk)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace").strip()
    return CliRun(seconds, usage.ru_maxrss, proc.returncode, text, written)


def cli_has(*command: str) -> bool:
    """Whether the installed tool has this (sub)command."""
    return run_cli([*command, "--help"]).returncode == 0


def rejected_option(run: CliRun) -> str | None:
    """The tool's complaint when it refused an option it does not know, else None: its
    ``controller-audit: bad usage: ...`` line (exit 3), or click's own ``Error: ...`` (exit 2)."""
    if run.returncode not in (2, 3) or "No such option" not in run.stderr:
        return None
    line = next(line for line in run.stderr.splitlines() if "No such option" in line)
    for prefix in ("controller-audit: bad usage: ", "Error: "):
        line = line.removeprefix(prefix)
    return line.split(" (see:")[0].strip()


def cli_failure(run: CliRun) -> str:
    """A table cell for a failed command: its exit code and last stderr line."""
    last = run.stderr.splitlines()[-1] if run.stderr else ""
    return f"failed (exit {run.returncode}: {last[:100]})"


def fmt_s(seconds: float | None) -> str:
    """Seconds, three significant figures (milliseconds below one second)."""
    if seconds is None:
        return NOT_AVAILABLE
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def fmt_ratio(num: float | None, den: float | None) -> str:
    if not num or not den:
        return NOT_AVAILABLE
    return f"{num / den:.3g}x"


def fmt_mb(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:,.3g} MB"


def median_spread(values: Sequence[float]) -> str:
    """``median (min-max)`` of timings, or the one timing."""
    if len(values) == 1:
        return fmt_s(values[0])
    return f"{fmt_s(statistics.median(values))} (median of {len(values)}: {fmt_s(min(values))}-{fmt_s(max(values))})"
