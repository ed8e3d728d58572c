"""glibc's malloc kept from handing freed memory back to the kernel between two batches (issue 16af).

Every finding of a million releases listed (``check --format json --min-severity info``) streams
~650 MB through the client in batches of a few MB: libpq's rows, their text, each batch's joined and
encoded lines.  With glibc's defaults each such block above the mmap threshold is mapped and unmapped
again, and the heap's top is trimmed as soon as it is freed: the next batch faults in and zeroes the
same pages again.  That was ~30% of the client's CPU, most of it in the kernel (docs/benchmark.md,
issue 16af).  Raising both thresholds keeps the freed blocks for the next batch; the peak stays the
same few batches.  Elsewhere (musl, macOS, Windows) nothing changes.
"""

from __future__ import annotations

#: ``mallopt`` parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Blocks below this come from the heap, not from a mapping of their own (glibc's maximum on 64 bits).
MMAP_THRESHOLD = 32 << 20
#: Free memory the heap keeps at its top before giving it back.
TRIM_THRESHOLD = 128 << 20


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; whether the C library took both."""
    import ctypes  # for this alone, and only on the paths that stream every finding

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, TypeError, AttributeError):  # no C library by that name, no mallopt (not glibc)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) & bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
