"""One long video: `vdenoise denoise` in one piece, against the same video cut into segments
denoised by `--jobs N` worker processes (and a local Ray cluster), in one run.

The command as users run it, the default weights (or --weights); total wall time of each way
and its ratio to one piece (> 1: faster).

    python benchmarks/segments.py [--frames 240] [--size 640x480] [--device cpu]
        [--weights NAME] [--jobs 2] [--no-ray]

Figures: README, "Many files and clusters" (one piece, --jobs 2, local Ray).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import parallel_options, parallel_ways, print_speedups, synthetic_clip

COMMAND = [sys.executable, "-m", "vdenoise"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parallel_options(parser, frames=240, size="640x480")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    ways, common = parallel_ways("one piece", args)
    common.append("-y")
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
    print_speedups(f"{args.frames} frames at {args.size} on {args.device}", seconds)


if __name__ == "__main__":
    main()
