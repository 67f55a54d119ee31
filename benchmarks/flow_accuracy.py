"""Optical flow accuracy as F2R needs it: the clean neighbours t-2..t+2 warped onto the clean
centre frame along flow computed from the noisy frames (8-bit: noise added, then rounded and
clipped), PSNR of the warp. Per flow estimator, sigma and temporal stride (--strides 1,3: the
sequences as they are, and with every third frame kept, 3x the motion); zero flow beside them.

    python benchmarks/flow_accuracy.py [VAL] [--flows dis,dis-medium,pyramid,dis+composed]
        [--sigmas 10,30,50] [--strides 1,3] [--centres 4] [--device cpu]

(pyramid-0.13: PyramidFlow as before 0.14.0, without DIS's variational refinement, blur 1.5.)

Figures: README and docs/performance.md (the torch flow against DIS, warp PSNR).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine  # noqa: I001  (imports vdenoise before torch)

import torch

from vdenoise.models.f2r import FLOW_BLUR, FLOW_SMOOTHNESS, dis_flow
from vdenoise.models.flow import DISFlow, FlowEstimator, compose, warp_bilinear
from vdenoise.models.pyramid_flow import PyramidFlow
from vdenoise.noise import NoiseModel
from vdenoise.training.data import find_sequences, read_sequence
from vdenoise.training.evaluate import corrupt


class ZeroFlow:
    def __call__(self, target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        return target.new_zeros(target.shape[0], 2, *target.shape[-2:])


COMPOSED = "+composed"  # a flow's name with this suffix: t+-2 composed from consecutive
FLOWS = {
    "zero": ZeroFlow,
    "dis": dis_flow,  # F2R's setting
    "dis-medium": lambda: DISFlow(smooth=FLOW_BLUR, smoothness=FLOW_SMOOTHNESS),  # before 0.13.0
    "pyramid": PyramidFlow,
    "pyramid-0.13": lambda: PyramidFlow(variational=0, blur=1.5),  # 0.13.0: no refinement
}


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR of [N, 3, H, W] in [0, 1]."""
    return -10 * torch.log10((a - b).square().mean((1, 2, 3)).clamp_min(1e-10))


def pairs(count: int, stride: int, centres: int) -> tuple[list[int], list[tuple[int, int]]]:
    """Centre frames spread over a sequence of `count` frames and the (centre, neighbour)
    pairs at distances -2..2 along the stride."""
    lo, hi = 2 * stride, count - 1 - 2 * stride
    chosen = sorted({lo + round(i * (hi - lo) / max(centres - 1, 1)) for i in range(centres)})
    offsets = [-2, -1, 1, 2]
    return chosen, [(c, c + d * stride) for c in chosen for d in offsets]


def measure(
    flow: FlowEstimator,
    clean: dict[int, torch.Tensor],
    noisy: dict[int, torch.Tensor],
    todo: list[tuple[int, int]],
    stride: int = 1,
    composed: bool = False,
) -> tuple[torch.Tensor, float]:
    """PSNR per pair [P] of the clean neighbour warped along flow from the noisy pair; seconds.
    `composed`: the flows to t+-2 composed from consecutive ones (t -> t+-1 -> t+-2)."""
    began = time.perf_counter()
    with torch.no_grad():
        if composed:
            field = consecutive_composed(flow, noisy, todo, stride)
        else:
            field = flow(*(torch.stack([noisy[p[i]] for p in todo]) for i in (0, 1)))
    if field.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - began
    warped = warp_bilinear(torch.stack([clean[s] for _, s in todo]).to(field), field)[0]
    return psnr(warped.cpu(), torch.stack([clean[c] for c, _ in todo])), seconds


def consecutive_composed(
    flow: FlowEstimator,
    noisy: dict[int, torch.Tensor],
    todo: list[tuple[int, int]],
    stride: int,
) -> torch.Tensor:
    """Flows for (target, source) pairs at distances 1 and 2 (along any stride), the far ones
    composed from the near ones: each consecutive flow computed once."""
    steps = sorted({pair for c, s in todo for pair in chain(c, s, stride)})
    computed = flow(*(torch.stack([noisy[p[i]] for p in steps]) for i in (0, 1)))
    near = dict(zip(steps, computed.unbind(), strict=True))
    fields = []
    for c, s in todo:
        first, *rest = chain(c, s, stride)
        field = near[first][None]
        for pair in rest:
            field = compose(field, near[pair][None])
        fields.append(field[0])
    return torch.stack(fields)


def chain(c: int, s: int, stride: int) -> list[tuple[int, int]]:
    """The consecutive pairs from c to s along the stride: (c, m), (m, s) at distance 2."""
    if abs(s - c) == 2 * stride:
        m = (c + s) // 2
        return [(c, m), (m, s)]
    return [(c, s)]


def main() -> None:
    val = Path(__file__).resolve().parents[2] / "shared" / "data" / "trainpack" / "val"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("val", nargs="?", type=Path, default=val)
    parser.add_argument("--flows", default="zero,dis,pyramid")
    parser.add_argument("--sigmas", default="10,30,50")
    parser.add_argument("--strides", default="1,3")
    parser.add_argument("--centres", type=int, default=4, help="centre frames per sequence")
    parser.add_argument("--frames", type=int, default=40, help="read at most this many")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    names = args.flows.split(",")
    flows = {name: FLOWS[name.removesuffix(COMPOSED)]() for name in names}
    sequences = [(p.stem, read_sequence(p, args.frames)) for p in find_sequences(args.val)]
    print(f"# {machine()}; {args.device}; {args.centres} centre frames of each of")
    print(f"# {', '.join(f'{n} ({len(f)} frames)' for n, f in sequences)}\n")
    print("| stride | sigma | distance | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    seconds = dict.fromkeys(names, 0.0)
    count = 0
    for stride in (int(s) for s in args.strides.split(",")):
        for sigma in (float(s) for s in args.sigmas.split(",")):
            scores: dict[str, list[torch.Tensor]] = {name: [] for name in names}
            distances: list[torch.Tensor] = []
            for index, (_, frames) in enumerate(sequences):
                todo = pairs(len(frames), stride, args.centres)[1]
                used = sorted({i for pair in todo for i in pair})
                clean = {i: frames[i].float() / 255 for i in used}
                stack = torch.stack([clean[i] for i in used])
                noise = NoiseModel.parse(f"gaussian:{sigma:g}")
                noisy_stack = corrupt(stack, noise, seed=index, eight_bit=True)[0]
                noisy = {i: noisy_stack[j].to(args.device) for j, i in enumerate(used)}
                for name, flow in flows.items():
                    composed = name.endswith(COMPOSED)
                    psnrs, took = measure(flow, clean, noisy, todo, stride, composed)
                    scores[name].append(psnrs)
                    seconds[name] += took
                distances.append(torch.tensor([abs(s - c) // stride for c, s in todo]))
                count += len(todo)
            distance = torch.cat(distances)
            for d in (1, 2):
                cells = [f"{torch.cat(scores[n])[distance == d].mean():.2f}" for n in names]
                print(f"| {stride} | {sigma:g} | {d} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n{count} pairs each; seconds per pair: ", end="")
    print(", ".join(f"{n} {seconds[n] / count:.3f}" for n in names))


if __name__ == "__main__":
    main()
