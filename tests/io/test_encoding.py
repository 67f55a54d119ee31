from fractions import Fraction
from pathlib import Path

import av
import pytest

from vdenoise.errors import UsageError
from vdenoise.io.colour import ColourSpec, PixelLayout
from vdenoise.io.encoding import (
    EncodeOptions,
    choose_pix_fmt,
    default_codec,
    encoder_settings,
    find_encoder,
)
from vdenoise.io.media import ColourTags, VideoInfo


def info(pix_fmt="yuv420p", width=64, height=48, bits=8) -> VideoInfo:
    layout = PixelLayout.of(pix_fmt)
    return VideoInfo(
        path=Path("x.mp4"),
        container="mp4",
        codec="h264",
        width=width,
        height=height,
        pix_fmt=pix_fmt,
        layout=layout,
        bits=bits,
        colour=ColourSpec(1, False),
        colour_guessed=False,
        tags=ColourTags(),
        time_base=Fraction(1, 30),
        average_rate=Fraction(30),
        frame_count=10,
        duration=1.0,
    )


X264, X265, FFV1, SVT = (av.Codec(n, "w") for n in ("libx264", "libx265", "ffv1", "libsvtav1"))


def test_same_format_when_the_encoder_has_it():
    assert choose_pix_fmt(info(), X264, None) == ("yuv420p", None)
    assert choose_pix_fmt(info("yuv422p"), X264, None) == ("yuv422p", None)
    assert choose_pix_fmt(info("yuv420p10le", bits=10), X264, None)[0] == "yuv420p10le"
    assert choose_pix_fmt(info("yuv444p12le", bits=12), X265, None)[0] == "yuv444p12le"


def test_full_range_jpeg_formats_become_plain_ones():
    assert choose_pix_fmt(info("yuvj420p"), X264, None)[0] == "yuv420p"


def test_odd_size_keeps_its_size_in_444():
    fmt, note = choose_pix_fmt(info(width=641, height=481), X264, None)
    assert fmt == "yuv444p" and "odd" in note


def test_missing_depth_is_said():
    fmt, note = choose_pix_fmt(info("yuv420p12le", bits=12), SVT, None)
    assert fmt == "yuv420p10le" and "12-bit" in note


def test_rgb_sources_get_delivery_420():
    assert choose_pix_fmt(info("rgb24"), X264, None)[0] == "yuv420p"
    assert choose_pix_fmt(info("rgb48le", bits=16), FFV1, None)[0] == "gbrp16le"


def test_requested_format_is_checked():
    assert choose_pix_fmt(info(), X264, "yuv444p") == ("yuv444p", None)
    with pytest.raises(UsageError, match="cannot encode"):
        choose_pix_fmt(info(), SVT, "yuv444p")
    with pytest.raises(UsageError, match="even dimensions"):
        choose_pix_fmt(info(width=641, height=481), X264, "yuv420p")
    with pytest.raises(UsageError, match="cannot write"):
        choose_pix_fmt(info(), X264, "nv12")


def test_settings_per_codec():
    assert encoder_settings("libx264", EncodeOptions()) == {"crf": "18", "preset": "medium"}
    assert encoder_settings("libx264", EncodeOptions(crf=23, preset="slow")) == {
        "crf": "23",
        "preset": "slow",
    }
    assert encoder_settings("libx264", EncodeOptions(lossless=True))["qp"] == "0"
    assert "lossless=1" in encoder_settings("libx265", EncodeOptions(lossless=True))["x265-params"]
    assert encoder_settings("libvpx-vp9", EncodeOptions())["b"] == "0"
    assert encoder_settings("ffv1", EncodeOptions(lossless=True))["level"] == "3"
    extra = encoder_settings("libx264", EncodeOptions(extra={"tune": "grain"}))
    assert extra["tune"] == "grain"


def test_settings_refuse_what_does_not_apply():
    with pytest.raises(UsageError, match="--crf"):
        encoder_settings("ffv1", EncodeOptions(crf=10))
    with pytest.raises(UsageError, match="--crf"):
        encoder_settings("libx264", EncodeOptions(crf=10, lossless=True))
    with pytest.raises(UsageError, match="no lossless mode"):
        encoder_settings("libsvtav1", EncodeOptions(lossless=True))
    with pytest.raises(UsageError, match="--preset"):
        encoder_settings("ffv1", EncodeOptions(preset="slow"))


def test_codec_names_and_defaults():
    assert find_encoder("h265").name == "libx265"
    with pytest.raises(UsageError, match="unknown video encoder"):
        find_encoder("nonsense")
    with pytest.raises(UsageError, match="not a video encoder"):
        find_encoder("aac")
    assert default_codec("mp4", False) == "libx264"
    assert default_codec("matroska", True) == "ffv1"
    assert default_codec("webm", False) == "libvpx-vp9"
