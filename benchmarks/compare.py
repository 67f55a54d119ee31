"""`vdenoise compare` against real time: two clips side by side (and split screen) written as
one video, on the CPU.

Two synthetic H.264 clips (a moving pattern with noise, as `benchmarks/common.py` makes them;
the second blurred, as a denoised version would be) of --seconds at 30 fps and --size are
compared as `vdenoise compare A B -o OUT` does; the ratio is the clips' duration over the wall
time (above 1: faster than real time). The same comparison encoded with libx264's medium preset
(what `denoise` uses) is timed beside it, as the baseline for the preset compare picks.

    python benchmarks/compare.py [--seconds 10] [--size 640x480] [--runs 1]

Figures: README, "What it does" (compare of two 640x480 clips of 10 s against real time).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, synthetic_clip  # noqa: I001

import av
import cv2

from vdenoise.compare import PRESET, Source, compare_video
from vdenoise.io.encoding import EncodeOptions


def blurred(src: Path, dst: Path) -> Path:
    """`src` with each frame blurred (5x5 box), re-encoded like it: a stand-in denoised clip."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=30, options={"crf": "18", "preset": "ultrafast"})
        video = inp.streams.video[0]
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuv420p"
        for i, frame in enumerate(inp.decode(video)):
            rgb = cv2.blur(frame.to_ndarray(format="rgb24"), (5, 5))
            new = av.VideoFrame.from_ndarray(rgb, "rgb24")
            new.pts, new.time_base = i, Fraction(1, 30)
            out.mux(stream.encode(new))
        out.mux(stream.encode(None))
    return dst


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--runs", type=int, default=1, help="medians of this many runs")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    frames = round(args.seconds * 30)
    ways = {
        f"side by side ({PRESET})": ("side", None),
        f"split screen ({PRESET})": ("split", None),
        "side by side (medium, baseline)": ("side", "medium"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        original = synthetic_clip(folder / "original.mp4", frames, width, height)
        processed = blurred(original, folder / "processed.mp4")
        inputs = [Source(original, "original"), Source(processed, "processed")]
        print(f"{frames} frames of {width}x{height} ({args.seconds:g} s), {machine()}")
        print(f"{'way':34} {'wall s':>7} {'cpu s':>7} {'x real time':>12}")
        for name, (layout, preset) in ways.items():
            walls, cpus = [], []
            for _ in range(args.runs):
                began, cpu = time.perf_counter(), cpu_seconds()
                compare_video(inputs, folder / "out.mp4", layout=layout,  # type: ignore[arg-type]
                              encode=EncodeOptions(preset=preset), overwrite=True)  # fmt: skip
                walls.append(time.perf_counter() - began)
                cpus.append(cpu_seconds() - cpu)
            wall = statistics.median(walls)
            ratio = args.seconds / wall
            print(f"{name:34} {wall:7.2f} {statistics.median(cpus):7.2f} {ratio:11.2f}x")


if __name__ == "__main__":
    main()
