"""Image sequences: a folder of PNG/JPEG/TIFF frames in, a folder of PNG/TIFF frames out."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from vdenoise.errors import UsageError, VdenoiseError
from vdenoise.io.colour import PixelLayout, resolve_colour
from vdenoise.io.media import ColourTags, Frame, VideoInfo

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
DEFAULT_PATTERN = "%06d.png"


def _natural_key(path: Path) -> list[object]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def list_images(folder: Path) -> list[Path]:
    """The image files of a folder in natural order (frame2 before frame10)."""
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(files, key=_natural_key)


def read_image(path: Path) -> np.ndarray:
    """An image as H x W x 3 RGB, uint8 or uint16 as stored (alpha dropped, grey expanded)."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if image is None:
        raise VdenoiseError(f"{path.name} is not a readable image")
    if image.dtype not in (np.uint8, np.uint16):
        raise VdenoiseError(f"{path.name} holds {image.dtype} samples; 8 or 16-bit images only")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, 2::-1])  # BGR(A) -> RGB


MIN_FPS, MAX_FPS = 0.01, 1000.0  # one frame in 100 s (time-lapse) to high-speed capture


def check_fps(fps: float) -> None:
    """Refuse a frame rate whose time base cannot be written (NaN, infinite, absurd)."""
    if not MIN_FPS <= fps <= MAX_FPS:  # NaN fails too
        raise UsageError(
            f"--fps {fps:g} is not a frame rate vdenoise can write",
            f"give one from {MIN_FPS:g} to {MAX_FPS:g}",
        )


class ImageSequenceReader:
    """Reads a folder of images as a video at a given frame rate."""

    def __init__(
        self, folder: Path, fps: float = 25.0, start: float | None = None, end: float | None = None
    ) -> None:
        self.path = Path(folder)
        check_fps(fps)
        files = list_images(self.path)
        if not files:
            raise VdenoiseError(
                f"{self.path} holds no images",
                f"an image-sequence folder holds {', '.join(sorted(IMAGE_SUFFIXES))} files",
            )
        first_index = 0 if start is None else math.ceil(start * fps - 1e-9)
        last_index = len(files) if end is None else math.ceil(end * fps - 1e-9)
        self.files = files[first_index:last_index]
        if not self.files:
            raise VdenoiseError(f"no image of {self.path} lies in the chosen time range")
        first = read_image(self.files[0])
        height, width = first.shape[:2]
        bits = 16 if first.dtype == np.uint16 else 8
        layout = PixelLayout.of("rgb48le" if bits == 16 else "rgb24")
        assert layout is not None
        colour, _ = resolve_colour(0, 2, layout.pix_fmt, height, is_rgb=True)
        rate = Fraction(fps).limit_denominator(1001)
        self.decode_errors = 0
        self.timestamp_fixes = 0
        self.info = VideoInfo(
            path=self.path,
            container="image2",
            codec=self.files[0].suffix.lower().lstrip("."),
            width=width,
            height=height,
            pix_fmt=layout.pix_fmt,
            layout=layout,
            bits=bits,
            colour=colour,
            colour_guessed=False,
            tags=ColourTags(2, 2, 2, 0),
            time_base=1 / rate,
            average_rate=rate,
            frame_count=len(self.files),
            duration=float(len(self.files) / rate),
            is_image_sequence=True,
        )

    def __iter__(self) -> Iterator[Frame]:
        info = self.info
        for index, path in enumerate(self.files):
            image = read_image(path)
            if image.shape[:2] != (info.height, info.width) or image.dtype != info.layout.dtype:
                raise VdenoiseError(
                    f"{path.name} is {image.shape[1]}x{image.shape[0]} {image.dtype}, "
                    f"unlike the first image ({info.width}x{info.height} {info.layout.dtype})",
                    "all frames of a sequence must share size and bit depth",
                )
            yield Frame([image], index, 1)

    def close(self) -> None:
        pass


def split_pattern(target: Path) -> tuple[Path, str]:
    """(folder, file-name pattern) of an image-sequence output like out/ or out/%04d.tif."""
    if "%" in target.name:
        return target.parent, target.name
    return target, DEFAULT_PATTERN


class ImageSequenceWriter:
    """Writes frames as numbered images: PNG by default, 16-bit where the source had depth."""

    def __init__(self, folder: Path, pattern: str, info: VideoInfo) -> None:
        self.folder = Path(folder)
        self.pattern = pattern
        suffix = Path(pattern).suffix.lower()
        if suffix not in (".png", ".tif", ".tiff", ".jpg", ".jpeg"):
            raise UsageError(f"cannot write {suffix or 'suffix-less'} images", "use .png or .tif")
        try:
            pattern % 1
        except (TypeError, ValueError):
            raise UsageError(f"bad file-name pattern {pattern}", "use one %d: %06d.png") from None
        deep = info.bits > 8 and suffix not in (".jpg", ".jpeg")
        layout = PixelLayout.of("rgb48le" if deep else "rgb24")
        assert layout is not None
        self.layout = layout
        self.codec = suffix.lstrip(".")
        self.colour, _ = resolve_colour(0, 2, layout.pix_fmt, info.height, is_rgb=True)
        self.notes = []
        if info.bits > 8 and not deep:
            self.notes.append(f"{info.bits}-bit video written as 8-bit JPEG")
        # A sequence in keeps its file names out (as PNG), unless a pattern was given.
        self.names = None
        if info.is_image_sequence and pattern == DEFAULT_PATTERN:
            self.names = [p.with_suffix(".png").name for p in list_images(info.path)]
        self.frames = 0

    def write(self, frame: Frame) -> None:
        rgb = frame.planes[0]
        name = self.names[self.frames] if self.names else self.pattern % (self.frames + 1)
        if not cv2.imwrite(str(self.folder / name), np.ascontiguousarray(rgb[:, :, ::-1])):
            raise VdenoiseError(f"cannot write {self.folder / name}")
        self.frames += 1

    def mux_side(self, packet: object) -> None:
        """Image sequences carry no audio."""

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass
