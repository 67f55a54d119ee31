"""Reading and writing video files and image sequences."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vdenoise.io.colour import RGB_MATRIX, ColourSpec, PixelLayout
from vdenoise.io.files import refuse_unseekable
from vdenoise.io.frames import IMAGE_SUFFIXES, ImageSequenceReader

if TYPE_CHECKING:  # PyAV loads only when a video file is opened, torch when frames convert
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
    from vdenoise.io.reader import VideoReader

    return VideoReader(path, start=start, end=end, ignore_errors=ignore_errors)


def read_rgb(path: Path, **options: object) -> Iterator[np.ndarray]:
    """Frames as H x W x 3 RGB arrays: uint8 for 8-bit sources, uint16 (0-65535) above.

    Takes the keyword options of `open_input` (start, end, fps, ignore_errors).
    """
    import torch

    from vdenoise.io.convert import planes_to_rgb, rgb_to_planes

    with contextlib.closing(open_input(path, **options)) as reader:  # type: ignore[arg-type]
        info = reader.info
        layout = PixelLayout.of("rgb48le" if info.bits > 8 else "rgb24")
        assert layout is not None
        for frame in reader:
            rgb = planes_to_rgb(
                [torch.from_numpy(p) for p in frame.planes], info.layout, info.colour
            )
            yield rgb_to_planes(rgb, layout, ColourSpec(RGB_MATRIX, True))[0].numpy()


__all__ = ["IMAGE_SUFFIXES", "is_image_sequence", "open_input", "read_rgb", "refuse_unseekable"]
