"""End-to-end speed and peak memory of `vdenoise denoise` with real weights, beside the
pipeline alone.

Each checkpoint (a release name or a file) denoises the same clip as `vdenoise denoise` does
(decode, colour conversion, model, encode with libx264 crf 18 medium, audio copy), alternated
with the identity model (the same pipeline without a model); medians of --runs runs, each in a
fresh process, whose peak resident memory is reported. The ratio says how much of the
pipeline's speed is left with the model in it.

    python benchmarks/end_to_end.py f2r-small [stbn-tiny ...] [--clip FILE | --size 640x480]
        [--seconds 4] [--sigma 20] [--device cpu] [--runs 3]

Default clip: a synthetic H.264 clip of 120 frames, 640x480 unless --size says otherwise. On
CUDA the peak memory the device allocated is reported too.

Figures: README's speed column; docs/performance.md, "End to end".
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import IdentityModel, machine, synthetic_clip  # noqa: I001

import torch

from vdenoise.models.base import VideoDenoiser
from vdenoise.pipeline import denoise_video
from vdenoise.checkpoint import load_model


def fps(model: VideoDenoiser, src: Path, dst: Path, args: argparse.Namespace) -> float:
    began = time.perf_counter()
    report = denoise_video(
        src, dst, model, sigma=args.sigma, device=args.device, end=args.seconds, overwrite=True
    )
    return report.frames / (time.perf_counter() - began)


IDENTITY = "identity"


def child(args: argparse.Namespace) -> None:
    """One run in this process: prints its frames/s and peak resident memory as JSON."""
    if args.child == IDENTITY:
        model: VideoDenoiser = IdentityModel()
    else:
        model = load_model(None, args.child, device_type=args.device)[0]
    rate = fps(model, args.clip, args.output, args)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes
    device_peak = torch.cuda.max_memory_allocated() if args.device.startswith("cuda") else 0
    print(json.dumps({"fps": rate, "peak_bytes": peak, "device_peak_bytes": device_peak}))


def run(name: str, src: Path, dst: Path, args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", name, "--clip", str(src), "--output",
               str(dst), "--seconds", str(args.seconds), "--sigma", str(args.sigma),
               "--device", args.device]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("weights", nargs="*", help="release names or checkpoint files")
    parser.add_argument("--clip", type=Path, help="video to denoise (default: synthetic)")
    parser.add_argument("--size", default="640x480", help="of the synthetic clip")
    parser.add_argument("--seconds", type=float, default=4.0, help="denoise this much of it")
    parser.add_argument("--sigma", type=float, default=20.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    names = [IDENTITY, *args.weights]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        width, height = map(int, args.size.split("x"))
        src = args.clip or synthetic_clip(folder / "clip.mp4", 120, width, height)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        for _ in range(args.runs):
            for name in names:
                runs[name].append(run(name, src, folder / "out.mp4", args))
    print(f"machine: {machine()}")
    print(f"clip: {args.clip or f'synthetic {args.size}'}, first {args.seconds:g} s; {args.device}")
    base = statistics.median(r["fps"] for r in runs[IDENTITY])
    for name, results in runs.items():
        rates = [r["fps"] for r in results]
        listed = ", ".join(f"{r:.2f}" for r in rates)
        median = statistics.median(rates)
        peak = max(r["peak_bytes"] for r in results) / 2**20
        device_peak = max(r["device_peak_bytes"] for r in results) / 2**20
        label = "identity (pipeline alone)" if name == IDENTITY else name
        print(
            f"{label}: {median:6.2f} fps (runs: {listed}); ratio to the pipeline "
            f"{median / base:.3f}; peak memory {peak:,.0f} MiB"
            + (f", on the device {device_peak:,.0f} MiB" if device_peak else "")
        )


if __name__ == "__main__":
    main()
