"""The blind fallback's window sums (`fallback.sums_around`, from running sums) against two
separable box filters, the way they were computed until 0.11.0, in one run with their
ratio; and F2R's whole `spatial_fallback` per frame.

    python benchmarks/fallback_speed.py [--size 640x480] [--runs 20] [--threads 2]

Window 7 is F2R's (`FALLBACK_WINDOW`), 15 STBN's. Figures: the docstring of
`vdenoise/models/fallback.py` and CHANGELOG (0.11.0).
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

from vdenoise.models.fallback import FALLBACK_WINDOW, spatial_fallback, sums_around
from vdenoise.models.stbn import FALLBACK_WINDOW as STBN_WINDOW


def box_filter_sums(x: torch.Tensor, size: int) -> torch.Tensor:
    """The baseline: the same sums from two box filters (1-D passes of average pooling)."""

    def box(k: int) -> torch.Tensor:
        rows = F.avg_pool2d(x, (k, 1), 1, (k // 2, 0), count_include_pad=True)
        return F.avg_pool2d(rows, (1, k), 1, (0, k // 2), count_include_pad=True) * (k * k)

    return box(size) - box(3)


def milliseconds(work: Callable[[], object], runs: int) -> float:
    """Median time of one call over `runs` calls, after one warm-up call."""
    work()
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return 1000 * sorted(times)[len(times) // 2]


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
    print("| window | box filters (ms) | running sums (ms) | ratio | largest difference |")
    print("|---|---|---|---|---|")
    with torch.inference_mode():
        for size in (FALLBACK_WINDOW, STBN_WINDOW):
            before = milliseconds(lambda s=size: box_filter_sums(terms, s), args.runs)
            after = milliseconds(lambda s=size: sums_around(terms, s), args.runs)
            gap = (box_filter_sums(terms, size) - sums_around(terms, size)).abs().max()
            print(f"| {size} | {before:.1f} | {after:.1f} | {before / after:.2f}x | {gap:.1e} |")
        anchor, noisy = terms[:, :3], torch.rand(1, 3, height, width, generator=generator)
        level = torch.full((1, 1, height, width), 0.1)
        whole = milliseconds(lambda: spatial_fallback(anchor, noisy, level), args.runs)
    print(f"\nF2R's spatial_fallback: {whole:.1f} ms a frame")


if __name__ == "__main__":
    main()
