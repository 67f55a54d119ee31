"""Optical flow speed: pairs per second of F2R's DIS setting, of DIS's medium preset that F2R
used before 0.13.0 (the same blur and smoothness) and of the torch PyramidFlow, with its
variational refinement (since 0.14.0) and without, in one run, with their ratios; and what
each PyramidFlow asks of a device per pair (kernels launched, bytes read and written by its
operations, counted as they dispatch), from which its speed on a memory-bound GPU is
projected.

    python benchmarks/flow_speed.py [--device cpu] [--size 960x540] [--batch 16] [--runs 3]
        [--bandwidth 4.8e12]

Frames: a smooth random texture and a copy shifted a few pixels (the speed of neither
estimator depends much on the content). --bandwidth: the device's memory bandwidth in
bytes/s (an H200's 4.8 TB/s by default) for the projection, which assumes half of it reached.

Figures: docs/performance.md (torch flow and DIS pairs/s on this CPU).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine  # noqa: I001  (imports vdenoise before torch)

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from vdenoise.models.f2r import FLOW_BLUR, FLOW_SMOOTHNESS, dis_flow
from vdenoise.models.flow import DISFlow, FlowEstimator
from vdenoise.models.pyramid_flow import PyramidFlow

FLOWS = {
    "dis": dis_flow,  # F2R's setting
    "dis-medium": lambda: DISFlow(smooth=FLOW_BLUR, smoothness=FLOW_SMOOTHNESS),  # before 0.13.0
    "pyramid": PyramidFlow,
    "pyramid-0.13": lambda: PyramidFlow(variational=0, blur=1.5),  # 0.13.0: no refinement
}
FREE = {"aten.view", "aten._unsafe_view", "aten.expand", "aten.slice", "aten.unsqueeze",
        "aten.squeeze", "aten.unbind", "aten.select", "aten.permute", "aten.t",
        "aten.detach", "aten.alias", "aten.split", "aten._to_copy.noop"}  # fmt: skip


class Traffic(TorchDispatchMode):
    """Counts the operations that launch work and the bytes of their tensor inputs and outputs
    (what a memory-bound GPU kernel reads and writes, caches aside)."""

    def __init__(self) -> None:
        super().__init__()
        self.kernels: Counter[str] = Counter()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = str(func.overloadpacket)
        if name not in FREE:
            self.kernels[name] += 1
            outputs = out if isinstance(out, tuple | list) else [out]
            given = [*args, *(v for k, v in (kwargs or {}).items() if k != "out")]
            tensors = {id(t): t for t in [*given, *outputs] if isinstance(t, torch.Tensor)}
            written = {id(t) for t in outputs if isinstance(t, torch.Tensor)}
            read = {id(t) for t in given if isinstance(t, torch.Tensor)}
            # a tensor both read and written (in place) is moved twice; out= is only written
            moved = [*tensors, *(written & read)]
            self.bytes += sum(tensors[i].numel() * tensors[i].element_size() for i in moved)
        return out


def frames(n: int, height: int, width: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(n, 3, height // 8 + 2, width // 8 + 2, generator=g)
    wide = F.interpolate(coarse, size=(height + 16, width + 16), mode="bilinear")
    wide = wide + 0.1 * torch.rand(wide.shape, generator=g)
    target, source = wide[..., 8 : 8 + height, 8 : 8 + width], wide[..., 5 : 5 + height, 11:-5]
    return target.contiguous().to(device), source.contiguous().to(device)


def pairs_per_second(flow: FlowEstimator, target: torch.Tensor, source: torch.Tensor, runs: int):
    flow(target, source)  # warm-up: allocations, kernel selection
    sync = torch.cuda.synchronize if target.device.type == "cuda" else lambda: None
    sync()
    began = time.perf_counter()
    for _ in range(runs):
        flow(target, source)
    sync()
    return runs * len(target) / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--batch", type=int, default=16, help="pairs per call")
    parser.add_argument("--runs", type=int, default=3, help="calls timed")
    parser.add_argument("--bandwidth", type=float, default=4.8e12, help="bytes/s")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    target, source = frames(args.batch, height, width, args.device)
    print(
        f"# {machine()}; {args.device}; {args.size}, {args.batch} pairs a call, {args.runs} calls"
    )
    rates = {}
    for name, make in FLOWS.items():
        rates[name] = pairs_per_second(make(), target, source, args.runs)
        print(f"{name}: {rates[name]:.2f} pairs/s", flush=True)
    print(f"dis / dis-medium: {rates['dis'] / rates['dis-medium']:.2f}")
    print(f"pyramid / dis: {rates['pyramid'] / rates['dis']:.2f}")
    print(f"pyramid / pyramid-0.13: {rates['pyramid'] / rates['pyramid-0.13']:.2f}")
    for name in ("pyramid", "pyramid-0.13"):
        traffic = Traffic()
        with traffic, torch.no_grad():
            FLOWS[name]()(target[:2], source[:2])
        per_pair = traffic.bytes / 2
        kernels = sum(traffic.kernels.values())
        projected = 0.5 * args.bandwidth / per_pair
        print(f"{name}, per pair at {args.size}: {per_pair / 1e9:.2f} GB read and written, "
              f"{kernels} kernels a call (any batch); projected at half of "
              f"{args.bandwidth / 1e12:g} TB/s: {projected:,.0f} pairs/s")  # fmt: skip
        top = ", ".join(f"{k.removeprefix('aten.')} {v}" for k, v in traffic.kernels.most_common(6))
        print(f"most launched: {top}")


if __name__ == "__main__":
    main()
