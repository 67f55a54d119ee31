"""F2R's anchor where its neighbours fail: a blind spatial estimate, weighed by measured errors.

Stage 1 sees only the neighbouring frames, so where they cannot be aligned (fast motion,
occlusions, cuts) its anchor can be worse than the noisy frame itself: on the validation
sequences at 3x motion, sigma 10, 8-bit, davis-bmx-trees' anchor reached 23.5 dB against the
noisy frame's 28.3. The mean of each pixel's 8 surrounding pixels in the noisy frame is blind
too (the pixel itself is left out, as in Noise2Void's blind spot: Krull et al., CVPR 2019) and
does not depend on motion; it reached 32.3 dB there. Each estimate's error is measured on the
input around each pixel, by the method of moments as `gaussian.calibrated` does (y - m =
(x - m) + noise, independent terms, so E[(y - m)^2] = MSE(m) + sigma^2), the pixel itself left
out with its 3 x 3 block (so no weight reads it either), and the two are averaged by their
precisions. On the same sequences (release f2r-small's stage 1, 5 frames, 8-bit, sigma
10/30/50, 1x-3x motion) the result stays at least 1.96 dB above the noisy frame on every
sequence (the temporal anchor alone: down to 4.77 below), and above the anchor on average but
at sigma 50, 1x (25.75 against 25.79). F2R's stage 2 reads it beside the temporal anchor
(`F2RConfig.spatial_fallback`, in the released f2r-small since 0.11.0: its card says how it
was trained; docs/training.md, "A spatial fallback for the anchor"). STBN blends its blind
mean with its ring-only kernel mean the same way, their errors' correlation measured too
(`blend`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vdenoise.models.windows import box_sum, per_item

FALLBACK_WINDOW = 7  # pixels: the window each estimate's error is measured over
MIN_SHARE = 0.25  # of the window unclipped, to measure at all (else the anchor stays)


def ring_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean of each position's 8 neighbours in [N, C, H, W], itself excluded (fewer at the
    borders): the 3 x 3 sums as shifted additions, less the centre, over the in-frame count.
    4x faster than the two depthwise convolutions of 0.13.0 at 640x480 on a CPU
    (benchmarks/kernel_speed.py)."""
    height, width = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1))
    rows = padded[..., :-2] + padded[..., 1:-1] + padded[..., 2:]
    box = rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :]
    return (box - x) / _ring_count(height, width, x)


def _ring_count(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """How many of each position's 8 neighbours lie in a height x width frame [H, W]."""

    def in_frame(n: int) -> torch.Tensor:
        count = torch.full((n,), 3.0, dtype=like.dtype, device=like.device)
        count[0] -= 1
        count[-1] -= 1
        return count

    return in_frame(height).view(-1, 1) * in_frame(width) - 1


def sums_around(x: torch.Tensor, size: int) -> torch.Tensor:
    """The sum of x [N, C, H, W] over the in-frame part of a size x size window around each
    pixel, without the 3 x 3 block at its centre: no term there holds the pixel's own value,
    nor does any ring mean (`ring_mean`) of a pixel left in. In float64 (`windows.box_sum`),
    one frame at a time."""
    return per_item(lambda item: (box_sum(item, size) - box_sum(item, 3)).to(x.dtype), x)


def blend(
    a: torch.Tensor,
    b: torch.Tensor,
    noisy: torch.Tensor,
    level: torch.Tensor,
    window: int = FALLBACK_WINDOW,
    correlated: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The mix w a + (1 - w) b of two blind estimates [N, 3, H, W] of the clean frames under
    `noisy` [N, 3, H, W] with the least squared error measured around each pixel, and a's
    weight w [N, 1, H, W]. `level`: the noise std [N, 1, H, W]. Measured over the window with
    the pixel's own 3 x 3 block left out, by the method of moments (neither estimate reads
    the noise of the pixels it is compared with, so E[(y - a)^2] = MSE(a) + sigma^2):

    - by default each estimate's error variance V, and w = Vb / (Va + Vb): right where the
      two err independently (an anchor from other frames and the frame's ring mean);
    - with `correlated`, the least-squares weight of two estimates whose errors are
      correlated, (Vb - C) / (Va + Vb - 2C) with C their covariance, which is the regression
      of y - b on a - b: w = sum (y - b)(a - b) / sum (a - b)^2, in which the noise terms
      cancel (no sigma, no clamping of a measured variance at zero); clipped to [0, 1]. Two
      estimates that err together (STBN's blind mean and its ring-only kernel mean) would be
      averaged by the first where the better should be kept.
    """
    y, a32, b32 = noisy.float(), a.float(), b.float()
    kept = ((y > 0) & (y < 1)).all(1, keepdim=True).float()  # clipped noise is not Gaussian
    if correlated:
        gap = a32 - b32
        terms = torch.cat(
            [
                kept,
                kept * ((y - b32) * gap).mean(1, keepdim=True),
                kept * gap.pow(2).mean(1, keepdim=True),
            ],
            1,
        )
        count, along, spread = sums_around(terms, window).unbind(1)
        weight = (along / spread.clamp_min(1e-12)).clamp(0, 1)
    else:
        terms = torch.cat(
            [
                kept,
                kept * (y - a32).pow(2).mean(1, keepdim=True),
                kept * (y - b32).pow(2).mean(1, keepdim=True),
                kept * level.float().pow(2).expand_as(kept),
            ],
            1,
        )
        count, to_a, to_b, noise = sums_around(terms, window).unbind(1)
        floor = 1e-8 * count.clamp_min(1)
        error_a = (to_a - noise).clamp_min(floor)
        error_b = (to_b - noise).clamp_min(floor)
        weight = error_b / (error_a + error_b)
    measured = count >= MIN_SHARE * (window**2 - 9)
    weight = torch.where(measured, weight, torch.ones_like(weight)).unsqueeze(1).detach()
    fused = weight * a32 + (1 - weight) * b32
    return fused.to(a.dtype), weight


def spatial_fallback(
    anchor: torch.Tensor, noisy: torch.Tensor, level: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The anchor [N, 3, H, W] blended (`blend`) with the ring mean of the noisy frames [N, 3,
    H, W], and the anchor's weight [N, 1, H, W]. `level`: the noise std [N, 1, H, W]. Neither
    part reads a pixel's own value for that pixel's estimate."""
    return blend(anchor, ring_mean(noisy.float()), noisy, level)
