"""Helpers shared by the benchmark scripts: an identity model and a synthetic clip."""

from __future__ import annotations  # noqa: I001  (vdenoise must be imported before torch)

import platform
from fractions import Fraction
from pathlib import Path
from typing import Any

import vdenoise  # noqa: F401  (sets its threading defaults, as the CLI does)

import numpy as np
import torch

from vdenoise.models.base import VideoDenoiser


class IdentityModel(VideoDenoiser):
    """Passes frames through, with a real model's temporal context (2 frames each side)."""

    frames_before = frames_after = 2
    frames_per_call = 4
    bytes_per_pixel = 64.0

    def forward(self, clip: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return clip[:, 2:-2]


def synthetic_clip(path: Path, frames: int, width: int, height: int) -> Path:
    """A moving pattern with noise, H.264 (ultrafast, crf 18), so decoding costs what it would."""
    import av  # only here: the model benchmarks run where PyAV is not installed

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30, options={"crf": "18", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            base = 128 + 80 * np.sin(x / 17 + i / 5) * np.cos(y / 13 - i / 7)
            rgb = np.stack([base, base[::-1], 255 - base], -1) + rng.normal(
                0, 8, (height, width, 3)
            )
            frame = av.VideoFrame.from_ndarray(np.clip(rgb, 0, 255).astype(np.uint8), "rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 30)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    try:
        import av

        versions = f"torch {torch.__version__}, av {av.__version__}"
    except ImportError:
        versions = f"torch {torch.__version__}, no PyAV"
    return f"{cpu}, {torch.get_num_threads()} torch threads, {gpu}; {versions}"


def parallel_options(parser: Any, frames: int, size: str) -> None:
    """The options of the parallel benchmarks (`batch.py`, `segments.py`)."""
    parser.add_argument("--frames", type=int, default=frames)
    parser.add_argument("--size", default=size)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--weights", help="checkpoint file or release name (default: f2r's)")
    parser.add_argument("--jobs", default="2", help="comma-separated: each a way to time")
    parser.add_argument("--no-ray", action="store_true", help="leave the Ray cluster out")


def parallel_ways(first: str, args: Any) -> tuple[dict[str, list[str]], list[str]]:
    """The ways a parallel benchmark times, each as the options that make it: `first` (no
    option), `--jobs N` for each N of `--jobs`, and a local Ray cluster unless `--no-ray` or
    Ray is not installed; and the options common to all."""
    import importlib.util

    ways = {first: []} | {f"--jobs {n}": ["--jobs", n] for n in args.jobs.split(",")}
    if not args.no_ray and importlib.util.find_spec("ray") is not None:
        ways["--cluster local (Ray)"] = ["--cluster", "local"]
    common = ["--sigma", "10", "--device", args.device, "-q"]
    return ways, common + (["--weights", args.weights] if args.weights else [])


def print_speedups(title: str, seconds: dict[str, float]) -> None:
    """A Markdown table of each way's seconds and its speed-up over the first way."""
    base = next(iter(seconds.values()))
    print(f"# {title}; {machine()}")
    print("| way | seconds | speed-up |")
    print("|---|---|---|")
    for name, value in seconds.items():
        print(f"| {name} | {value:.1f} | {base / value:.2f} |")
