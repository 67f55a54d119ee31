"""vdenoise: self-supervised video denoising (F2R, STBN) that changes nothing but the noise."""

import os

# torch's OpenMP threads otherwise spin between operations, stealing the cores the decoder and
# encoder threads need (benchmarks/throughput.py: ratio 0.56 -> 0.63 on 2 cores). Takes effect
# only if torch is not imported yet, and never overrides the user's setting.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from vdenoise.errors import UsageError, VdenoiseError
from vdenoise.pipeline import DenoiseReport, denoise_video

__version__ = "0.1.0"

__all__ = ["DenoiseReport", "UsageError", "VdenoiseError", "__version__", "denoise_video"]
