"""Peak memory must not grow with the video's length.

Denoises a 100-frame and a 1,000-frame clip, each in a fresh process, and prints the peak
resident set size of each and their ratio. The model is an identity with 2 frames of context
each side, or STBN / F2R (tiny presets, random weights: memory does not depend on training).

    python benchmarks/memory.py [--model identity|stbn|f2r] [--width 640 --height 360]

Figures: docs/performance.md, "The pipeline" (memory against length).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import IdentityModel, machine, synthetic_clip


def child(model_name: str, src: str, dst: str) -> None:
    from vdenoise.io.encoding import EncodeOptions
    from vdenoise.models import build
    from vdenoise.pipeline import denoise_video

    model = IdentityModel() if model_name == "identity" else build(model_name, "tiny")
    options = EncodeOptions(preset="ultrafast")
    denoise_video(src, dst, model, sigma=20, encode=options, device="cpu", tile=0)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def peak_rss(model: str, src: Path, dst: Path) -> int:
    out = subprocess.run(
        [sys.executable, __file__, "--child", model, str(src), str(dst)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.split()[-1])


def measure(
    width: int, height: int, model: str = "identity", short: int = 100, long: int = 1000
) -> tuple[int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        peaks = []
        for frames in (short, long):
            clip = synthetic_clip(folder / f"clip{frames}.mp4", frames, width, height)
            peaks.append(peak_rss(model, clip, folder / f"out{frames}.mp4"))
    return peaks[0], peaks[1]


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", choices=["identity", "stbn", "f2r"], default="identity")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    args = parser.parse_args()
    short, long = measure(args.width, args.height, args.model)
    print(f"machine: {machine()}; model: {args.model}")
    print(f"peak RSS, {args.width}x{args.height}:   100 frames {short / 2**20:7.1f} MiB")
    print(f"peak RSS, {args.width}x{args.height}: 1,000 frames {long / 2**20:7.1f} MiB")
    print(f"ratio 1,000 / 100 frames: {long / short:.3f}")


if __name__ == "__main__":
    main()
