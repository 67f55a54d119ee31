import math

import numpy as np
import pytest
import torch

from vdenoise.bench.metrics import psnr, ssim


def test_psnr_by_hand():
    clean = torch.zeros(3, 4, 4)
    assert psnr(torch.full_like(clean, 0.1), clean) == pytest.approx(20.0)
    half = clean.clone()
    half[:, :2] = 0.2  # MSE = 0.04 / 2
    assert psnr(half, clean) == pytest.approx(10 * math.log10(1 / 0.02))


def test_psnr_clips_the_estimate_not_the_reference():
    clean = torch.ones(3, 4, 4)
    assert psnr(torch.full_like(clean, 1.5), clean) == math.inf
    assert psnr(torch.full_like(clean, -0.5), clean * 0.1) == pytest.approx(20.0)


def reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of HxWx3 images written out from the definition (Wang et al. 2004) with STBN's
    settings: an 11x11 Gaussian window of std 1.5, sample (N-1) covariances as scikit-image
    uses by default, C1 = (0.01)^2, C2 = (0.03)^2, the map averaged away from a 5-pixel border."""
    r = np.arange(-5, 6)
    g = np.exp(-(r**2) / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    n = 121
    h, w = a.shape[:2]
    values = []
    for c in range(3):
        x, y = a[..., c], b[..., c]
        for i in range(5, h - 5):
            for j in range(5, w - 5):
                px, py = x[i - 5 : i + 6, j - 5 : j + 6], y[i - 5 : i + 6, j - 5 : j + 6]
                mx, my = (window * px).sum(), (window * py).sum()
                vx = ((window * px * px).sum() - mx * mx) * n / (n - 1)
                vy = ((window * py * py).sum() - my * my) * n / (n - 1)
                cxy = ((window * px * py).sum() - mx * my) * n / (n - 1)
                c1, c2 = 0.01**2, 0.03**2
                values.append(
                    (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
                )
    return float(np.mean(values))


def test_ssim_matches_the_definition_computed_by_hand():
    rng = np.random.default_rng(0)
    clean = rng.random((20, 24, 3))
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
    as_tensor = lambda x: torch.from_numpy(x).permute(2, 0, 1)  # noqa: E731
    assert ssim(as_tensor(noisy), as_tensor(clean)) == pytest.approx(
        reference_ssim(clean, noisy), abs=1e-6
    )


def test_ssim_is_one_for_identical_frames_and_lower_for_noisy_ones():
    clean = 0.3 + 0.4 * torch.linspace(0, 1, 32).expand(3, 32, 32)  # a smooth ramp
    assert ssim(clean, clean) == pytest.approx(1.0)
    assert ssim(clean + 0.1 * torch.randn_like(clean), clean) < 0.5
