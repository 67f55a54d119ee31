"""One long video: `vdenoise denoise` in one piece, against the same video cut into segments
denoised by `--jobs N` worker processes (and a local Ray cluster), in one run.

The command as users run it, the default weights (or --weights); total wall time of each way
and its ratio to one piece (> 1: faster).

    python benchmarks/segments.py [--frames 240] [--size 640x480] [--device cpu]
        [--weights NAME] [--jobs 2] [--no-ray]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, synthetic_clip

COMMAND = [sys.executable, "-m", "vdenoise"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--weights", help="checkpoint file or release name (default: f2r's)")
    parser.add_argument("--jobs", default="2", help="comma-separated: each a way to time")
    parser.add_argument("--no-ray", action="store_true", help="leave the Ray cluster out")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    ways = {"one piece": []} | {f"--jobs {n}": ["--jobs", n] for n in args.jobs.split(",")}
    if not args.no_ray and importlib.util.find_spec("ray") is not None:
        ways["--cluster local (Ray)"] = ["--cluster", "local"]
    common = ["--sigma", "10", "--device", args.device, "-q", "-y"]
    common += ["--weights", args.weights] if args.weights else []
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as folder:
        clip = synthetic_clip(Path(folder) / "long.mp4", args.frames, width, height)
        out = Path(folder) / "out.mp4"
        seconds = {}
        for name, extra in ways.items():
            began = time.perf_counter()
            command = [*COMMAND, "denoise", str(clip), str(out), *common, *extra]
            subprocess.run(command, check=True, cwd=root)
            seconds[name] = time.perf_counter() - began
    base = seconds["one piece"]
    print(f"# {args.frames} frames at {args.size} on {args.device}; {machine()}")
    print("| way | seconds | speed-up |")
    print("|---|---|---|")
    for name, value in seconds.items():
        print(f"| {name} | {value:.1f} | {base / value:.2f} |")


if __name__ == "__main__":
    main()
