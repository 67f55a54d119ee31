"""Derive tests/data/box-frames.png from OpenCV's box.mp4 sample (Apache-2.0).

Eight consecutive frames (from frame 120) of the webcam clip, downscaled 4x (640x480 to 160x120)
by area averaging, which averages away most of the webcam's own noise, stacked top to bottom in
one lossless PNG: a small real clip with a clean version, for tests that need one without
../shared/data.

    python tests/data/make_box_frames.py ../shared/data/clips/box.mp4 tests/data/box-frames.png
"""

from __future__ import annotations

import sys

import cv2
import numpy as np

FIRST, COUNT, SIZE = 120, 8, (160, 120)


def main(src: str, dst: str) -> None:
    capture = cv2.VideoCapture(src)
    capture.set(cv2.CAP_PROP_POS_FRAMES, FIRST)
    frames = []
    while len(frames) < COUNT:
        ok, image = capture.read()
        if not ok:
            raise SystemExit(f"{src} has fewer than {FIRST + COUNT} frames")
        frames.append(cv2.resize(image, SIZE, interpolation=cv2.INTER_AREA))
    cv2.imwrite(dst, np.concatenate(frames, axis=0))


if __name__ == "__main__":
    main(*sys.argv[1:3])
