"""Denoising models behind one interface (`VideoDenoiser`)."""

from collections.abc import Callable

from vdenoise.models.base import VideoDenoiser

# Method name -> a function building the model with its released weights.
METHODS: dict[str, Callable[[], VideoDenoiser]] = {}

__all__ = ["METHODS", "VideoDenoiser"]
