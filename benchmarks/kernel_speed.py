"""The models' CPU kernels that replaced torch's own, each against the torch way it replaced, in
one run with their ratio and largest difference: the fallback's window sums
(`fallback.sums_around`) and the calibration's window mean (`windows.box_mean`) from running
sums against box filters (average pooling), the U-Nets' pixel (un)shuffles as one permuted
copy (`layers.depth_to_space`, `space_to_depth`) against `F.pixel_shuffle` / `unshuffle`, and
since 0.13.0 the flow cache's frame keys (`flow.fingerprints`: float32 block sums against
float64 throughout; the keys differ by design, so no difference is shown) and F2R's bilinear
warp with its inside mask (`flow.warp_bilinear`, the mask from the coordinates before they
are stacked) against the way of 0.12.0; since 0.14.0 the fallback's ring mean
(`fallback.ring_mean`: shifted additions against two depthwise convolutions) and stage 1's
softmax over its 36 kernel taps (torch's, beside the fusion's output, against the in-place
one of 0.13.0); since 0.16.0 the window sums and mean on CPUs by OpenCV's box filter against
the running sums they used before (`windows.running_box_sum`).

    python benchmarks/kernel_speed.py [--size 640x480] [--runs 20] [--threads 2]

Window 7 is F2R's fallback (`FALLBACK_WINDOW`), 15 STBN's, 31 the calibration's
(`CALIBRATION_WINDOW`); the shuffles at the sizes f2r-small's U-Nets make at that frame size.
Figures: the docstrings of `vdenoise/models/windows.py`, `layers.py` and `flow.py`, CHANGELOG.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine  # noqa: I001  (imports vdenoise before torch)

import torch
import torch.nn.functional as F

from vdenoise.models.fallback import FALLBACK_WINDOW, ring_mean, spatial_fallback, sums_around
from vdenoise.models.flow import fingerprints, warp_bilinear
from vdenoise.models.gaussian import CALIBRATION_WINDOW
from vdenoise.models.layers import depth_to_space, space_to_depth
from vdenoise.models.stbn import FALLBACK_WINDOW as STBN_WINDOW
from vdenoise.models.windows import box_mean, running_box_sum


def box_filter_sums(x: torch.Tensor, size: int) -> torch.Tensor:
    """The baseline of `sums_around`: two box filters (1-D passes of average pooling)."""

    def box(k: int) -> torch.Tensor:
        rows = F.avg_pool2d(x, (k, 1), 1, (k // 2, 0), count_include_pad=True)
        return F.avg_pool2d(rows, (1, k), 1, (0, k // 2), count_include_pad=True) * (k * k)

    return box(size) - box(3)


def running_sums_around(x: torch.Tensor, size: int) -> torch.Tensor:
    """`sums_around` from running sums, as until 0.16.0 on CPUs."""
    return (running_box_sum(x, size) - running_box_sum(x, 3)).float()


def running_mean(x: torch.Tensor, size: int) -> torch.Tensor:
    """`box_mean` from running sums, as until 0.16.0 on CPUs."""
    counts = [running_box_sum(torch.ones(1, 1, n, 1), size)[0, 0, :, 0] for n in x.shape[-2:]]
    return (running_box_sum(x, size) / (counts[0].view(-1, 1) * counts[1])).float()


def pooled_mean(x: torch.Tensor, size: int) -> torch.Tensor:
    """The baseline of `box_mean` (until 0.11.0): 1-D passes of average pooling, in frame."""
    r = size // 2
    x = F.avg_pool2d(x, (size, 1), 1, (r, 0), count_include_pad=False)
    return F.avg_pool2d(x, (1, size), 1, (0, r), count_include_pad=False)


def float64_keys(frames: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The baseline of `fingerprints` (until 0.12.0): two weighted sums of each frame in
    float64, one frame at a time."""
    return torch.stack([frame.double() @ weights for frame in frames.flatten(1)])


