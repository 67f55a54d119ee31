"""The locally aware view of spatially adaptive supervision.

Li, Fu, Zhang, Zuo, "Spatially Adaptive Self-Supervised Learning for Real-World Image
Denoising" (CVPR 2023; nagejacob/SpatiallyAdaptiveSSID): a blind view that excludes the
correlated neighbours supervises flat regions; in textured regions, where the blind view loses
detail, a *locally aware network* (LAN) does: a non-blind network whose receptive field is
only 3 x 3, trained to imitate the blind view. Seeing so little, it cannot learn the blind
view's smoothing of texture, so its output keeps the texture the noisy pixel carries.

Ours follows their LAN's shape (1x1 in, one 3x3, then per-pixel layers), narrower, with the
noise level as an input.
"""

from __future__ import annotations

import torch
from torch import nn

from vdenoise.models.layers import conv


class LocalView(nn.Module):
    """A non-blind denoiser with a 3 x 3 receptive field: noisy frame + level -> estimate."""

    def __init__(self, width: int = 32, depth: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv(4, width, 1), nn.ReLU(), conv(width, width, 3), nn.ReLU()]
        for _ in range(depth):
            layers += [conv(width, width, 1), nn.ReLU()]
        self.net = nn.Sequential(*layers, conv(width, 3, 1))

    def forward(self, noisy: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        return noisy + self.net(torch.cat([noisy, level], 1))


def local_std(image: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Standard deviation of the channel mean over a window x window neighbourhood [N,1,H,W]."""
    grey = image.mean(1, keepdim=True)
    pad = window // 2
    padded = nn.functional.pad(grey, (pad,) * 4, mode="reflect")
    mean = nn.functional.avg_pool2d(padded, window, stride=1)
    square = nn.functional.avg_pool2d(padded**2, window, stride=1)
    return (square - mean**2).clamp_min(0).sqrt()


def texture_weight(blind: torch.Tensor, lower: float = 1.0, upper: float = 5.0) -> torch.Tensor:
    """The weight of the local view per pixel, from the blind view's local std on the 0-255
    scale: sigmoid(std - lower) below `lower`, 1/2 between, sigmoid(std - upper) above (the
    thresholds and the 7 x 7 window of SASL's released code)."""
    std = 255.0 * local_std(blind.float())
    weight = torch.full_like(std, 0.5)
    weight = torch.where(std < lower, torch.sigmoid(std - lower), weight)
    return torch.where(std > upper, torch.sigmoid(std - upper), weight)
