"""Make docs/before-after.png, the README's picture: crops of one frame of the committed example
clip (examples/box-noisy.mp4), as it is and as `vdenoise denoise` leaves it with the bundled
default weights.

    python scripts/readme_picture.py [--frame 45] [-o docs/before-after.png]

Denoises the clip losslessly into a temporary folder (about a minute on a 2-core CPU), so the
picture shows the model's output, not the encoder's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from itertools import islice
from pathlib import Path

import cv2
import numpy as np

from vdenoise.io import read_rgb

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "examples" / "box-noisy.mp4"
CROPS = [(150, 12, 140, 105), (20, 60, 140, 105)]  # x, y, width, height in the 320x240 frame
SCALE = 2  # nearest-neighbour, so the pixels stay visible


def frame(path: Path, index: int) -> np.ndarray:
    return next(islice(read_rgb(path), index, None))


def panel(image: np.ndarray, label: str) -> np.ndarray:
    """The crops side by side, enlarged, with a label in the corner."""
    tiles = [image[y : y + h, x : x + w] for x, y, w, h in CROPS]
    gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
    row = np.concatenate([tiles[0], gap, tiles[1]], axis=1)
    row = cv2.resize(row, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST)
    row = np.ascontiguousarray(row)
    cv2.rectangle(row, (0, 0), (8 + 11 * len(label), 24), (0, 0, 0), -1)
    cv2.putText(row, label, (4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frame", type=int, default=45)
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "before-after.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "denoised.mkv"
        command = ["denoise", str(CLIP), str(out), "--lossless", "--quiet"]
        subprocess.run([sys.executable, "-m", "vdenoise", *command], check=True)
        noisy, clean = frame(CLIP, args.frame), frame(out, args.frame)
    gap = np.full((6, panel(noisy, "").shape[1], 3), 255, np.uint8)
    picture = np.concatenate([panel(noisy, "noisy"), gap, panel(clean, "vdenoise")], axis=0)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    bgr = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(args.output), bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"{args.output}: frame {args.frame}, {picture.shape[1]}x{picture.shape[0]}")


if __name__ == "__main__":
    main()
