"""vdenoise: self-supervised video denoising (F2R, STBN) that changes nothing but the noise."""

from vdenoise.errors import UsageError, VdenoiseError
from vdenoise.pipeline import DenoiseReport, denoise_video

__version__ = "0.1.0"

__all__ = ["DenoiseReport", "UsageError", "VdenoiseError", "__version__", "denoise_video"]
