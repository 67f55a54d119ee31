"""The test suite.

torch's OpenMP threads wait passively here, as in the installed command (`vdenoise/__init__.py`
sets it, but only if torch is not loaded yet, and conftest loads torch first). Spinning, they
took an in-process batch of three 64x48 clips from 1.9 to 22.1 s of CPU (3.4 to 50.0 s wall) on
the shared 2-core machine, 2026-12-04.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
