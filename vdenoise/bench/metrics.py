"""PSNR and SSIM exactly as STBN and FloRNN compute them (../shared/reference/methods.md 1.9).

PSNR: per frame, estimate clipped to [0, 1], data range 1. SSIM: scikit-image's
`structural_similarity` with STBN's arguments (RGB, Gaussian window 11, sigma 1.5, data range
1; its default sample covariance, as their `utils/ssim.py` leaves it). Both are averaged over
the frames of a sequence, then over sequences.
"""

from __future__ import annotations

import math

import numpy as np
import torch

PSNR_DEFINITION = "per frame, output clipped to [0, 1], peak 1; mean over frames, then sequences"
SSIM_DEFINITION = (
    "skimage.metrics.structural_similarity(channel_axis=2, win_size=11, gaussian_weights=True, "
    "sigma=1.5, data_range=1) on RGB, output clipped to [0, 1]; mean over frames, then sequences"
)


def psnr(estimate: torch.Tensor, clean: torch.Tensor) -> float:
    """PSNR in dB of [..., H, W] images in [0, 1]; the estimate is clipped to [0, 1] first."""
    mse = float(((estimate.clamp(0, 1) - clean) ** 2).mean())
    return 10 * math.log10(1 / mse) if mse > 0 else math.inf


def ssim(estimate: torch.Tensor, clean: torch.Tensor) -> float:
    """SSIM of one RGB frame [3, H, W] in [0, 1]; the estimate is clipped to [0, 1] first."""
    from skimage.metrics import structural_similarity  # scipy behind it: load only to use

    a = _hwc(estimate.clamp(0, 1))
    b = _hwc(clean)
    return float(
        structural_similarity(
            b, a, channel_axis=2, win_size=11, gaussian_weights=True, sigma=1.5, data_range=1.0
        )
    )


def _hwc(frame: torch.Tensor) -> np.ndarray:
    return frame.detach().permute(1, 2, 0).double().cpu().numpy()
