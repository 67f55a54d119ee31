"""Optical flow in torch, coarse to fine, batched: what runs on the GPU in place of DIS.

Per pair, on lightly blurred luma (sigma 0.5 since 0.14.0: with step 5, less blur measured
better, below):

1. an image pyramid, halving until the short side would fall under `coarsest` pixels;
2. at each level, from the coarsest: the flow from the level above (doubled), the source
   warped along it, then a block-matching search of +/- `radius` pixels around it (the sum of
   squared differences over a `patch` x `patch` box, shifted differences of the warped source,
   as PWC-Net builds its cost volume: Sun et al., CVPR 2018), the best offset kept;
3. the flow's outliers taken out by a 3 x 3 median, then `iterations` Lucas-Kanade steps
   (Lucas and Kanade, 1981; the per-pixel 2 x 2 normal equations summed over a box window,
   damped in flat areas) for the sub-pixel part;
4. smoothing: each level's flow averaged over a box, weighted by how well the window pins it
   down (the smaller eigenvalue of its structure tensor) over how badly it still matches (the
   window's squared warp error), so flat areas and occlusions take the flow of the matched,
   textured areas around them;
5. since 0.14.0, DIS's own last step, its variational refinement (`variational.refine_flow`,
   with F2R's smoothness weight). f2r-small's output with DIS and with this flow on the
   validation sequences, 8-bit, sigma 10/30/50 (2026-12-05): 4 frames at 1x-3x motion
   (benchmarks/stages.py --flow pyramid|dis) +0.01 / +0.01 / -0.01 dB on average (per
   sequence -0.10 to +0.24), where it was -0.06 / -0.09 / -0.10 before 0.14.0 (blur 1.5, no
   refinement) and -0.02 / -0.02 / -0.03 with the refinement and blur 1.5; 25 frames at 1x
   -0.02 / 0.00 / 0.00; its anchor above DIS's on average (docs/training.md, "Where the torch
   flow's output gap sits").

The design and its settings were chosen by benchmarks/flow_accuracy.py (warp PSNR of clean
neighbours along flow from noisy 8-bit frames, trainpack/val, against F2R's DIS setting);
the large-motion and blindness checks are tests/models/test_pyramid_flow.py.

Everything is convolutions, pooling and grid sampling on [N, 1, H, W] maps: one batch of pairs
is one sequence of kernels on the device, with no per-pair Python loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vdenoise.models.layers import gaussian_blur
from vdenoise.models.variational import refine_flow

LUMA = (0.299, 0.587, 0.114)
BIAS = 1e-3  # relative cost added per squared pixel of search offset: ties stay put
SOURCE_GRADIENT = False
RESIDUAL = 1e-4  # the smoothing weight's floor of squared warp error (luma in [0, 1])


class PyramidFlow:
    """Coarse-to-fine block matching and Lucas-Kanade refinement, in torch.

    Same interface as `DISFlow`: `flow = PyramidFlow()(target, source)`, [N, 2, H, W] with
    target(p) ~ source(p + flow(p)), for frames [N, 3, H, W] in [0, 1] on any device."""

    def __init__(
        self,
        blur: float = 0.5,
        radius: int = 3,
        patch: int = 11,
        iterations: int = 3,
        smooth: int = 13,
        coarsest: int = 24,
        damping: float = 1e-4,
        finest_radius: int = 0,
        finest_smooth: int = 13,
        coarsest_radius: int = 6,
        finest_iterations: int = 2,
        variational: int = 3,
        variational_alpha: float = 60.0,
    ) -> None:
        self.blur, self.radius, self.patch = blur, radius, patch
        self.iterations, self.smooth, self.coarsest = iterations, smooth, coarsest
        self.damping, self.finest_radius = damping, finest_radius
        self.finest_smooth, self.coarsest_radius = finest_smooth, coarsest_radius
        self.finest_iterations = finest_iterations
        self.variational, self.variational_alpha = variational, variational_alpha

    def __repr__(self) -> str:
        return f"PyramidFlow({vars(self)})"

    def __call__(self, target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        n, _, height, width = target.shape
        if min(height, width) < 8:  # too small to match anything: assume no motion
            return target.new_zeros(n, 2, height, width, dtype=torch.float32)
        # In float32 whatever the model runs in: the structure tensor's products of gradients
        # (1e-8 and below) would vanish in half precision.
        with torch.autocast(target.device.type, enabled=False):
            return self._flow(target.float(), source.float())

    def _flow(self, target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        n = target.shape[0]
        # Both frames of each pair in one batch, so each level is one call per operation.
        both = luma(torch.cat([target, source]))
        if self.blur:
            both = gaussian_blur(both, self.blur)
        pyramid = [both]
        while min(pyramid[-1].shape[-2:]) >= 2 * self.coarsest:
            pyramid.append(F.avg_pool2d(gaussian_blur(pyramid[-1], 1.0), 2))
        flow = both.new_zeros(n, 2, *pyramid[-1].shape[-2:])
        for index in reversed(range(len(pyramid))):
            level = pyramid[index]
            flow = upsample(flow, level.shape[-2:])
            radius = self.finest_radius if index == 0 else self.radius
            if index == len(pyramid) - 1 and index:
                radius = self.coarsest_radius
            smooth = self.finest_smooth if index == 0 else self.smooth
            iterations = self.finest_iterations if index == 0 else self.iterations
            flow = self.level(level[:n], level[n:], flow, radius, smooth, iterations)
        return flow

    def level(
        self,
        target: torch.Tensor,
        source: torch.Tensor,
        flow: torch.Tensor,
        radius: int,
        smooth: int,
        iterations: int,
    ) -> torch.Tensor:
        """One level: search, median, Lucas-Kanade, smoothing, variational refinement."""
        if radius:
            flow = flow + self.search(target, warp(source, flow), radius)
            flow = median3(flow)
        weight = None
        for _ in range(iterations):
            step, weight = self.lucas_kanade(target, source, flow)
            flow = flow + step
        if smooth and weight is not None:
            flow = box(flow * weight, smooth) / box(weight, smooth).clamp_min(1e-12)
        if self.variational:  # on 0..255, the scale of its constants
            flow = refine_flow(
                255 * target, 255 * source, flow, self.variational, self.variational_alpha
            )
        return flow

    def search(self, target: torch.Tensor, warped: torch.Tensor, radius: int) -> torch.Tensor:
        """The integer offset [N, 2, H, W] within +/- radius whose patch matches best."""
        r, (h, w) = radius, target.shape[-2:]
        padded = F.pad(warped, (r, r, r, r), mode="replicate")
        best = target.new_full(target.shape, float("inf"))
        side = 2 * r + 1
        kind = torch.uint8 if side * side <= 256 else torch.int32
        index = torch.zeros(target.shape, dtype=kind, device=target.device)
        square = torch.empty_like(target)
        for i in range(side * side):
            dy, dx = divmod(i, side)
            torch.sub(target, padded[..., dy : dy + h, dx : dx + w], out=square).square_()
            cost = box(square, self.patch)
            if (dx - r) or (dy - r):  # a bias to no step at equal cost: flat areas stay put
                cost.mul_(1 + BIAS * ((dx - r) ** 2 + (dy - r) ** 2))
            index.masked_fill_(cost < best, i)
            torch.minimum(best, cost, out=best)
        index = index.to(target.dtype)
        return torch.cat([index.remainder(side), index.div(side, rounding_mode="floor")], 1) - r

    def lucas_kanade(
        self, target: torch.Tensor, source: torch.Tensor, flow: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One Gauss-Newton step of the flow [N, 2, H, W] and its confidence [N, 1, H, W] (the
        smaller eigenvalue of the window's structure tensor)."""
        warped = warp(source, flow)
        gx, gy = gradients(warped if SOURCE_GRADIENT else 0.5 * (warped + target))
        error = target - warped
        k = self.patch
        products = target.new_empty(target.shape[0], 6, *target.shape[-2:])
        for i, (x, y) in enumerate([(gx, gx), (gx, gy), (gy, gy), (gx, error), (gy, error)]):
            torch.mul(x, y, out=products[:, i : i + 1])
        torch.square(error, out=products[:, 5:])
        a, b, c, ex, ey, residual = box(products, k).unbind(1)
        a, c = a + self.damping, c + self.damping
        det = a * c - b * b
        step = torch.stack([(c * ex - b * ey) / det, (a * ey - b * ex) / det], 1)
        step = step.clamp(-1.0, 1.0)
        half_trace = 0.5 * (a + c)
        weight = (half_trace - ((0.5 * (a - c)).square() + b * b).sqrt()).clamp_min(0)
        if RESIDUAL:
            weight = weight / (residual + RESIDUAL)
        return step, weight.unsqueeze(1) + 1e-9


