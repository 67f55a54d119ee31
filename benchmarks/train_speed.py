"""Training with the flows computed once (`vdenoise/training/flow_cache.py`) against training
that estimates them every step: steps/s of each at equal settings, one after the other in one
run, and how well each flow aligns the clips (the clean neighbours warped onto the clean
centre, PSNR inside the crop) beside the flow of training without the cache (DIS on each noisy
crop with its 64-pixel margin, sigma 30, 8-bit).

    python benchmarks/train_speed.py [--weights weights/f2r-small.safetensors] [--data TRAIN]
        [--steps 20] [--batch 8] [--crop 128] [--frame-steps 1,2,3,4] [--clips 24]

Figures: docs/training.md, "Fast motion" (steps/s with cached flows, their alignment).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine  # noqa: I001  (imports vdenoise before torch)

import torch

from vdenoise.bench.metrics import psnr
from vdenoise.checkpoint import load_checkpoint
from vdenoise.models.f2r import F2R
from vdenoise.models.flow import warp_bilinear
from vdenoise.noise import to_8bit
from vdenoise.training.data import ClipSampler, find_sequences, read_sequence
from vdenoise.training.flow_cache import FlowCache
from vdenoise.training.losses import flow_pairs
from vdenoise.training.trainer import FLOW_MARGIN, Trainer, TrainSettings, clip_size


class Clock:
    """A training observer that notes when each step ends."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def note(self, message: str) -> None:
        pass

    def start(self, total: float, unit: str, done: float) -> None:
        pass

    def update(self, done: float, phase: str, loss: float) -> None:
        self.times.append(time.perf_counter())

    def stop(self) -> None:
        pass


def steps_per_second(model: F2R, sequences, cache: FlowCache | None, args) -> float:
    """Joint fine-tuning steps (both stages, stage 2's loss) per second, after 3 to warm up."""
    settings = TrainSettings(
        steps=args.steps + 3, batch=args.batch, crop=args.crop, lr=1e-5,
        noise="gaussian:5-55", anchor_share=0.0, joint_share=1.0, flow_cache=cache is not None,
        checkpoint_seconds=1e9,
    )  # fmt: skip
    sampler = ClipSampler(sequences, 5, clip_size(settings), steps=args.frame_steps, seed=1)
    sampler.flow_caches = [cache]
    fresh = F2R(model.config)
    fresh.load_state_dict(model.state_dict())
    clock = Clock()
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "model.safetensors"
        Trainer(fresh, sampler, settings, output, torch.device("cpu")).run(clock)
    return args.steps / (clock.times[-1] - clock.times[2])


@torch.no_grad()
def alignment(model: F2R, sequences, cache: FlowCache, args) -> dict[str, dict[int, float]]:
    """Mean PSNR of the clean neighbours warped onto the clean centre inside the crop, per
    frame step, along the cached flow and along DIS on the noisy crop with its margin (sigma
    30, 8-bit: the flow of training without the cache)."""
    pairs = flow_pairs(model, 5)
    sources = [s for _, s in pairs]
    out: dict[str, dict[int, list[float]]] = {"cached": {}, "noisy crop": {}}
    generator = torch.Generator().manual_seed(0)
    m, c = FLOW_MARGIN, args.crop
    for step in args.frame_steps:
        size = args.crop + 2 * FLOW_MARGIN
        sampler = ClipSampler(sequences, 5, size, augment=False, seed=step, steps=(step,))
        sampler.flow_caches = [cache]
        for _ in range(args.clips):
            clip, cached = sampler._clip(pairs)
            clean = clip.float() / 255
            noisy = to_8bit(clean + 30 / 255 * torch.randn(clean.shape, generator=generator))
            live = model.flow(noisy[[2] * len(pairs)], noisy[sources])
            for name, flow in (("cached", cached), ("noisy crop", live)):
                warped, _ = warp_bilinear(clean[sources], flow.float())
                inside = warped[..., m : m + c, m : m + c]
                scores = [psnr(w, clean[2, :, m : m + c, m : m + c]) for w in inside]
                out[name].setdefault(step, []).extend(scores)
    return {k: {s: sum(v) / len(v) for s, v in d.items()} for k, d in out.items()}


def main() -> None:
    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "trainpack" / "train"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=Path("weights/f2r-small.safetensors"))
    parser.add_argument("--data", type=Path, default=data)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--frame-steps", default="1,2,3,4")
    parser.add_argument("--clips", type=int, default=24)
    args = parser.parse_args()
    args.frame_steps = tuple(int(s) for s in args.frame_steps.split(","))
    model = load_checkpoint(args.weights)
    assert isinstance(model, F2R)
    sequences = [read_sequence(p) for p in find_sequences(args.data)]
    print(f"# {machine()}; {len(sequences)} sequences, {sum(map(len, sequences))} frames")
    began = time.perf_counter()
    cache = FlowCache.build(sequences, model.flow)
    print(f"flow cache ready in {time.perf_counter() - began:.1f} s")
    live = steps_per_second(model, sequences, None, args)
    cached = steps_per_second(model, sequences, cache, args)
    print(f"\nbatch {args.batch}, crop {args.crop}, frame steps {args.frame_steps}, joint phase")
    print(f"| flows | steps/s |\n|---|---|\n| every step | {live:.3f} |")
    print(f"| cached | {cached:.3f} ({cached / live:.2f}x) |")
    table = alignment(model, sequences, cache, args)
    steps = args.frame_steps
    print("\n| flow | " + " | ".join(f"step {s}" for s in steps) + " |")
    print("|---|" + "---|" * len(steps))
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(f"{row[s]:.2f}" for s in steps) + " |")


if __name__ == "__main__":
    main()
