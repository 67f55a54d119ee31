"""Keep freed memory for reuse instead of handing it back to the kernel (glibc only).

glibc serves allocations above a threshold (at most 32 MB, adjusted as it goes) with fresh
mmaps and unmaps them when freed, so every model call pays page faults to zero the same
hundreds of megabytes again: most of a CPU run's system time. With both thresholds raised,
freed blocks stay in the heap and the next call reuses them. Measured with a new f2r-small
at 640x480, one window per pass, 16 frames on one thread: 4.0 s of system time without,
0.3 s with, the same peak memory (`benchmarks/end_to_end.py` gives the end-to-end figure).
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
THRESHOLD = 1 << 30  # blocks up to 1 GiB come from the heap; it is trimmed past 1 GiB free


def retain_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; False where not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols: libc's, no search

    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, THRESHOLD))
