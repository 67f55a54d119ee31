"""Tiny benchmark datasets in the published layouts, built from a real clip."""

from __future__ import annotations

from pathlib import Path

import cv2

from tests.conftest import shared_clip

SIZE = (64, 48)  # width, height


def real_frames(count: int = 12, size: tuple[int, int] = SIZE):
    """Frames of a real clip (OpenCV sample webcam footage), downscaled, BGR uint8."""
    capture = cv2.VideoCapture(str(shared_clip("box.mp4")))
    frames = []
    while len(frames) < count:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
    capture.release()
    return frames


def frame_folder(folder: Path, frames, first: int = 0, digits: int = 5, suffix: str = ".png"):
    folder.mkdir(parents=True)
    for i, image in enumerate(frames):
        cv2.imwrite(str(folder / f"{first + i:0{digits}d}{suffix}"), image)
    return folder
