import av
import numpy as np
import pytest
import torch
from av.video.reformatter import Interpolation

from vdenoise.errors import VdenoiseError
from vdenoise.io.colour import ColourSpec, PixelLayout, resolve_colour
from vdenoise.io.convert import planes_to_rgb, rgb_to_planes
from vdenoise.io.reader import frame_planes


@pytest.mark.parametrize(
    ("name", "kind", "bits", "shift"),
    [
        ("yuv420p", "yuv", 8, (1, 1)),
        ("yuvj422p", "yuv", 8, (1, 0)),
        ("yuv444p10le", "yuv", 10, (0, 0)),
        ("yuv420p16le", "yuv", 16, (1, 1)),
        ("gbrp12le", "gbr", 12, (0, 0)),
        ("rgb48le", "rgb", 16, (0, 0)),
    ],
)
def test_layout_of_native_formats(name, kind, bits, shift):
    layout = PixelLayout.of(name)
    assert (layout.kind, layout.bits, layout.chroma_shift) == (kind, bits, shift)


@pytest.mark.parametrize("name", ["nv12", "p010le", "yuv420p10be", "pal8", "bgra", "gray"])
def test_other_formats_go_through_swscale(name):
    assert PixelLayout.of(name) is None


def test_untagged_colour_follows_the_players_convention():
    assert resolve_colour(2, 0, "yuv420p", 480, False) == (ColourSpec(6, False), True)
    assert resolve_colour(2, 0, "yuv420p", 720, False) == (ColourSpec(1, False), True)
    assert resolve_colour(2, 0, "yuvj420p", 1080, False) == (ColourSpec(1, True), True)
    assert resolve_colour(9, 2, "yuv420p10le", 2160, False) == (ColourSpec(9, True), False)


def test_unsupported_matrix_is_refused():
    with pytest.raises(VdenoiseError, match="ycgco"):
        resolve_colour(8, 1, "yuv420p", 480, False)


def _random_frame(fmt: str, width: int, height: int, seed: int = 0) -> av.VideoFrame:
    frame = av.VideoFrame(width, height, fmt)
    rng = np.random.default_rng(seed)
    layout = PixelLayout.of(fmt)
    for plane in frame.planes:
        data = np.frombuffer(plane, layout.dtype)
        data[:] = rng.integers(0, layout.max_value + 1, data.size)
    return frame


@pytest.mark.parametrize(("matrix", "sws"), [(6, 5), (1, 1)])
@pytest.mark.parametrize("full", [False, True])
def test_8bit_conversion_matches_ffmpeg(matrix, sws, full):
    """Golden check against swscale in its accurate mode, chroma replicated: within 1 LSB.

    (swscale's default fast path truncates and is off by up to 3 LSB; we are not.)"""
    frame = _random_frame("yuv420p", 64, 48)
    for plane in frame.planes:  # keep to legal values: swscale clips, we do not
        data = np.frombuffer(plane, np.uint8)
        data[:] = np.clip(data, 40, 200)
    reference = frame.to_ndarray(
        format="rgb24",
        src_colorspace=sws,
        src_color_range=2 if full else 1,
        dst_color_range=2,
        interpolation=Interpolation.POINT
        | Interpolation.ACCURATE_RND
        | Interpolation.FULL_CHR_H_INT,
    ).astype(float)
    layout = PixelLayout.of("yuv420p")
    planes = [torch.from_numpy(p) for p in frame_planes(frame, layout)]
    ours = planes_to_rgb(planes, layout, ColourSpec(matrix, full)).permute(1, 2, 0).numpy()
    ours = np.clip(ours * 255, 0, 255)
    assert np.abs(ours - reference).max() < 1.0


@pytest.mark.parametrize("full", [False, True])
def test_10bit_bt2020_conversion_matches_the_standard(full):
    """BT.2020 at 10 bits against the matrix written out from Rec. ITU-R BT.2020, table 4."""
    layout = PixelLayout.of("yuv444p10le")
    rng = np.random.default_rng(1)
    y, cb, cr = (rng.integers(64, 960, (6, 5)).astype(np.uint16) for _ in range(3))
    yf, cbf, crf = (p.astype(float) for p in (y, cb, cr))
    rgb = planes_to_rgb([torch.from_numpy(p) for p in (y, cb, cr)], layout, ColourSpec(9, full))
    if full:
        yn, cbn, crn = yf / 1023, (cbf - 512) / 1023, (crf - 512) / 1023
    else:
        yn, cbn, crn = (yf - 64) / 876, (cbf - 512) / 896, (crf - 512) / 896
    r = yn + 1.4746 * crn
    b = yn + 1.8814 * cbn
    g = (yn - 0.2627 * r - 0.0593 * b) / 0.6780
    assert np.allclose(rgb.numpy(), np.stack([r, g, b]), atol=2e-4)


@pytest.mark.parametrize(
    "fmt", ["yuv420p", "yuvj420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv411p", "gbrp10le"]
)
@pytest.mark.parametrize(("width", "height"), [(64, 48), (33, 17)])
def test_round_trip_is_exact(fmt, width, height):
    """Decode -> RGB -> encode gives back the very same code values (odd sizes too)."""
    layout = PixelLayout.of(fmt)
    frame = _random_frame(fmt, width, height, seed=3)
    planes = frame_planes(frame, layout)
    y = planes[0].astype(np.int64)
    if layout.kind == "yuv":  # legal range, so that RGB holds no clipped value
        planes[0][:] = np.clip(y, 16 << (layout.bits - 8), 235 << (layout.bits - 8))
    spec = ColourSpec(1 if layout.kind == "yuv" else 0, fmt.startswith("yuvj"))
    rgb = planes_to_rgb([torch.from_numpy(p) for p in planes], layout, spec)
    back = rgb_to_planes(rgb, layout, spec)
    for a, b in zip(planes, back, strict=True):
        assert np.array_equal(a, b.numpy())


def test_white_and_black_land_on_the_nominal_code_values():
    layout = PixelLayout.of("yuv420p10le")
    white = rgb_to_planes(torch.ones(3, 4, 4), layout, ColourSpec(1, False))
    black = rgb_to_planes(torch.zeros(3, 4, 4), layout, ColourSpec(1, False))
    assert [int(p[0, 0]) for p in white] == [940, 512, 512]
    assert [int(p[0, 0]) for p in black] == [64, 512, 512]


def test_packed_rgb_is_scaled_to_its_bit_depth():
    layout = PixelLayout.of("rgb48le")
    (image,) = rgb_to_planes(torch.full((3, 2, 2), 0.5), layout, ColourSpec(0, True))
    assert image.shape == (2, 2, 3) and int(image[0, 0, 0]) == 32768