def stacked_warp(x: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The baseline of `warp_bilinear` (until 0.12.0): the inside mask from the stacked grid."""
    height, width = flow.shape[-2:]
    ys, xs = torch.meshgrid(
        torch.arange(height).float(), torch.arange(width).float(), indexing="ij"
    )
    gx = (xs + flow[:, 0]) * (2 / max(width - 1, 1)) - 1
    gy = (ys + flow[:, 1]) * (2 / max(height - 1, 1)) - 1
    grid = torch.stack([gx, gy], -1)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
    inside = (grid.abs() <= 1 + 1e-6).all(-1, keepdim=True).permute(0, 3, 1, 2)
    return out, inside.float()


def conv_ring_mean(x: torch.Tensor) -> torch.Tensor:
    """The baseline of `ring_mean` (until 0.13.0): a depthwise 3 x 3 convolution with a zero
    centre, over the same convolution of ones."""
    ring = torch.ones(1, 1, 3, 3)
    ring[..., 1, 1] = 0
    total = F.conv2d(x, ring.expand(x.shape[1], 1, 3, 3), padding=1, groups=x.shape[1])
    return total / F.conv2d(torch.ones_like(x[:, :1]), ring, padding=1)


def in_place_softmax(logits: torch.Tensor) -> torch.Tensor:
    """The baseline of stage 1's softmax at inference (until 0.13.0): the logits copied with
    the prior added, then max, exp and sum in place."""
    weights = logits + 0.0
    weights.sub_(weights.amax(1, keepdim=True)).exp_()
    return weights.div_(weights.sum(1, keepdim=True))


def milliseconds(work: Callable[[], object], runs: int) -> float:
    """Median time of one call over `runs` calls, after one warm-up call."""
    work()
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return 1000 * sorted(times)[len(times) // 2]


def row(name: str, before: Callable, after: Callable, runs: int, compare: bool = True) -> None:
    """One table row: both ways' median times, their ratio and largest difference."""
    slow, fast = milliseconds(before, runs), milliseconds(after, runs)
    gap = f"{(before().double() - after().double()).abs().max():.1e}" if compare else "–"
    print(f"| {name} | {slow:.1f} | {fast:.1f} | {slow / fast:.2f}x | {gap} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.split("x"))
    generator = torch.Generator().manual_seed(0)
    terms = torch.rand(1, 4, height, width, generator=generator)  # what `blend` sums
    print(f"# {machine()}; {args.size}, {args.threads} threads, median of {args.runs}\n")
    print("| kernel | the way before (ms) | ours (ms) | ratio | largest difference |")
    print("|---|---|---|---|---|")
    with torch.inference_mode():
        baselines = {"": (box_filter_sums, pooled_mean)}  # the ways before 0.12.0
        baselines[": running sums / OpenCV"] = (running_sums_around, running_mean)  # 0.16.0
        for label, (sums_before, mean_before) in baselines.items():
            for size in (FALLBACK_WINDOW, STBN_WINDOW):
                row(
                    f"window sums, {size} px{label}",
                    lambda s=size, f=sums_before: f(terms, s),
                    lambda s=size: sums_around(terms, s),
                    args.runs,
                )
            row(
                f"window mean, {CALIBRATION_WINDOW} px{label}",
                lambda f=mean_before: f(terms, CALIBRATION_WINDOW),
                lambda: box_mean(terms, CALIBRATION_WINDOW),
                args.runs,
            )
        h, w = height // 2 + height % 2, width // 2 + width % 2  # a U-Net's first level
        for channels in (12, 180):  # the refiner's output (3 x 4), stage 1's fusion (45 x 4)
            x = torch.rand(1, channels, h, w, generator=generator)
            row(
                f"pixel shuffle, {channels} channels",
                lambda x=x: F.pixel_shuffle(x, 2),
                lambda x=x: depth_to_space(x),
                args.runs,
            )
        x = torch.rand(1, 17, 2 * h, 2 * w, generator=generator)  # the refiner's input
        row(
            "pixel unshuffle, 17 channels",
            lambda: F.pixel_unshuffle(x, 2),
            lambda: space_to_depth(x),
            args.runs,
        )
        frames = torch.rand(8, 3, height, width, generator=generator)  # one window's pairs
        weights = 0.5 + torch.rand(3 * height * width, 2, generator=generator).double()
        row(
            "frame keys, 8 frames",
            lambda: float64_keys(frames, weights),
            lambda: torch.tensor(fingerprints(frames)),
            args.runs,
            compare=False,
        )
        flow = 4 * torch.randn(4, 2, height, width, generator=generator)
        row(
            "bilinear warp and mask, 4 frames",
            lambda: torch.cat(stacked_warp(frames[:4], flow), 1),
            lambda: torch.cat(warp_bilinear(frames[:4], flow), 1),
            args.runs,
        )
        anchor, noisy = terms[:, :3], torch.rand(1, 3, height, width, generator=generator)
        row(
            "ring mean, 3 channels",
            lambda: conv_ring_mean(noisy),
            lambda: ring_mean(noisy),
            args.runs,
        )
        logits = 4 * torch.randn(1, 36, height, width, generator=generator)  # 2k K^2 taps
        row(
            "stage 1's softmax, 36 taps",
            lambda: in_place_softmax(logits),
            lambda: torch.softmax(logits.add_(0.0), 1),
            args.runs,
        )
        level = torch.full((1, 1, height, width), 0.1)
        whole = milliseconds(lambda: spatial_fallback(anchor, noisy, level), args.runs)
    print(f"\nF2R's spatial_fallback: {whole:.1f} ms a frame")


if __name__ == "__main__":
    main()
