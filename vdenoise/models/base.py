"""The one interface between the engine and any denoising model."""

from __future__ import annotations

import torch
from torch import nn


class VideoDenoiser(nn.Module):
    """Maps a clip of noisy frames and a noise level to denoised frames.

    A model declares the temporal context it needs (`frames_before`, `frames_after`), how many
    frames it likes to produce per call, and how much spatial context a tile needs for exact
    results. It accepts any frame size (padding internally where its layers need a multiple).
    The engine never asks which method it runs.
    """

    frames_before: int = 0
    frames_after: int = 0
    frames_per_call: int = 1
    # Each output frame depends on its own window only, not on the call it came in: an
    # accelerator may then be given more frames a call (`Engine.frames_per_call`)
    independent_windows: bool = False
    spatial_margin: int = 16  # pixels of context each side of a tile for tile-exact output
    bytes_per_pixel: float = 2048.0  # peak activation memory per pixel per clip frame, fp32

    def forward(self, clip: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """clip [B, before + n + after, 3, H, W] in [0, 1], sigma [B] (noise std on the [0, 1]
        scale) -> denoised [B, n, 3, H, W]."""
        raise NotImplementedError
