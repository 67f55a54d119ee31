"""What `vdenoise fit` gains on noise its starting weights were not trained for.

For each held-out clean sequence and each noise model: the first N frames get seeded noise
and are stored as 8-bit PNGs (clipped and rounded, as a camera would store them); then PSNR
against the clean frames is measured for
  - the starting weights, run as `vdenoise denoise` runs them (noise level estimated),
  - a fit of those weights on the noisy frames themselves (`vdenoise.training.run.fit`, the
    code path of `vdenoise fit`) for --minutes, once per F2R stage-2 loss (--refiners: `auto`,
    fit's default, picks SURE or recorrupted pairs from the noise measured against the anchor;
    `adaptive` the spatially adaptive supervision; `sure` the white-noise loss).

    python benchmarks/fit_gain.py --weights W.safetensors [--minutes 5] [--frames 20]
        [--noise correlated:25 --noise poisson-gaussian:0.01,5] [--refiners auto,adaptive]
        [VAL_DIR]                      (default: ../shared/data/trainpack/val)

Figures: README, "Adapting to your camera"; docs/training.md, "What a fit gains today".
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine  # noqa: I001  (imports vdenoise before torch)

import cv2
import torch

from vdenoise.noise import NoiseModel, estimate_sigma
from vdenoise.training import run
from vdenoise.training.data import find_sequences, read_sequence
from vdenoise.training.evaluate import corrupt, denoise_frames, mean_psnr
from vdenoise.checkpoint import load_checkpoint, read_metadata

OUT = Path(__file__).resolve().parent / "out"


def store_noisy(noisy: torch.Tensor, folder: Path) -> torch.Tensor:
    """Frames [N, 3, H, W] as 8-bit PNGs; returns what was stored, in [0, 1]."""
    folder.mkdir(parents=True)
    stored = (noisy.clamp(0, 1) * 255).round().to(torch.uint8)
    for i, frame in enumerate(stored):
        cv2.imwrite(str(folder / f"{i:05d}.png"), frame.permute(1, 2, 0).numpy()[..., ::-1])
    return stored.float() / 255


def main() -> None:
    default_val = Path(__file__).resolve().parents[2] / "shared" / "data" / "trainpack" / "val"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("val", nargs="?", type=Path, default=default_val)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--noise", action="append")
    parser.add_argument("--refiners", default="auto,adaptive")
    args = parser.parse_args()
    noises = [
        NoiseModel.parse(n) for n in args.noise or ["correlated:25", "poisson-gaussian:0.01,5"]
    ]
    refiners = args.refiners.split(",")
    device = torch.device("cpu")
    OUT.mkdir(exist_ok=True)
    print(f"machine: {machine()}; start: {args.weights.name}; fit {args.minutes:g} min, "
          f"first {args.frames} frames")  # fmt: skip
    rows = []
    for path in find_sequences(args.val):
        clean = read_sequence(path, args.frames).float() / 255
        for index, noise in enumerate(noises):
            with tempfile.TemporaryDirectory() as tmp:
                noisy, true_sigma = corrupt(clean, noise, seed=index)
                noisy = store_noisy(noisy, Path(tmp) / "noisy")
                sigma = estimate_sigma(list(noisy[:5]))
                start = load_checkpoint(args.weights)
                row = {"sequence": path.stem, "noise": str(noise), "sigma_estimated": sigma}
                row["noisy"] = mean_psnr(noisy, clean)
                row["start"] = mean_psnr(denoise_frames(start, noisy, sigma, device), clean)
                told = denoise_frames(start, noisy, true_sigma, device)  # an oracle level
                row["start_true_sigma"] = mean_psnr(told, clean)
                for refiner in refiners:
                    begin = run.Start(load_checkpoint(args.weights), args.weights.name)
                    settings = run.fit_settings(begin, minutes=args.minutes, refiner_loss=refiner)
                    began = time.monotonic()
                    model, report, level = run.fit(
                        Path(tmp) / "noisy",
                        Path(tmp) / f"{refiner}.safetensors",
                        begin,
                        settings,
                        device,
                    )
                    row[f"fit_{refiner}"] = mean_psnr(
                        denoise_frames(model, noisy, level, device), clean
                    )
                    row[f"steps_{refiner}"] = report.steps
                    row[f"level_{refiner}"] = level
                    row[f"loss_{refiner}"] = read_metadata(Path(tmp) / f"{refiner}.safetensors")[
                        "training"
                    ]["refiner_loss"]
                    row[f"seconds_{refiner}"] = round(time.monotonic() - began, 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
    (OUT / "fit_gain.json").write_text(json.dumps(rows, indent=1))
    print()
    head = ["sequence", "noise", "sigma est.", "noisy", "start", "start, true sigma"]
    head += [f"fit {r}" for r in refiners]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        cells = [r["sequence"], r["noise"], f"{r['sigma_estimated']:.1f}", f"{r['noisy']:.2f}",
                 f"{r['start']:.2f}", f"{r['start_true_sigma']:.2f}"]  # fmt: skip
        cells += [f"{r[f'fit_{x}']:.2f}" for x in refiners]
        print("| " + " | ".join(cells) + " |")
    for refiner in refiners:
        gain = sum(r[f"fit_{refiner}"] - r["start"] for r in rows) / len(rows)
        print(f"mean gain of fit ({refiner}) over the start: {gain:+.2f} dB")


if __name__ == "__main__":
    main()
