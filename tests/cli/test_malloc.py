"""Issue #16 (16af): with every finding listed in JSON, ``check`` keeps the memory its batches free for
the next ones (glibc's mmap and trim thresholds raised: :mod:`auditor.core.malloc`) instead of mapping
and faulting in the same pages again for each batch.  Observed in the process that ran ``check``: a
block of a few MB comes from the heap afterwards, not from a mapping of its own."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

# Runs ``check`` in this interpreter, then allocates a block of 8 MB: how many bytes were mapped for it.
_MAPPED = """
import ctypes, sys
from auditor.cli import cli

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = Info
try:
    cli.main(sys.argv[1:])
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
before = mallinfo2().hblkhd
block = bytearray(8 << 20)
print(mallinfo2().hblkhd - before)
"""


def _glibc_mallinfo2() -> bool:
    try:
        return hasattr(ctypes.CDLL(None), "mallinfo2")
    except (OSError, TypeError):
        return False


@pytest.mark.skipif(not _glibc_mallinfo2(), reason="needs glibc 2.33 or later (mallinfo2)")
@pytest.mark.parametrize(("args", "mapped"), [(["--min-severity", "info"], False), ([], True)],
                         ids=["every-finding-listed", "default-listing"])
def test_every_finding_listed_keeps_freed_memory_for_the_next_batch(hephy_db, tmp_path, args, mapped):
    web = hephy_db.controller().create_app("web")
    web.push()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "GLIBC_TUNABLES", "MALLOC_"))}
    done = subprocess.run([sys.executable, "-c", _MAPPED, "check", "--format", "json", *args, "--fail-on", "never",
                           "-o", str(tmp_path / "report.json"), "--dsn", hephy_db.dsn],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (int(done.stdout) >= 8 << 20) is mapped
