"""Many files: `vdenoise batch` one file at a time, against `--jobs 2` and a local Ray cluster.

Eight short clips, the default weights, the installed command as users run it; total wall time
of each way, and its ratio to one at a time (> 1: faster), measured in one run.

    python benchmarks/batch.py [--clips 8] [--frames 24] [--size 320x240]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, synthetic_clip

COMMAND = str(Path(sys.executable).with_name("vdenoise"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", default="320x240")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    ways = {
        "one at a time": [],
        "--jobs 2": ["--jobs", "2"],
        "--cluster local (Ray)": ["--cluster", "local"],
    }
    with tempfile.TemporaryDirectory() as folder:
        clips = Path(folder) / "clips"
        clips.mkdir()
        for i in range(args.clips):
            synthetic_clip(clips / f"clip{i}.mp4", args.frames, width, height)
        seconds = {}
        for name, extra in ways.items():
            out = Path(folder) / "out"
            shutil.rmtree(out, ignore_errors=True)
            began = time.perf_counter()
            command = [COMMAND, "batch", str(clips), "-o", str(out), "--sigma", "10", "-q"]
            subprocess.run(command + extra, check=True)
            seconds[name] = time.perf_counter() - began
    base = seconds["one at a time"]
    print(f"# {args.clips} clips x {args.frames} frames at {args.size}; {machine()}")
    print("| way | seconds | speed-up |")
    print("|---|---|---|")
    for name, value in seconds.items():
        print(f"| {name} | {value:.1f} | {base / value:.2f} |")


if __name__ == "__main__":
    main()
