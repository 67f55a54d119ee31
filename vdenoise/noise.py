"""Noise synthesis and noise-level estimation.

Synthetic noise (for training from clean footage and for measuring): `NoiseModel.parse` reads
`gaussian:S`, `gaussian:LO-HI` (sigma drawn per clip), `correlated:S` (Gaussian noise blurred
by a 3x3 box, as real sRGB noise is after demosaicking and processing, rescaled to std S),
`poisson-gaussian:A,S` (variance A*x + (S/255)^2 with Poisson shot noise, x in [0, 1]) and
`none` (footage that is noisy already). Levels S are on the 0-255 scale.

The estimator is the patch-PCA method of Chen, Zhu and Heng, "An Efficient Statistical Method
for Image Noise Level Estimation" (ICCV 2015): the eigenvalues of the covariance of an image's
patches split into a few large ones (structure) and many small ones whose values are the noise
variance; the split is where the mean of the tail equals its median.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vdenoise.errors import UsageError

PATCH = 8
MAX_PATCHES = 40_000  # per channel and frame: enough for a stable covariance, cheap at 4K


def add_gaussian_noise(
    clean: torch.Tensor, sigma: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """clean + N(0, (sigma/255)^2), not clipped (the papers' protocol)."""
    noise = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
    return clean + noise * (sigma / 255.0)


def to_8bit(noisy: torch.Tensor) -> torch.Tensor:
    """What an 8-bit file holds of noisy frames in [0, 1]: rounded to 1/255 and clipped (the
    second protocol: users' videos, where the papers' adds noise without either)."""
    return noisy.mul(255).round_().clamp_(0, 255).div_(255)


@dataclass(frozen=True)
class NoiseModel:
    """A noise distribution to add to clean clips. Levels on the 0-255 scale."""

    kind: str = "gaussian"  # gaussian | correlated | poisson-gaussian | none
    low: float = 25.0  # sigma (or its lower bound when drawn from a range)
    high: float = 25.0
    gain: float = 0.0  # poisson-gaussian: variance per unit of signal (x in [0, 1])

    @classmethod
    def parse(cls, text: str) -> NoiseModel:
        kind, _, args = text.strip().lower().partition(":")
        try:
            if kind == "none" and not args:
                return cls("none", 0.0, 0.0)
            if kind in ("gaussian", "correlated"):
                low, _, high = args.partition("-")
                return cls(kind, float(low), float(high or low))._checked(text)
            if kind == "poisson-gaussian":
                gain, _, sigma = args.partition(",")
                s = float(sigma or 0)
                return cls(kind, s, s, float(gain))._checked(text)
        except ValueError:
            pass
        raise UsageError(
            f"cannot read noise {text!r}",
            "use gaussian:S, gaussian:LO-HI, correlated:S, poisson-gaussian:A,S or none",
        )

    def _checked(self, text: str) -> NoiseModel:
        if not 0 <= self.low <= self.high or self.gain < 0:
            raise ValueError(text)
        return self

    def __str__(self) -> str:
        if self.kind == "none":
            return "none"
        if self.kind == "poisson-gaussian":
            return f"poisson-gaussian:{self.gain:g},{self.low:g}"
        level = f"{self.low:g}" if self.low == self.high else f"{self.low:g}-{self.high:g}"
        return f"{self.kind}:{level}"

    def apply(
        self, clean: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Noisy clips [B, ...] and each clip's noise std [B] on the [0, 1] scale (not clipped)."""
        b = clean.shape[0]
        if self.kind == "none":
            return clean, torch.zeros(b, device=clean.device)
        u = torch.rand(b, generator=generator, device=clean.device)
        sigma = (self.low + (self.high - self.low) * u) / 255.0
        shape = (b,) + (1,) * (clean.dim() - 1)
        white = torch.randn(clean.shape, generator=generator, device=clean.device)
        if self.kind == "gaussian":
            return clean + white * sigma.view(shape), sigma
        if self.kind == "correlated":
            return clean + box_correlate(white) * sigma.view(shape), sigma
        photons = torch.poisson(clean.clamp(min=0) / self.gain, generator=generator)
        noisy = photons * self.gain + white * sigma.view(shape)
        std = (self.gain * clean.clamp(min=0).flatten(1).mean(1) + sigma**2).sqrt()
        return noisy, std


def brightness_bins(brightness: torch.Tensor, bins: int) -> torch.Tensor:
    """The index of each pixel's bin among `bins` equal bins of brightness in [0, 1]."""
    return (brightness.clamp(0, 1) * bins).long().clamp_max(bins - 1)


def relative_variance_at(table: torch.Tensor, brightness: torch.Tensor) -> torch.Tensor:
    """A noise level function: the noise variance relative to the frame's average at each
    pixel of a brightness map (any shape), from `table`'s values for equal brightness bins.
    Piecewise constant, as it was read: each pixel gets the mean of its own bin's pixels."""
    index = brightness_bins(brightness, table.numel())
    return table.to(brightness.device, brightness.dtype)[index]


def box_correlate(white: torch.Tensor, size: int = 3) -> torch.Tensor:
    """White noise [..., H, W] blurred by a size x size box and rescaled to unit variance."""
    shape = white.shape
    planes = white.reshape(-1, 1, *shape[-2:])
    pad = size // 2
    blurred = F.avg_pool2d(F.pad(planes, (pad,) * 4, mode="circular"), size, stride=1)
    return (blurred * size).reshape(shape)  # a box of n taps divides the variance by n


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
