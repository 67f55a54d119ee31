"""One `vdenoise fit` variant on one validation sequence: where its PSNR comes from.

Like fit_gain.py (first N frames, seeded noise stored as 8-bit PNGs, a fit of --minutes on
them), with TrainSettings overrides given as JSON, and three numbers after the fit: the
output's PSNR, the anchor's alone (stage 1), and the output when the refiner is told the
level times sqrt(1 + 0.5^2) (the level R2R trains at).

    python benchmarks/fit_variants.py SEQUENCE NOISE --weights W [--minutes 5] [--frames 16]
        [--settings '{"lr": 0.001, "anchor_share": 0.3, "refiner_loss": "r2r"}']

Figures: docs/training.md (the 5-minute fits behind fit's rates and stages) and
vdenoise/training/run.py.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine  # noqa: I001  (imports vdenoise before torch)
from benchmarks.fit_gain import store_noisy

import torch

from vdenoise.noise import NoiseModel
from vdenoise.training import run
from vdenoise.training.data import read_sequence
from vdenoise.training.evaluate import corrupt, denoise_frames, mean_psnr
from vdenoise.checkpoint import load_checkpoint, read_metadata


def main() -> None:
    val = Path(__file__).resolve().parents[2] / "shared" / "data" / "trainpack" / "val"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sequence", help="a file name in VAL without suffix")
    parser.add_argument("noise")
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--val", type=Path, default=val)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--settings", default="{}")
    args = parser.parse_args()
    overrides = json.loads(args.settings)
    clean = read_sequence(next(args.val.glob(f"{args.sequence}.*")), args.frames).float() / 255
    device = torch.device("cpu")
    print(f"machine: {machine()}; {args.sequence}, {args.noise}, {overrides}")
    with tempfile.TemporaryDirectory() as tmp:
        noisy, _ = corrupt(clean, NoiseModel.parse(args.noise), seed=0)
        noisy = store_noisy(noisy, Path(tmp) / "noisy")
        output = Path(tmp) / "fit.safetensors"
        start = run.Start(load_checkpoint(args.weights), args.weights.name)
        settings = run.fit_settings(start, minutes=args.minutes, **overrides)
        model, _, level = run.fit(Path(tmp) / "noisy", output, start, settings, device)
        training = read_metadata(output)["training"]
    k = model.config.neighbours
    n = len(noisy)
    order = [-i for i in range(-k, 0)] + list(range(n)) + [n - 2 - j for j in range(k)]
    with torch.no_grad():
        anchor = model.anchor(noisy[order][None], torch.tensor([level / 255]))[0, :, :3]
    result = {
        "level": level,
        "loss": training["refiner_loss"],
        "phases": [(p["name"], p["steps"]) for p in training["phases"]],
        "fit": mean_psnr(denoise_frames(model, noisy, level, device), clean),
        "anchor": mean_psnr(anchor, clean),
        "fit_level_r2r": mean_psnr(
            denoise_frames(model, noisy, level * math.hypot(1, 0.5), device), clean
        ),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
