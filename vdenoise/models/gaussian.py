"""The Gaussian blind-spot model of Laine et al. (NeurIPS 2019), as STBN and UDVD use it.

A blind-spot network predicts, per pixel, a prior over the clean RGB value: a mean mu and a
covariance Sigma = A^T A, with A a 3x3 upper-left-triangular factor carried in 6 channels
(row 0: 3 entries, row 1: 2, row 2: 1; the layout of STBN's and UDVD's loss code). Given the
noisy value y with noise N(0, s^2 I), the posterior mean is

    x = (Sigma^-1 + s^-2 I)^-1 (Sigma^-1 mu + s^-2 y) = (Sigma + s^2 I)^-1 (s^2 mu + Sigma y),

the right-hand form needs no inverse of Sigma; we solve the 3x3 system per pixel in closed form.
"""

from __future__ import annotations

import torch

from vdenoise.models.windows import box_mean

EPS = 1e-5  # added to Sigma's diagonal, as in the reference code


def covariance(factor: torch.Tensor) -> torch.Tensor:
    """6 factor channels [..., 6, H, W] -> Sigma's 6 unique entries (xx, xy, xz, yy, yz, zz)."""
    a00, a01, a02, a10, a11, a20 = factor.unbind(-3)
    # A = [[a00, a01, a02], [a10, a11, 0], [a20, 0, 0]];  Sigma = A^T A
    s00 = a00 * a00 + a10 * a10 + a20 * a20 + EPS
    s01 = a00 * a01 + a10 * a11
    s02 = a00 * a02
    s11 = a01 * a01 + a11 * a11 + EPS
    s12 = a01 * a02
    s22 = a02 * a02 + EPS
    return torch.stack([s00, s01, s02, s11, s12, s22], -3)


