"""What flows through the pipeline: decoded frames and the facts about the video they come from."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vdenoise.io.colour import MATRIX_NAMES, ColourSpec, PixelLayout

RANGE_NAMES = {0: "unspecified", 1: "limited", 2: "full"}
PRIMARIES_NAMES = {1: "bt709", 2: "unspecified", 5: "bt470bg", 6: "smpte170m", 9: "bt2020"}
TRC_NAMES = {1: "bt709", 2: "unspecified", 6: "smpte170m", 13: "srgb", 16: "pq", 18: "hlg"}


@dataclass
class Frame:
    """One decoded picture: its planes as stored (see `PixelLayout`) and its timing."""

    planes: list[np.ndarray]
    pts: int
    duration: int | None = None  # in the stream's time base


@dataclass(frozen=True)
class ColourTags:
    """The four colour tags of a stream, as AVColor* integer values (0 or 2 = unspecified)."""

    color_range: int = 0
    color_primaries: int = 2
    color_trc: int = 2
    colorspace: int = 2

    def describe(self) -> dict[str, str]:
        return {
            "range": RANGE_NAMES.get(self.color_range, str(self.color_range)),
            "primaries": PRIMARIES_NAMES.get(self.color_primaries, str(self.color_primaries)),
            "transfer": TRC_NAMES.get(self.color_trc, str(self.color_trc)),
            "matrix": MATRIX_NAMES.get(self.colorspace, str(self.colorspace)),
        }

    @property
    def is_hdr(self) -> bool:
        return self.color_trc in (16, 18)


@dataclass(frozen=True)
class VideoInfo:
    """What a reader found: everything the writer needs to reproduce the stream's form."""

    path: Path
    container: str
    codec: str
    width: int
    height: int
    pix_fmt: str  # as decoded
    layout: PixelLayout  # how the reader hands out planes (pix_fmt, or its swscale fallback)
    bits: int  # source bit depth
    colour: ColourSpec  # used to decode (tags, or the players' guess where untagged)
    colour_guessed: bool
    tags: ColourTags
    time_base: Fraction
    average_rate: Fraction | None
    frame_count: int | None  # as declared by the container, or None when unknown
    duration: float | None  # seconds
    rotation: int = 0  # display rotation in degrees (display matrix)
    sample_aspect_ratio: Fraction | None = None
    interlaced: bool = False
    is_image_sequence: bool = False
    audio_streams: int = 0
    subtitle_streams: int = 0

    @property
    def is_rgb_source(self) -> bool:
        return self.layout.kind != "yuv"

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary (for `vdenoise probe` and `--json`)."""
        d = asdict(self)
        d["path"] = str(self.path)
        d["layout"] = self.layout.pix_fmt
        d["colour"] = self.colour.name
        d["tags"] = self.tags.describe()
        for key in ("time_base", "average_rate", "sample_aspect_ratio"):
            d[key] = None if d[key] is None else str(d[key])
        return d
