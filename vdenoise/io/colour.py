"""Colour: pixel layouts, matrices, ranges and tags, resolved from what a file declares.

The conversions themselves are in `convert.py` (torch); this module needs no torch, so
`vdenoise probe` starts fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from vdenoise.errors import VdenoiseError

# AVColorSpace values -> (Kr, Kb) luma coefficients (ITU-T H.273, table 4).
LUMA_COEFFICIENTS: dict[int, tuple[float, float]] = {
    1: (0.2126, 0.0722),  # BT.709
    4: (0.30, 0.11),  # FCC
    5: (0.299, 0.114),  # BT.470BG (BT.601, 625 lines)
    6: (0.299, 0.114),  # SMPTE 170M (BT.601, 525 lines)
    7: (0.212, 0.087),  # SMPTE 240M
    9: (0.2627, 0.0593),  # BT.2020 non-constant luminance
}
MATRIX_NAMES = {
    0: "rgb",
    1: "bt709",
    2: "unspecified",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "ycgco",
    9: "bt2020nc",
    10: "bt2020c",
}
RGB_MATRIX = 0
BT709, SMPTE170M = 1, 6
RANGE_UNSPECIFIED, RANGE_LIMITED, RANGE_FULL = 0, 1, 2

_CHROMA_SHIFTS = {
    "420": (1, 1),
    "422": (1, 0),
    "444": (0, 0),
    "440": (0, 1),
    "411": (2, 0),
    "410": (2, 1),
}
_YUV = re.compile(
    r"^yuv(?P<j>j?)(?P<a>a?)(?P<sub>4[124][0-4])p(?P<bits>9|10|12|14|16)?(?P<le>le)?$"
)
_GBR = re.compile(r"^gbrp(?P<bits>9|10|12|14|16)?(?P<le>le)?$")
_PACKED_RGB = {"rgb24": 8, "rgb48le": 16}


@dataclass(frozen=True)
class PixelLayout:
    """How a pixel format stores samples: planar Y'CbCr, planar GBR, or packed RGB."""

    pix_fmt: str
    kind: Literal["yuv", "gbr", "rgb"]
    bits: int
    chroma_shift: tuple[int, int] = (0, 0)  # log2 of (horizontal, vertical) subsampling
    alpha: bool = False

    @classmethod
    def of(cls, pix_fmt: str) -> PixelLayout | None:
        """The layout of a format we convert natively, or None (it goes through swscale)."""
        if m := _YUV.match(pix_fmt):
            bits = int(m["bits"] or 8)
            if m["sub"] not in _CHROMA_SHIFTS or (bits > 8) != bool(m["le"]):
                return None
            if m["j"] and (bits > 8 or m["a"]):
                return None
            shift = _CHROMA_SHIFTS[m["sub"]]
            return cls(pix_fmt, "yuv", bits, shift, alpha=bool(m["a"]))
        if m := _GBR.match(pix_fmt):
            bits = int(m["bits"] or 8)
            return cls(pix_fmt, "gbr", bits) if (bits > 8) == bool(m["le"]) else None
        if pix_fmt in _PACKED_RGB:
            return cls(pix_fmt, "rgb", _PACKED_RGB[pix_fmt])
        return None

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if self.bits <= 8 else np.uint16)

    @property
    def max_value(self) -> int:
        return (1 << self.bits) - 1

    def fits(self, width: int, height: int) -> bool:
        """Whether a frame of this size can be stored without padding (chroma subsampling)."""
        sx, sy = self.chroma_shift
        return width % (1 << sx) == 0 and height % (1 << sy) == 0


@dataclass(frozen=True)
class ColourSpec:
    """How code values map to R'G'B': the matrix (AVColorSpace value) and the range."""

    matrix: int
    full_range: bool

    @property
    def name(self) -> str:
        if self.matrix == RGB_MATRIX:
            return "rgb"
        matrix = MATRIX_NAMES.get(self.matrix, str(self.matrix))
        return f"{matrix} {'full' if self.full_range else 'limited'}"


def resolve_colour(
    colorspace: int, color_range: int, pix_fmt: str, height: int, is_rgb: bool
) -> tuple[ColourSpec, bool]:
    """The colour spec to decode with, and whether any of it was guessed from an untagged file.

    Untagged sources follow the players' convention: BT.709 from 720 lines up, BT.601 below;
    `yuvj` formats are full range, other Y'CbCr formats limited range.
    """
    if is_rgb:
        return ColourSpec(RGB_MATRIX, True), False
    guessed = False
    if colorspace == 10:
        colorspace = 9  # constant-luminance BT.2020 is vanishingly rare; treat as NCL
    if colorspace not in LUMA_COEFFICIENTS:
        if colorspace not in (2, 3):  # unspecified, reserved: guess; anything else: refuse
            raise VdenoiseError(
                f"the {MATRIX_NAMES.get(colorspace, colorspace)} colour matrix is not supported",
                "convert the video to BT.709 or BT.601 first",
            )
        colorspace = BT709 if height >= 720 else SMPTE170M
        guessed = True
    if color_range in (RANGE_LIMITED, RANGE_FULL):
        full = color_range == RANGE_FULL
    else:
        full = pix_fmt.startswith("yuvj")
        guessed = True
    return ColourSpec(colorspace, full), guessed


def range_scale(bits: int, full_range: bool) -> tuple[float, float, float, float]:
    """(luma offset, luma scale, chroma offset, chroma scale) in code values."""
    if full_range:
        top = float((1 << bits) - 1)
        return 0.0, top, float(1 << (bits - 1)), top
    s = float(1 << (bits - 8))
    return 16.0 * s, 219.0 * s, 128.0 * s, 224.0 * s