def luma(frames: torch.Tensor) -> torch.Tensor:
    """Rec. 601 luma [N, 1, H, W] of RGB frames [N, 3, H, W]."""
    weights = torch.tensor(LUMA, device=frames.device, dtype=frames.dtype).view(1, 3, 1, 1)
    return (frames * weights).sum(1, keepdim=True)


def box(x: torch.Tensor, size: int) -> torch.Tensor:
    """Mean over the part inside the frame of a size x size box around each pixel (odd size)."""
    r = size // 2
    x = F.avg_pool2d(x, (1, size), 1, (0, r), count_include_pad=False)
    return F.avg_pool2d(x, (size, 1), 1, (r, 0), count_include_pad=False)


def median3(flow: torch.Tensor) -> torch.Tensor:
    """3 x 3 median of each channel of [N, C, H, W], the border repeated."""
    n, c, h, w = flow.shape
    patches = F.unfold(F.pad(flow, (1, 1, 1, 1), mode="replicate"), 3)
    return patches.view(n, c, 9, h, w).median(2).values


def gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences of [N, 1, H, W], one-sided at the border."""
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    gx = 0.5 * (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2])
    gy = 0.5 * (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1])
    return gx, gy


def upsample(flow: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    """A coarser level's flow at `size`, its vectors scaled to the new pixel size."""
    h, w = flow.shape[-2:]
    if (h, w) == tuple(size):
        return flow
    out = F.interpolate(flow, size=tuple(size), mode="bilinear", align_corners=True)
    scale = torch.tensor([(size[1] - 1) / max(w - 1, 1), (size[0] - 1) / max(h - 1, 1)])
    return out * scale.to(out).view(1, 2, 1, 1)


def warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """x [N, C, H, W] sampled at p + flow(p), bilinear, the border repeated."""
    h, w = x.shape[-2:]
    ys = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1)
    xs = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, w)
    gx = (xs + flow[:, 0]) * (2 / max(w - 1, 1)) - 1
    gy = (ys + flow[:, 1]) * (2 / max(h - 1, 1)) - 1
    grid = torch.stack([gx, gy], -1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
