"""Y'CbCr <-> RGB conversion in torch with an explicit matrix, range and bit depth.

We own the colour maths instead of relying on swscale: PyAV's conversions have a long record of
wrong matrices and ranges (PyAV #873, #1431, #2149, #2192), and doing it in torch lets the
conversion run on the same device as the model. Chroma is upsampled by replication and
downsampled by box averaging, the pair FFmpeg's and OpenCV's default converters use; it makes a
decode -> encode round trip exact.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vdenoise.io.colour import LUMA_COEFFICIENTS, ColourSpec, PixelLayout, range_scale


def planes_to_rgb(
    planes: list[torch.Tensor], layout: PixelLayout, spec: ColourSpec
) -> torch.Tensor:
    """Integer planes (as stored in the frame) -> float32 R'G'B' [3, H, W], nominally in [0, 1].

    Values outside [0, 1] (super-whites, out-of-gamut chroma) are kept, not clipped.
    """
    if layout.kind == "rgb":
        return planes[0].permute(2, 0, 1).float() / layout.max_value
    if layout.kind == "gbr":
        g, b, r = planes[:3]
        return torch.stack([r, g, b]).float() / layout.max_value
    y, cb, cr = (p.float() for p in planes[:3])
    height, width = y.shape
    sx, sy = layout.chroma_shift
    if sx or sy:
        cb = cb.repeat_interleave(1 << sy, 0).repeat_interleave(1 << sx, 1)[:height, :width]
        cr = cr.repeat_interleave(1 << sy, 0).repeat_interleave(1 << sx, 1)[:height, :width]
    y_off, y_scale, c_off, c_scale = range_scale(layout.bits, spec.full_range)
    y = (y - y_off) / y_scale
    cb = (cb - c_off) / c_scale
    cr = (cr - c_off) / c_scale
    kr, kb = LUMA_COEFFICIENTS[spec.matrix]
    kg = 1.0 - kr - kb
    r = y + (2.0 - 2.0 * kr) * cr
    b = y + (2.0 - 2.0 * kb) * cb
    g = (y - kr * r - kb * b) / kg
    return torch.stack([r, g, b])


def _quantise(x: torch.Tensor, layout: PixelLayout) -> torch.Tensor:
    dtype = torch.uint8 if layout.bits <= 8 else torch.uint16
    return x.round_().clamp_(0, layout.max_value).to(dtype)


def _box_downsample(c: torch.Tensor, shift: tuple[int, int]) -> torch.Tensor:
    """Average over (2^sy x 2^sx) blocks; odd edges are padded by replication first."""
    sx, sy = shift
    if not (sx or sy):
        return c
    fy, fx = 1 << sy, 1 << sx
    height, width = c.shape
    pad_y, pad_x = (-height) % fy, (-width) % fx
    c = c[None, None]
    if pad_y or pad_x:
        c = F.pad(c, (0, pad_x, 0, pad_y), mode="replicate")
    return F.avg_pool2d(c, (fy, fx))[0, 0]


def rgb_to_planes(rgb: torch.Tensor, layout: PixelLayout, spec: ColourSpec) -> list[torch.Tensor]:
    """Float R'G'B' [3, H, W] -> integer planes for the layout (uint8, or uint16 above 8 bits)."""
    rgb = rgb.float()
    if layout.kind == "rgb":
        return [_quantise(rgb.permute(1, 2, 0) * layout.max_value, layout)]
    if layout.kind == "gbr":
        r, g, b = rgb
        return [_quantise(p * layout.max_value, layout) for p in (g, b, r)]
    r, g, b = rgb
    kr, kb = LUMA_COEFFICIENTS[spec.matrix]
    kg = 1.0 - kr - kb
    y = kr * r + kg * g + kb * b
    cb = _box_downsample((b - y) / (2.0 - 2.0 * kb), layout.chroma_shift)
    cr = _box_downsample((r - y) / (2.0 - 2.0 * kr), layout.chroma_shift)
    y_off, y_scale, c_off, c_scale = range_scale(layout.bits, spec.full_range)
    return [
        _quantise(y * y_scale + y_off, layout),
        _quantise(cb * c_scale + c_off, layout),
        _quantise(cr * c_scale + c_off, layout),
    ]
