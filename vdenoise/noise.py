"""Noise synthesis and noise-level estimation.

The estimator is the patch-PCA method of Chen, Zhu and Heng, "An Efficient Statistical Method
for Image Noise Level Estimation" (ICCV 2015): the eigenvalues of the covariance of an image's
patches split into a few large ones (structure) and many small ones whose values are the noise
variance; the split is where the mean of the tail equals its median.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import torch
import torch.nn.functional as F

PATCH = 8
MAX_PATCHES = 40_000  # per channel and frame: enough for a stable covariance, cheap at 4K


def add_gaussian_noise(
    clean: torch.Tensor, sigma: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """clean + N(0, (sigma/255)^2), not clipped (the papers' protocol)."""
    noise = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
    return clean + noise * (sigma / 255.0)


def _tail_variance(eigenvalues: torch.Tensor) -> float:
    """Chen et al.'s split: the first tail (largest to smallest) whose mean is its median."""
    values = eigenvalues.sort(descending=True).values
    for i in range(values.numel()):
        tail = values[i:]
        tau = tail.mean()
        if (tail > tau).sum() >= (tail < tau).sum():  # mean no longer above the median
            return float(tau.clamp_min(0))
    return float(values[-1].clamp_min(0))


def patch_noise_variance(plane: torch.Tensor) -> float:
    """Noise variance of one image plane [H, W] (any scale)."""
    height, width = plane.shape
    if min(height, width) < PATCH:
        return 0.0
    stride = max(1, math.ceil(math.sqrt(height * width / MAX_PATCHES)))
    patches = F.unfold(plane[None, None].double(), PATCH, stride=stride)[0]  # [64, N]
    patches = patches - patches.mean(1, keepdim=True)
    cov = patches @ patches.T / patches.shape[1]
    return _tail_variance(torch.linalg.eigvalsh(cov))


def estimate_sigma(frames: Sequence[torch.Tensor]) -> float:
    """Noise standard deviation on the 0-255 scale of RGB frames [3, H, W] in [0, 1].

    Median over frames and channels of the per-plane estimate, so a dark or flat frame does
    not decide alone.
    """
    estimates = [
        math.sqrt(patch_noise_variance(frame[c].float())) for frame in frames for c in range(3)
    ]
    return 255.0 * statistics.median(estimates) if estimates else 0.0
