"""A worker bound to its parent ends within a second of the parent's death, by the kernel's
parent-death signal (Linux) or by the watchdog alone (as on macOS)."""

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads processes from /proc")

# The middle process starts a worker bound to it, says the worker's pid, and waits to be killed.
MIDDLE = textwrap.dedent(
    """
    import os, subprocess, sys, time
    worker = '''
    import sys, time
    from vdenoise import lifeline
    if sys.argv[1] == "watchdog":
        lifeline._death_signal = lambda signum: False  # as where there is no prctl
    lifeline.bind_to_parent(int(sys.argv[2]))
    print("bound", flush=True)
    while True:
        time.sleep(1)
    '''
    child = subprocess.Popen(
        [sys.executable, "-c", worker, sys.argv[1], str(os.getpid())], stdout=subprocess.PIPE
    )
    assert child.stdout.readline() == b"bound\\n"
    print(child.pid, flush=True)
    time.sleep(60)
    """
)


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


@pytest.mark.parametrize("way", ["prctl", "watchdog"])
def test_a_worker_ends_within_a_second_of_its_parent(way):
    middle = subprocess.Popen(
        [sys.executable, "-c", MIDDLE, way], stdout=subprocess.PIPE, cwd=Path(__file__).parents[1]
    )
    worker = int(middle.stdout.readline())
    assert running(worker)
    middle.kill()
    middle.wait()
    killed = time.monotonic()
    while running(worker) and time.monotonic() - killed < 5:
        time.sleep(0.02)
    assert not running(worker)
    assert time.monotonic() - killed < 1.0
