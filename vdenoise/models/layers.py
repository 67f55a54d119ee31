"""Building blocks shared by the models: blind-spot convolutions, dilated blocks, U-Nets."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv(cin: int, cout: int, k: int = 3, *, dilation: int = 1, stride: int = 1, groups: int = 1,
         bias: bool = True) -> nn.Conv2d:  # fmt: skip
    """A 'same'-size convolution (zero padding, which keeps blind spots blind at borders)."""
    pad = dilation * (k // 2)
    return nn.Conv2d(cin, cout, k, stride, pad, dilation, groups, bias)


class CentreMaskedConv2d(nn.Conv2d):
    """A k x k convolution whose centre tap is always zero: the output never sees its own pixel.

    The first layer of a blind-spot network (Laine et al. 2019; D-BSN, Wu et al. 2020).
    """

    def __init__(self, cin: int, cout: int, k: int = 3) -> None:
        super().__init__(cin, cout, k, padding=k // 2)
        mask = torch.ones(1, 1, k, k)
        mask[..., k // 2, k // 2] = 0
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class DilatedResBlock(nn.Module):
    """x + Conv1x1(ReLU(Conv3x3 dilated(x))): with dilation 2 it only reaches even offsets,
    so stacked after a centre-masked conv it keeps the blind spot (STBN's `DCl`)."""

    def __init__(self, channels: int, dilation: int = 2, groups: int = 1) -> None:
        super().__init__()
        self.spatial = conv(channels, channels, 3, dilation=dilation, groups=groups)
        self.pointwise = conv(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pointwise(F.relu(self.spatial(x)))


def space_to_depth(x: torch.Tensor) -> torch.Tensor:
    """`F.pixel_unshuffle(x, 2)`, the same values in the same order, as one permuted copy:
    2.2-3.2x faster on a CPU at 640x480 (torch 2.13; benchmarks/kernel_speed.py)."""
    n, c, h, w = x.shape
    x = x.view(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(n, 4 * c, h // 2, w // 2)


def depth_to_space(x: torch.Tensor) -> torch.Tensor:
    """`F.pixel_shuffle(x, 2)` as one permuted copy: 2.2-4.9x faster on a CPU (as above)."""
    n, c, h, w = x.shape
    x = x.view(n, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(n, c // 4, 2 * h, 2 * w)


class DepthToSpace(nn.Module):
    """`nn.PixelShuffle(2)` by `depth_to_space` (no parameters: checkpoints are unchanged)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return depth_to_space(x)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad the last two dims up to a multiple; returns the padded tensor and (H, W).

    Reflection keeps the parity of offsets, so dilated blind-spot stacks stay blind.
    """
    height, width = x.shape[-2:]
    ph, pw = (-height) % multiple, (-width) % multiple
    if ph or pw:
        mode = "reflect" if ph < height and pw < width else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (height, width)


class UNet(nn.Module):
    """A light three-level U-Net working from half resolution (pixel unshuffle first).

    Used by F2R's stages, which are not pixel-blind: starting at half resolution makes it
    cheap enough for CPUs without losing the full-resolution detail (the 2x2 neighbourhood
    goes to channels). Accepts any H x W (pads to a multiple of 8 and crops back).
    """

    def __init__(self, cin: int, cout: int, width: int) -> None:
        super().__init__()
        w = width
        self.enc0 = nn.Sequential(conv(4 * cin, w), nn.ReLU(), conv(w, w), nn.ReLU())
        self.enc1 = nn.Sequential(
            conv(w, 2 * w, stride=2), nn.ReLU(), conv(2 * w, 2 * w), nn.ReLU()
        )
        self.bottom = nn.Sequential(
            conv(2 * w, 4 * w, stride=2),
            nn.ReLU(),
            conv(4 * w, 4 * w),
            nn.ReLU(),
            conv(4 * w, 4 * w),
            nn.ReLU(),
            conv(4 * w, 8 * w),
            DepthToSpace(),
        )
        self.dec1 = nn.Sequential(conv(2 * w, 2 * w), nn.ReLU(), conv(2 * w, 4 * w), DepthToSpace())
        self.dec0 = nn.Sequential(conv(w, w), nn.ReLU(), conv(w, 4 * cout), DepthToSpace())

    def quiet_output(self, scale: float = 0.01) -> None:
        """Start with an output close to zero: for a U-Net that adds a correction to something
        already good (F2R's anchor to the neighbours' mean, its refiner to the anchor), so an
        untrained correction does no harm and training starts from the simple estimate."""
        last = self.dec0[-2]
        with torch.no_grad():
            last.weight.mul_(scale)
            last.bias.zero_()

    def load_grown(self, state: dict[str, torch.Tensor]) -> None:
        """Load the weights of a U-Net with the same outputs and fewer inputs or a smaller
        width: its inputs are the first of this one's (new ones appended after them) and its
        channels the first of each layer's. Weights from the new inputs and channels to the old
        channels start at zero and the new channels keep their random start, so the output is
        unchanged until training gives the new ones a use (Net2Net's function-preserving
        widening, Chen et al., ICLR 2016, with zeros on the old channels' side)."""
        grown = {}
        for name, mine in self.state_dict().items():
            old = state[name]
            fits = old.dim() == mine.dim() and old.shape[2:] == mine.shape[2:]
            if not fits or any(a > b for a, b in zip(old.shape, mine.shape, strict=True)):
                raise ValueError(f"{name}: {tuple(old.shape)} does not fit {tuple(mine.shape)}")
            weight = mine.clone()
            if weight.dim() > 1:  # a convolution: old outputs read the old inputs only
                weight[: old.shape[0], old.shape[1] :] = 0
                weight[: old.shape[0], : old.shape[1]] = old
            else:
                weight[: old.shape[0]] = old
            grown[name] = weight
        self.load_state_dict(grown)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (height, width) = pad_to_multiple(x, 8)
        e0 = self.enc0(space_to_depth(x))
        e1 = self.enc1(e0)
        d1 = self.dec1(self.bottom(e1) + e1)
        return self.dec0(d1 + e0)[..., :height, :width]


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [N, C, H, W] with reflected borders."""
    radius = max(1, round(3 * sigma))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    mode = "reflect" if min(x.shape[-2:]) > radius else "replicate"
    x = F.pad(x, (radius, radius, radius, radius), mode=mode)
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
