"""vdenoise: self-supervised video denoising (F2R, STBN) that changes nothing but the noise."""

import os

# torch's OpenMP threads otherwise spin between operations, stealing the cores the decoder and
# encoder threads need (benchmarks/throughput.py: ratio 0.56 -> 0.63 on 2 cores). Takes effect
# only if torch is not imported yet, and never overrides the user's setting.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from typing import Any

from vdenoise.allocator import retain_freed_memory
from vdenoise.errors import UsageError, VdenoiseError
from vdenoise.version import __version__

retain_freed_memory()  # large tensors reused, not unmapped and faulted in again (allocator.py)


def __getattr__(name: str) -> Any:
    """The pipeline (and with it PyAV) loads on first use, so training runs without PyAV."""
    if name in ("DenoiseReport", "denoise_video"):
        from vdenoise import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'vdenoise' has no attribute {name!r}")


__all__ = ["DenoiseReport", "UsageError", "VdenoiseError", "__version__", "denoise_video"]