def _solve3(m: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve M x = b per pixel for symmetric M given as 6 unique entries (Cramer's rule)."""
    m00, m01, m02, m11, m12, m22 = m.unbind(-3)
    b0, b1, b2 = b.unbind(-3)
    c00 = m11 * m22 - m12 * m12
    c01 = m02 * m12 - m01 * m22
    c02 = m01 * m12 - m02 * m11
    c11 = m00 * m22 - m02 * m02
    c12 = m01 * m02 - m00 * m12
    c22 = m00 * m11 - m01 * m01
    det = m00 * c00 + m01 * c01 + m02 * c02
    x0 = c00 * b0 + c01 * b1 + c02 * b2
    x1 = c01 * b0 + c11 * b1 + c12 * b2
    x2 = c02 * b0 + c12 * b1 + c22 * b2
    return torch.stack([x0, x1, x2], -3) / det.unsqueeze(-3)


CLIP_MARGIN = 2.5  # noise stds between the blind mean and 0 or 1 for a pixel to calibrate on
CALIBRATION_WINDOW = 31  # pixels: local enough for the error to follow content, wide enough
# to measure it (on the validation sequences at sigma 10: 35.44 dB with 31, 35.54 with 15,
# 35.31 with 63, 35.12 with one scale per window of frames, 34.15 without; a reach-3 tiny STBN)


def calibrated(
    mean: torch.Tensor,
    factor: torch.Tensor,
    noisy: torch.Tensor,
    sigma: torch.Tensor,
    widest: float = 1.0,
    window: int = CALIBRATION_WINDOW,
) -> torch.Tensor:
    """The factor scaled, pixel by pixel, so that Sigma's variance matches what the noisy
    frames say it is around that pixel.

    A blind prior's mean never sees its pixel, so y - mu = (x - mu) + noise with independent
    terms: E[(y - mu)^2] = Sigma + s^2. The prior's width is thus measured on the input itself
    (the method of moments; self-supervised), averaged over a window around each pixel, over
    pixels far enough from 0 and 1 that clipping cannot bias it, and by default only narrowed:
    a prior trained wider than its error (as STBN's is at low noise: 9.1 predicted against 5.8
    actual on the validation sequences at sigma 10) makes the posterior keep too much noise.
    `widest` > 1 also lets the variance grow, up to that many times, where the mean measures
    worse than predicted; `window`: the window's side in pixels. `mean`, `noisy`: [..., 3, H,
    W]; `factor` [..., 6, H, W]; `sigma`: the noise std, one per item of the first dimension
    [B], or a map broadcastable to [..., 1, H, W]."""
    lead, (height, width) = mean.shape[:-3], mean.shape[-2:]
    if sigma.dim() == 1:  # one level per item: the same for all its frames and pixels
        sigma = sigma.view(-1, *([1] * (mean.dim() - 1)))
    s = sigma.float().expand(*lead, 1, height, width).reshape(-1, 1, height, width)
    mean = mean.float().reshape(-1, 3, height, width)
    noisy = noisy.float().reshape(-1, 3, height, width)
    variance = covariance(factor.float().reshape(-1, 6, height, width))[:, [0, 3, 5]]
    inside = ((mean > CLIP_MARGIN * s) & (mean < 1 - CLIP_MARGIN * s)).float()
    sums = torch.cat(
        [
            inside.sum(1, keepdim=True),
            (variance * inside).sum(1, keepdim=True),
            ((noisy - mean).pow(2) * inside).sum(1, keepdim=True),
            s.pow(2) * inside.sum(1, keepdim=True),
        ],
        1,
    )
    count, predicted, measured, noise = box_mean(sums, window).unbind(1)
    excess = measured - noise
    ratio = (excess / predicted.clamp_min(1e-12)).clamp(0.01, 1.0)
    if widest > 1:  # widened only by what exceeds twice the measurement's standard error
        spread = (2 / (3 * window * window * count.clamp_min(1e-3))).sqrt() * (noise + predicted)
        wider = ((excess - 2 * spread) / predicted.clamp_min(1e-12)).clamp(1.0, widest)
        ratio = torch.where(excess > predicted, wider, ratio)
    scale = torch.where(count > 0.15, ratio.sqrt(), torch.ones_like(ratio))  # else: clipped
    scale = scale.detach()  # a statistic of the input, not something to train through
    return factor * scale.view(*lead, 1, height, width).to(factor.dtype)


def posterior_mean(
    mean: torch.Tensor, factor: torch.Tensor, noisy: torch.Tensor, sigma: torch.Tensor
) -> torch.Tensor:
    """E[x | prior (mean, A^T A), y] for noise std `sigma` (broadcastable to [..., 1, H, W])."""
    mean, factor, noisy = mean.float(), factor.float(), noisy.float()
    s2 = sigma.float() ** 2
    cov = covariance(factor)
    system = cov.clone()
    system[..., [0, 3, 5], :, :] += s2  # Sigma + s^2 I
    s00, s01, s02, s11, s12, s22 = cov.unbind(-3)
    y0, y1, y2 = noisy.unbind(-3)
    cov_y = torch.stack(
        [
            s00 * y0 + s01 * y1 + s02 * y2,
            s01 * y0 + s11 * y1 + s12 * y2,
            s02 * y0 + s12 * y1 + s22 * y2,
        ],
        -3,
    )
    return _solve3(system, s2 * mean + cov_y)


def negative_log_likelihood(
    mean: torch.Tensor, factor: torch.Tensor, noisy: torch.Tensor, sigma: torch.Tensor
) -> torch.Tensor:
    """Per-pixel -log N(y; mean, Sigma + s^2 I) up to a constant (Laine et al., eq. 6)."""
    mean, factor, noisy = mean.float(), factor.float(), noisy.float()
    system = covariance(factor)
    system[..., [0, 3, 5], :, :] += sigma.float() ** 2
    d = noisy - mean
    solved = _solve3(system, d)
    m00, m01, m02, m11, m12, m22 = system.unbind(-3)
    det = (
        m00 * (m11 * m22 - m12 * m12)
        - m01 * (m01 * m22 - m12 * m02)
        + m02 * (m01 * m12 - m11 * m02)
    )
    return 0.5 * (d * solved).sum(-3) + 0.5 * torch.log(det)
