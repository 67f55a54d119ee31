"""Many files: `vdenoise batch` one file at a time, against `--jobs N` and a local Ray cluster.

Eight short clips, the default weights (or --weights), the command as users run it; total wall
time of each way, and its ratio to one at a time (> 1: faster), measured in one run. On a CPU
`--jobs N` runs N worker processes; on a GPU N files in flight over one shared model.

    python benchmarks/batch.py [--clips 8] [--frames 24] [--size 320x240] [--device cpu]
        [--weights NAME] [--jobs 2] [--no-ray]

Figures: README, "Many files and clusters" (one at a time, --jobs 2, local Ray).
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

from benchmarks.common import parallel_options, parallel_ways, print_speedups, synthetic_clip

COMMAND = [sys.executable, "-m", "vdenoise"]  # as installed, also where it is not


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parallel_options(parser, frames=24, size="320x240")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    ways, common = parallel_ways("one at a time", args)
    root = Path(__file__).resolve().parents[1]
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
            command = [*COMMAND, "batch", str(clips), "-o", str(out), *common, *extra]
            subprocess.run(command, check=True, cwd=root)
            seconds[name] = time.perf_counter() - began
    title = f"{args.clips} clips x {args.frames} frames at {args.size} on {args.device}"
    print_speedups(title, seconds)


if __name__ == "__main__":
    main()
