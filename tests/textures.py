"""Synthetic frames with known motion, as tensors (no video files)."""

from __future__ import annotations

import torch


def moving_texture(frames: int = 9, size: int = 96, step: int = 5, sigma: float = 0.1):
    """A random texture (5-pixel grain, doubled contrast) sliding `step` pixels per frame to the
    right, clean and with seeded Gaussian noise: [1, frames, 3, size, size] each."""
    g = torch.Generator().manual_seed(0)
    wide = torch.rand(1, 3, size + 8, size + step * frames + 8, generator=g)
    wide = torch.nn.functional.avg_pool2d(wide, 5, 1)[..., 2 : 2 + size, :]
    wide = ((wide - 0.5) * 2 + 0.5).clamp(0, 1)
    clean = torch.stack(
        [wide[0, :, :, step * (frames - t) : step * (frames - t) + size] for t in range(frames)]
    )[None]
    noisy = clean + sigma * torch.randn(clean.shape, generator=g)
    return clean, noisy
