"""Worker processes that end with the process that started them, however it ends.

A worker of a batch or of a run in segments calls `bind_to_parent` first. On Linux the kernel
kills it when its parent dies (prctl PR_SET_PDEATHSIG, SIGKILL); elsewhere a watchdog thread
polls the parent's pid every `POLL` seconds and kills the worker once it has been handed to
another process. Without this a `kill -9` of the command (or the kernel's out-of-memory killer)
left its workers running, orphaned, for the rest of their files. What a killed worker was
writing is removed by the next run (`vdenoise.partfiles`).

SIGKILL rather than SIGTERM and a cleanup: a Python handler runs only when the main thread
next holds the interpreter lock, which a library call can keep for seconds (measured here: an
orphaned worker given SIGTERM and 0.5 s to clean up was still running 1.5 s after its batch
was killed, Linux, 2026-12-04). PR_SET_PDEATHSIG is from prctl(2); the getppid check after it
closes the race it documents (the parent dying before the call). The signal follows the
*thread* that started the worker, so a pool must be started from a thread that outlives it
(batch starts its pools from the caller's thread, which waits for them).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

KILL = getattr(signal, "SIGKILL", signal.SIGTERM)  # (Windows has no SIGKILL)
POLL = 0.1  # seconds between the watchdog's looks at the parent (where there is no prctl)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def bind_to_parent(parent: int) -> None:
    """End this process as soon as `parent` (the pid that started it) dies."""
    if not (sys.platform.startswith("linux") and _death_signal(KILL)):
        threading.Thread(
            target=_watch, args=(parent,), name="vdenoise-lifeline", daemon=True
        ).start()
    if os.getppid() != parent:  # it died before this: no signal will come
        os.kill(os.getpid(), KILL)


def _death_signal(signum: int) -> bool:
    """Ask the kernel for `signum` when the parent dies; whether it agreed."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL)
    os.kill(os.getpid(), KILL)
