"""Reading and writing video files and image sequences."""

from __future__ import annotations

from pathlib import Path

from vdenoise.io.frames import IMAGE_SUFFIXES, ImageSequenceReader
from vdenoise.io.reader import VideoReader

Reader = VideoReader | ImageSequenceReader


def is_image_sequence(path: Path) -> bool:
    """An output path names an image sequence: a folder, or a pattern like frames/%06d.png."""
    return path.is_dir() or "%" in path.name or (path.suffix == "" and not path.exists())


def open_input(
    path: Path,
    *,
    start: float | None = None,
    end: float | None = None,
    fps: float | None = None,
    ignore_errors: bool = False,
) -> Reader:
    """A video file or a folder of images, ready to stream frames."""
    if Path(path).is_dir():
        return ImageSequenceReader(path, fps or 25.0, start, end)
    return VideoReader(path, start=start, end=end, ignore_errors=ignore_errors)


__all__ = ["IMAGE_SUFFIXES", "Reader", "is_image_sequence", "open_input"]
