"""The options `denoise` and `batch` share, and turning them into `denoise_video`'s keywords
(checked before torch loads)."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape

from vdenoise.errors import UsageError


class Audio(StrEnum):
    copy = "copy"
    aac = "aac"
    none = "none"


class Precision(StrEnum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


def parse_time(text: str | None, option: str) -> float | None:
    """Seconds from '90', '90.5', '1:30' or '00:01:30.5'."""
    if text is None:
        return None
    if not re.fullmatch(r"(\d+:){0,2}\d+(\.\d+)?", text.strip()):
        raise UsageError(f"{option} {text!r} is not a time", "write seconds (90.5) or h:mm:ss")
    seconds = 0.0
    for part in text.strip().split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def parse_tile(text: str) -> int | None:
    """--tile: 'auto' (None), '0' (never tile) or a size in pixels."""
    if text == "auto":
        return None
    if not text.isdigit():
        raise UsageError(f"--tile {text!r} is not auto, 0 or a size in pixels")
    return int(text)


def parse_encoder_opts(items: list[str]) -> dict[str, str]:
    opts = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--encoder-opt {item!r} is not KEY=VALUE")
        opts[key] = value
    return opts


MODEL, IO, ENC = "Model", "Input and output", "Encoding"
PERF, OUT = "Performance", "Reporting"


Method = Annotated[str | None, typer.Option(help="f2r (default) or stbn.", rich_help_panel=MODEL)]
Weights = Annotated[
    str | None,
    typer.Option(
        help="Checkpoint file or release name (default: the method's release).",
        rich_help_panel=MODEL,
    ),
]
Sigma = Annotated[
    float | None,
    typer.Option(help="Noise level, 0-255 scale (default: estimated).", rich_help_panel=MODEL),
]
Offline = Annotated[bool, typer.Option(help="Never download weights.", rich_help_panel=MODEL)]
Start = Annotated[str | None, typer.Option(help="Start time (s or h:mm:ss).", rich_help_panel=IO)]
End = Annotated[str | None, typer.Option(help="End time (s or h:mm:ss).", rich_help_panel=IO)]
Fps = Annotated[
    float | None, typer.Option(help="Frame rate of image-sequence input.", rich_help_panel=IO)
]
Overwrite = Annotated[
    bool, typer.Option("--overwrite", "-y", help="Replace OUTPUT.", rich_help_panel=IO)
]
IgnoreErrors = Annotated[
    bool,
    typer.Option(help="Skip damaged parts of the input instead of stopping.", rich_help_panel=IO),
]
Codec = Annotated[
    str | None,
    typer.Option(help="libx264 (default), libx265, libsvtav1, ffv1...", rich_help_panel=ENC),
]
Crf = Annotated[
    float | None,
    typer.Option(help="Constant quality (default: visually lossless).", rich_help_panel=ENC),
]
EncoderPreset = Annotated[
    str | None, typer.Option(help="Encoder speed preset.", rich_help_panel=ENC)
]
PixFmt = Annotated[
    str | None, typer.Option(help="Pixel format (default: the input's).", rich_help_panel=ENC)
]
Lossless = Annotated[bool, typer.Option(help="Encode losslessly.", rich_help_panel=ENC)]
EncoderOpt = Annotated[
    list[str] | None,
    typer.Option(help="Extra encoder option KEY=VALUE (repeatable).", rich_help_panel=ENC),
]
AudioOption = Annotated[
    Audio,
    typer.Option(help="Copy audio as is, re-encode to AAC, or drop it.", rich_help_panel=ENC),
]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.", rich_help_panel=PERF)]
PrecisionOption = Annotated[
    Precision, typer.Option(help="Compute precision.", rich_help_panel=PERF)
]
Tile = Annotated[
    str, typer.Option(help="Tile size: auto, 0 (whole frames) or pixels.", rich_help_panel=PERF)
]
Cluster = Annotated[
    str | None,
    typer.Option(
        help=escape(
            "Run on a Ray cluster: its address, auto (the one Ray finds) or local "
            "(start one here); needs `pip install 'vdenoise[cluster]'`."
        ),
        rich_help_panel=PERF,
    ),
]
Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print nothing but errors.", rich_help_panel=OUT)
]
Json = Annotated[
    bool, typer.Option("--json", help="Print one JSON report on stdout.", rich_help_panel=OUT)
]


def run_options(
    *,
    sigma: float | None,
    start: str | None,
    end: str | None,
    fps: float | None,
    overwrite: bool,
    ignore_errors: bool,
    codec: str | None,
    crf: float | None,
    preset: str | None,
    pix_fmt: str | None,
    lossless: bool,
    encoder_opt: list[str] | None,
    audio: Audio,
    device: str,
    precision: Precision,
    tile: str,
) -> dict[str, Any]:
    """`denoise_video`'s keyword options from the command line's, each checked."""
    from vdenoise.io.encoding import EncodeOptions

    return {
        "sigma": sigma,
        "encode": EncodeOptions(
            codec=codec,
            crf=crf,
            preset=preset,
            pix_fmt=pix_fmt,
            lossless=lossless,
            extra=parse_encoder_opts(encoder_opt or []),
        ),
        "audio": audio.value,
        "device": device,
        "precision": precision.value,
        "tile": parse_tile(tile),
        "start": parse_time(start, "--start"),
        "end": parse_time(end, "--end"),
        "fps": fps,
        "overwrite": overwrite,
        "ignore_errors": ignore_errors,
    }
