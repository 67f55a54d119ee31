"""End-to-end speed of `vdenoise denoise` with real weights, beside the pipeline alone.

Each checkpoint (a release name or a file) denoises the same clip as `vdenoise denoise` does
(decode, colour conversion, model, encode with libx264 crf 18 medium, audio copy), alternated
with the identity model (the same pipeline without a model); medians of --runs runs. The ratio
says how much of the pipeline's speed is left with the model in it.

    python benchmarks/end_to_end.py f2r-small [stbn-tiny ...] [--clip FILE] [--seconds 4]
        [--sigma 20] [--device cpu] [--runs 3]

Default clip: a synthetic 640x480 H.264 clip of 120 frames.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import IdentityModel, machine, synthetic_clip  # noqa: I001

from vdenoise.models.base import VideoDenoiser
from vdenoise.pipeline import denoise_video
from vdenoise.weights import load_model


def fps(model: VideoDenoiser, src: Path, dst: Path, args: argparse.Namespace) -> float:
    began = time.perf_counter()
    report = denoise_video(
        src, dst, model, sigma=args.sigma, device=args.device, end=args.seconds, overwrite=True
    )
    return report.frames / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("weights", nargs="+", help="release names or checkpoint files")
    parser.add_argument("--clip", type=Path, help="video to denoise (default: synthetic 640x480)")
    parser.add_argument("--seconds", type=float, default=4.0, help="denoise this much of it")
    parser.add_argument("--sigma", type=float, default=20.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    models = {"identity (pipeline alone)": IdentityModel()}
    models |= {w: load_model(None, w, device_type=args.device)[0] for w in args.weights}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        src = args.clip or synthetic_clip(folder / "clip.mp4", 120, 640, 480)
        rates: dict[str, list[float]] = {name: [] for name in models}
        for _ in range(args.runs):
            for name, model in models.items():
                rates[name].append(fps(model, src, folder / "out.mp4", args))
    print(f"machine: {machine()}")
    print(f"clip: {args.clip or 'synthetic 640x480'}, first {args.seconds:g} s; {args.device}")
    base = statistics.median(rates["identity (pipeline alone)"])
    for name, runs in rates.items():
        listed = ", ".join(f"{r:.2f}" for r in runs)
        median = statistics.median(runs)
        print(
            f"{name}: {median:6.2f} fps (runs: {listed}); ratio to the pipeline {median / base:.3f}"
        )


if __name__ == "__main__":
    main()
