"""Accuracy of the noise-level estimate on clean sequences with known synthetic noise.

For each clip: the first 5 frames, white Gaussian noise of sigma 5/10/25/50 added (seeded,
not clipped), and the estimate vdenoise would show (`vdenoise.noise.estimate_sigma`).

    python benchmarks/noise_estimate.py [CLIP ...]   (default: ../shared/data/trainpack/val/*)

Figures: docs/methods.md, "The noise level".
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine  # noqa: I001  (imports vdenoise before torch)

import torch

from vdenoise.io import read_rgb
from vdenoise.noise import add_gaussian_noise, estimate_sigma

SIGMAS = (5, 10, 25, 50)


def main() -> None:
    root = Path(__file__).resolve().parents[2] / "shared" / "data" / "trainpack" / "val"
    clips = [Path(p) for p in sys.argv[1:]] or sorted(root.glob("*.mp4"))
    print(f"machine: {machine()}")
    print("| clip | as stored | " + " | ".join(f"sigma {s}" for s in SIGMAS) + " |")
    print("|---|---|" + "---|" * len(SIGMAS))
    for clip in clips:
        frames = [
            torch.from_numpy(f).permute(2, 0, 1).float() / 255
            for f in itertools.islice(read_rgb(clip), 5)
        ]
        cells = [f"{estimate_sigma(frames):.2f}"]
        for sigma in SIGMAS:
            g = torch.Generator().manual_seed(sigma)
            estimate = estimate_sigma([add_gaussian_noise(f, sigma, g) for f in frames])
            cells.append(f"{estimate:.2f} ({100 * (estimate - sigma) / sigma:+.1f}%)")
        print(f"| {clip.stem} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
