"""Kernels launched per frame by `f2r-small` with the torch flow, at 4 and 16 frames a call:
what an accelerator pays per frame in launches (a few microseconds each from eager PyTorch),
whatever the frame size. Counted as the operations dispatch (`flow_speed.Traffic`), on the
batched path a GPU takes, in steady state: the second call of a stream, whose flows to the
frames of the first are already in the `PairCache`.

    python benchmarks/launches.py [--size 960x540] [--calls 2,4]

Two call sizes are counted (default 2 and 4 frames, which fit in a CPU's memory at 960x540)
and the rest follows from the fit launches = per call + per frame x frames.

Figures: docs/performance.md (frames a call on accelerators).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine  # noqa: I001  (imports vdenoise before torch)

import torch

from benchmarks.flow_speed import FLOWS, Traffic
from vdenoise.checkpoint import load_model
from vdenoise.engine import MAX_FRAMES_PER_CALL
from vdenoise.models.flow import PairCache


def launches(flow: str, frames: int, height: int, width: int) -> int:
    """Kernels of the second of two calls of `frames` frames each."""
    model = load_model("f2r", device_type="cpu")[0]
    model.flow = PairCache(FLOWS[flow]())
    context = model.frames_before + model.frames_after
    torch.manual_seed(0)
    stream = torch.rand(1, 2 * frames + context, 3, height, width)
    sigma = torch.tensor([0.1])
    counted = Traffic()
    with torch.no_grad():
        for start in (0, frames):
            clip = stream[:, start : start + frames + context]
            with counted if start else torch.no_grad():
                model._window_stages(*model.windows(clip), model._level(sigma, frames, clip))
    return sum(counted.kernels.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--calls", default="2,4", help="two call sizes to count")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    small, large = map(int, args.calls.split(","))
    print(f"# {machine()}; f2r-small, {args.size}, steady state")
    for flow in ("pyramid", "pyramid-0.13"):
        counts = {n: launches(flow, n, height, width) for n in (small, large)}
        per_frame = (counts[large] - counts[small]) / (large - small)
        per_call = counts[large] - per_frame * large
        shown = ", ".join(f"{n} frames {c}" for n, c in counts.items())
        print(f"{flow}: counted {shown}; {per_call:.0f} a call + {per_frame:.0f} a frame")
        for n in (4, MAX_FRAMES_PER_CALL):
            print(f"  {n} frames a call: {(per_call + per_frame * n) / n:,.0f} kernels a frame")


if __name__ == "__main__":
    main()
