"""What `fit` reads of a clip's noise, against the truth, on clips with known synthetic noise.

For each validation sequence and noise: the first 16 frames with seeded noise stored as 8-bit
(as fit_gain.py stores them), the true average noise std (0-255) over all of them and over the
part that is measured (a central crop of the first frames), and the profile measured
against the anchor of the given weights (`vdenoise.training.noise_profile.measure_clip`): its
level, white or correlated, and how its variance varies with brightness, for each share of the
surest pixels its correlation is read on (`--shape-shares`) and each share of a brightness bin's
surest pixels its level is read on (`--level-shares`).

    python benchmarks/noise_profile.py --weights W [--noise SPEC ...] [--shape-shares 0.3,0.03]
        [--level-shares 0.3,0.1]

Figures: the shares and corrections in vdenoise/training/noise_profile.py; docs/training.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine  # noqa: I001  (imports vdenoise before torch)

import torch

from vdenoise.noise import NoiseModel, estimate_sigma
from vdenoise.training.data import read_sequence
from vdenoise.training.evaluate import corrupt
from vdenoise.training.noise_profile import (
    LEVEL_SHARE,
    SHAPE_SHARE,
    measure_clip,
    measured_clip,
)
from vdenoise.checkpoint import load_checkpoint


def true_level(clean: torch.Tensor, noise: NoiseModel) -> float:
    """The frames' average noise std on the 0-255 scale."""
    if noise.kind == "poisson-gaussian":
        return 255 * float((noise.gain * clean + (noise.low / 255) ** 2).mean().sqrt())
    return noise.low


def main() -> None:
    val = Path(__file__).resolve().parents[2] / "shared" / "data" / "trainpack" / "val"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("val", nargs="?", type=Path, default=val)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--noise", action="append")
    parser.add_argument("--shape-shares", default=str(SHAPE_SHARE))
    parser.add_argument("--level-shares", default=str(LEVEL_SHARE))
    parser.add_argument("--frames", type=int, default=16)
    args = parser.parse_args()
    specs = args.noise or ["gaussian:25", "correlated:25", "poisson-gaussian:0.01,5"]
    shares = [
        {"shape_share": float(shape), "level_share": float(level)}
        for shape in args.shape_shares.split(",")
        for level in args.level_shares.split(",")
    ]
    model = load_checkpoint(args.weights)
    print(f"machine: {machine()}; weights {args.weights.name}")
    print("| sequence | noise | true level (all / measured part) | shape share | level share | "
          "measured |\n|---|---|---|---|---|---|")  # fmt: skip
    for path in sorted(args.val.iterdir()):
        clean = read_sequence(path, args.frames).float() / 255
        for spec in specs:
            noise = NoiseModel.parse(spec)
            noisy, _ = corrupt(clean, noise, seed=0)
            stored = (noisy.clamp(0, 1) * 255).round().to(torch.uint8)
            guess = estimate_sigma(list(stored[:5].float() / 255))
            k = model.config.neighbours
            truth = f"{true_level(clean, noise):.1f} / "
            truth += f"{true_level(measured_clip(clean, k)[k:-k], noise):.1f}"
            for share in shares:
                profile = measure_clip(model, stored, guess, **share)
                print(f"| {path.stem} | {spec} | {truth} | "
                      f"{share['shape_share']:g} | {share['level_share']:g} | "
                      f"{profile.describe()} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
