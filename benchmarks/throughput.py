"""Pipeline overhead: vdenoise with an identity model against plain PyAV decode + encode.

Both decode the same file and encode it with the same encoder settings (libx264, crf 18, the
given preset, the source's pixel format). The baseline hands decoded frames straight to the
encoder in one thread; vdenoise also converts every frame to RGB and back on the compute
device, runs the model, and copies audio, in three threads. Runs alternate, the median of each
is reported, and the ratio says what the pipeline costs (> 1: faster than the baseline).

    python benchmarks/throughput.py [FILE] [--preset medium] [--runs 3]

Figures: docs/performance.md, "The pipeline" (overhead); vdenoise/__init__.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import IdentityModel, machine, synthetic_clip
from vdenoise.io.encoding import EncodeOptions
from vdenoise.pipeline import denoise_video


def plain_pyav(src: Path, dst: Path, preset: str) -> int:
    """Decode and re-encode with nothing in between; returns the frame count."""
    frames = 0
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        video = inp.streams.video[0]
        video.thread_type = "AUTO"
        stream = out.add_stream(
            "libx264", rate=video.average_rate, options={"crf": "18", "preset": preset}
        )
        stream.width, stream.height = video.codec_context.width, video.codec_context.height
        stream.pix_fmt = video.codec_context.pix_fmt
        stream.time_base = stream.codec_context.time_base = video.time_base
        for frame in inp.decode(video):
            frame.pict_type = av.video.frame.PictureType.NONE
            out.mux(stream.encode(frame))
            frames += 1
        out.mux(stream.encode(None))
    return frames


def ours(src: Path, dst: Path, preset: str) -> int:
    report = denoise_video(
        src, dst, IdentityModel(), encode=EncodeOptions(preset=preset), overwrite=True, device="cpu"
    )
    return report.frames


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "file", nargs="?", type=Path, help="video to use (default: synthetic 1280x720)"
    )
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        src = args.file or synthetic_clip(folder / "clip.mp4", 300, 1280, 720)
        runners = {"plain PyAV decode+encode": plain_pyav, "vdenoise, identity model": ours}
        rates: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(args.runs):
            for name, run in runners.items():
                begin = time.perf_counter()
                frames = run(src, folder / "out.mp4", args.preset)
                rates[name].append(frames / (time.perf_counter() - begin))
    print(f"machine: {machine()}")
    print(f"input: {args.file or 'synthetic 1280x720, 300 frames'}; libx264 crf 18 {args.preset}")
    for name, runs in rates.items():
        listed = ", ".join(f"{r:.1f}" for r in runs)
        print(f"{name}: {statistics.median(runs):7.1f} fps (runs: {listed})")
    base, mine = (statistics.median(runs) for runs in rates.values())
    print(f"ratio vdenoise / plain: {mine / base:.3f}")


if __name__ == "__main__":
    main()
