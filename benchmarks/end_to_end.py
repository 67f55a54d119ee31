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

Then, one more run per checkpoint, where each frame's time goes (milliseconds of each stage's
busy time a frame): decode (its thread), upload and colour conversion, optical flow, the
network (the model less its flow), colour conversion back and download, encode (its thread).
The stages overlap in threads, so the slowest one bounds the frame rate; on CUDA each timed
stage synchronises the device, which makes that run a little slower than the others.
--no-stages skips it.

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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import IdentityModel, machine, synthetic_clip  # noqa: I001

import torch

from vdenoise.models.base import VideoDenoiser
from vdenoise import pipeline
from vdenoise.io.reader import VideoReader
from vdenoise.io.writer import VideoWriter
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
    """One run in this process: prints its frames/s and peak resident memory as JSON (with
    --stages: each stage's milliseconds a frame)."""
    if args.child == IDENTITY:
        model: VideoDenoiser = IdentityModel()
    else:
        model = load_model(None, args.child, device_type=args.device)[0]
    clock = StageClock(model, args.device) if args.stages else None
    rate = fps(model, args.clip, args.output, args)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes
    device_peak = torch.cuda.max_memory_allocated() if args.device.startswith("cuda") else 0
    result: dict[str, Any] = {"fps": rate, "peak_bytes": peak, "device_peak_bytes": device_peak}
    if clock is not None:
        result["stages"] = clock.per_frame()
    print(json.dumps(result))


STAGES = ("decode", "upload+colour", "flow", "network", "colour+download", "encode")


class StageClock:
    """Busy time of each stage of `denoise_video`, by wrapping the functions that do it."""

    def __init__(self, model: VideoDenoiser, device: str) -> None:
        self.seconds = dict.fromkeys([*STAGES, "model"], 0.0)
        self.frames = 0
        self.sync = torch.cuda.synchronize if device.startswith("cuda") else lambda: None
        clock = self

        def timed(stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                clock.sync()
                began = time.perf_counter()
                out = function(*args, **kwargs)
                clock.sync()
                clock.seconds[stage] += time.perf_counter() - began
                return out

            return wrapper

        pipeline.upload = timed("upload+colour", pipeline.upload)
        pipeline.planes_to_rgb = timed("upload+colour", pipeline.planes_to_rgb)
        from_rgb = pipeline.rgb_to_planes
        pipeline.rgb_to_planes = timed(
            "colour+download", lambda *a: [p.cpu() for p in from_rgb(*a)]
        )
        VideoWriter.write = timed("encode", VideoWriter.write)  # type: ignore[method-assign]
        iterate = VideoReader.__iter__

        def frames(reader: VideoReader) -> Iterator[Any]:
            source = iterate(reader)
            while True:
                began = time.perf_counter()
                frame = next(source, None)
                clock.seconds["decode"] += time.perf_counter() - began
                if frame is None:
                    return
                clock.frames += 1
                yield frame

        VideoReader.__iter__ = frames  # type: ignore[method-assign]
        if hasattr(model, "flow"):
            model.flow = timed("flow", model.flow)
        model.forward = timed("model", model.forward)  # type: ignore[method-assign]

    def per_frame(self) -> dict[str, float]:
        """Milliseconds a frame of each stage; the network is the model less its flow."""
        seconds = dict(self.seconds)
        seconds["network"] = seconds.pop("model") - seconds["flow"]
        return {k: 1000 * seconds[k] / max(self.frames, 1) for k in STAGES}


def run(
    name: str, src: Path, dst: Path, args: argparse.Namespace, stages: bool = False
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", name, "--clip", str(src), "--output",
               str(dst), "--seconds", str(args.seconds), "--sigma", str(args.sigma),
               "--device", args.device] + (["--stages"] if stages else [])  # fmt: skip
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
    parser.add_argument("--no-stages", action="store_true", help="skip the stage breakdown")
    parser.add_argument("--stages", action="store_true", help=argparse.SUPPRESS)
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
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for _ in range(args.runs):
            for name in names:
                runs[name].append(run(name, src, folder / "out.mp4", args))
        breakdown = {}
        if not args.no_stages:
            for name in names:
                breakdown[name] = run(name, src, folder / "out.mp4", args, True)["stages"]
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

    if breakdown:
        print("\nwhere each frame's time goes (ms a frame, each stage's busy time; one run):")
        print("| run | " + " | ".join(STAGES) + " |")
        print("|---|" + "---|" * len(STAGES))
        for name, stages in breakdown.items():
            label = "identity" if name == IDENTITY else name
            print(f"| {label} | " + " | ".join(f"{stages[k]:.2f}" for k in STAGES) + " |")


if __name__ == "__main__":
    main()
