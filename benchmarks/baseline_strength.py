"""Tune the strength of each classical baseline of `vdenoise bench` as a slope on sigma.

Each baseline's strength parameter is set to SLOPE * sigma (see vdenoise/bench/baselines.py);
this script measures mean PSNR over the held-out sequences for a grid of slopes at several
sigmas and prints the best slope per baseline (best mean over the sigmas), with its per-sigma
PSNR and time per frame. Frames are a central crop, to keep the slow filters affordable.

    python benchmarks/baseline_strength.py [VAL_DIR] [--frames 8] [--crop 256] [--sigmas 10,30,50]

Figures: the slopes of vdenoise/bench/baselines.py, with the PSNR each reached.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine  # noqa: I001  (imports vdenoise before torch)

from vdenoise.bench import baselines
from vdenoise.bench.protocol import score
from vdenoise.noise import NoiseModel
from vdenoise.training.data import find_sequences, read_sequence
from vdenoise.training.evaluate import corrupt

GRIDS = {  # baseline -> (module constant, slopes tried)
    "opencv-nlm": ("OPENCV_H", (0.3, 0.45, 0.6, 0.8, 1.0, 1.2)),
    "ffmpeg-nlmeans": ("NLMEANS_S", (0.5, 0.75, 1.0, 1.25, 1.5)),
    "ffmpeg-bm3d": ("BM3D_SIGMA", (3.0, 4.5, 6.0, 8.0, 12.0, 16.0)),
    "ffmpeg-atadenoise": ("ATADENOISE_A", (0.002, 0.004, 0.006, 0.01, 0.02)),
    "ffmpeg-fftdnoiz": ("FFTDNOIZ_SIGMA", (0.5, 1.0, 1.5, 2.0, 3.0)),
}


def main() -> None:
    default_val = Path(__file__).resolve().parents[2] / "shared" / "data" / "trainpack" / "val"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("val", nargs="?", type=Path, default=default_val)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--sigmas", default="10,30,50")
    parser.add_argument("--only", default=",".join(GRIDS))
    args = parser.parse_args()
    sigmas = [float(s) for s in args.sigmas.split(",")]
    clips = []
    for path in find_sequences(args.val):
        frames = read_sequence(path, args.frames).float() / 255
        h, w = frames.shape[-2:]
        top, left = (h - args.crop) // 2, (w - args.crop) // 2
        clips.append(frames[..., top : top + args.crop, left : left + args.crop])
    print(f"machine: {machine()}; {len(clips)} sequences, {args.frames} frames, "
          f"{args.crop}x{args.crop} crops")  # fmt: skip
    for name in args.only.split(","):
        constant, slopes = GRIDS[name]
        results = []
        for slope in slopes:
            setattr(baselines, constant, slope)
            per_sigma, seconds, count = [], 0.0, 0
            for sigma in sigmas:
                values = []
                for clean in clips:
                    noisy, _ = corrupt(clean, NoiseModel.parse(f"gaussian:{sigma:g}"), seed=0)
                    began = time.perf_counter()
                    out = baselines.BASELINES[name](noisy, sigma)
                    seconds += time.perf_counter() - began
                    count += len(out)
                    values.append(score(out, clean)[0])
                per_sigma.append(sum(values) / len(values))
            mean = sum(per_sigma) / len(per_sigma)
            results.append((mean, slope, per_sigma, seconds / count))
            cells = ", ".join(f"{s:g}: {p:.2f}" for s, p in zip(sigmas, per_sigma, strict=True))
            print(f"{name} {constant}={slope:g}: {cells} (mean {mean:.2f}; "
                  f"{seconds / count:.3f} s/frame)", flush=True)  # fmt: skip
        best = max(results)
        print(f"best {name}: {constant} = {best[1]:g} (mean PSNR {best[0]:.2f})\n", flush=True)


if __name__ == "__main__":
    main()
