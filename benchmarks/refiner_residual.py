"""F2R's stage 2 three ways: what its residual is added to, and whether it is confined to
high frequencies.

- anchor, high-pass: the refiner corrects the anchor's high frequencies only (before 2026-11);
- anchor, full: the refiner corrects the anchor at every frequency;
- posterior, full: the refiner corrects the Gaussian posterior mean of the clean frame given
  the anchor's prediction (mean and covariance) and the noisy frame (the presets now).

Each gets a new refiner on the same trained anchor (stage 1 of --weights, frozen), is trained
for the same budget with SURE on the training sequences with AWGN of sigma in [5, 55], and is
measured on the held-out sequences at each --sigma: PSNR of the first --frames frames, also
before training (the refiner's output starts near zero, so that is its starting point).

    python benchmarks/refiner_residual.py --weights weights/f2r-small.safetensors \
        [--minutes 4] [--sigmas 10,30,50] [--frames 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine  # noqa: I001  (imports vdenoise before torch)

import torch

from vdenoise.models.f2r import F2R
from vdenoise.noise import NoiseModel
from vdenoise.training.data import ClipSampler, find_sequences, read_sequence
from vdenoise.training.evaluate import validate
from vdenoise.training.trainer import Trainer, TrainSettings, clip_size
from vdenoise.checkpoint import load_checkpoint

PACK = Path(__file__).resolve().parents[2] / "shared" / "data" / "trainpack"


VARIANTS = {
    "anchor, high-pass": {"posterior": False, "highpass": True},
    "anchor, full": {"posterior": False, "highpass": False},
    "posterior, full": {"posterior": True, "highpass": False},
}


def variant(start: F2R, options: dict[str, bool]) -> F2R:
    """The anchor of `start` with a new refiner of this kind."""
    torch.manual_seed(0)
    model = F2R(replace(start.config, **options))
    model.estimator.load_state_dict(start.estimator.state_dict())
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--sigmas", default="10,30,50")
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--data", type=Path, default=PACK)
    args = parser.parse_args()
    device = torch.device("cpu")
    start = load_checkpoint(args.weights)
    assert isinstance(start, F2R), "an F2R checkpoint is needed"
    train = [read_sequence(p) for p in find_sequences(args.data / "train")]
    val = [(p.stem, read_sequence(p, args.frames)) for p in find_sequences(args.data / "val")]
    sigmas = [float(s) for s in args.sigmas.split(",")]
    print(f"machine: {machine()}")
    print(f"stage 2 only, {args.minutes} min each, from {args.weights.name}; mean PSNR (dB)")
    print("| stage 2 | trained | " + " | ".join(f"sigma {s:g}" for s in sigmas) + " |")
    print("|---|---|" + "---|" * len(sigmas))

    def measure(model: F2R) -> list[float]:
        return [validate(model, val, NoiseModel.parse(f"gaussian:{s:g}"), device)["psnr"]
                for s in sigmas]  # fmt: skip

    for name, options in VARIANTS.items():
        model = variant(start, options)
        before = measure(model)
        settings = TrainSettings(
            minutes=args.minutes, noise="gaussian:5-55", anchor_share=0.0, checkpoint_seconds=1e9
        )
        sampler = ClipSampler(train, 2 * model.config.neighbours + 1, clip_size(settings))
        with tempfile.TemporaryDirectory() as tmp:
            Trainer(model, sampler, settings, Path(tmp) / "m.safetensors", device).run()
        for label, row in (("no", before), (f"{args.minutes:g} min", measure(model))):
            print(f"| {name} | {label} | " + " | ".join(f"{v:.2f}" for v in row) + " |", flush=True)


if __name__ == "__main__":
    main()
