"""The `vdenoise` command. Thin: parse, call the library, map failures to exit codes.

Exit codes: 0 success, 1 runtime error, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import json
import re
import signal
import sys
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any

import typer

from vdenoise import __version__
from vdenoise.errors import UsageError, VdenoiseError
from vdenoise.io import open_input
from vdenoise.io.encoding import EncodeOptions
from vdenoise.models import METHODS, VideoDenoiser
from vdenoise.pipeline import denoise_video
from vdenoise.progress import ConsoleObserver

app = typer.Typer(
    name="vdenoise",
    help="Self-supervised video denoising that leaves everything but the noise unchanged.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)


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


def load_model(method: str) -> VideoDenoiser:
    if not METHODS:
        raise VdenoiseError(
            "no denoising method is installed in this version of vdenoise",
            "the F2R and STBN models come with their trained weights",
        )
    if method not in METHODS:
        raise UsageError(f"unknown method {method!r}", f"choose from {', '.join(METHODS)}")
    return METHODS[method]()


def _fail(error: VdenoiseError | KeyboardInterrupt, as_json: bool) -> None:
    """Report an expected failure in one line (or one JSON document) and exit."""
    if isinstance(error, KeyboardInterrupt):
        message, hint, code = "interrupted; the partial output was removed", None, 130
    else:
        message, hint, code = error.message, error.hint, error.exit_code
    if as_json:
        print(json.dumps({"ok": False, "error": message, "hint": hint, "exit_code": code}))
    ConsoleObserver().error(message + (f" [dim]({hint})[/dim]" if hint else ""))
    raise typer.Exit(code)


IO, ENC, PERF, OUT = "Input and output", "Encoding", "Performance", "Reporting"


@app.command()
def denoise(
    input: Annotated[Path, typer.Argument(help="Video file, or a folder of images.")],
    output: Annotated[
        Path, typer.Argument(help="Video file (.mp4, .mkv, .mov, .webm), or a folder for PNGs.")
    ],
    method: Annotated[str, typer.Option(help="Denoising method.")] = "f2r",
    start: Annotated[
        str | None, typer.Option(help="Start time (s or h:mm:ss).", rich_help_panel=IO)
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="End time (s or h:mm:ss).", rich_help_panel=IO)
    ] = None,
    fps: Annotated[
        float | None, typer.Option(help="Frame rate of image-sequence input.", rich_help_panel=IO)
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", "-y", help="Replace OUTPUT.", rich_help_panel=IO)
    ] = False,
    ignore_errors: Annotated[
        bool,
        typer.Option(
            help="Skip damaged parts of the input instead of stopping.", rich_help_panel=IO
        ),
    ] = False,
    codec: Annotated[
        str | None,
        typer.Option(help="libx264 (default), libx265, libsvtav1, ffv1...", rich_help_panel=ENC),
    ] = None,
    crf: Annotated[
        float | None,
        typer.Option(help="Constant quality (default: visually lossless).", rich_help_panel=ENC),
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help="Encoder speed preset.", rich_help_panel=ENC)
    ] = None,
    pix_fmt: Annotated[
        str | None, typer.Option(help="Pixel format (default: the input's).", rich_help_panel=ENC)
    ] = None,
    lossless: Annotated[bool, typer.Option(help="Encode losslessly.", rich_help_panel=ENC)] = False,
    encoder_opt: Annotated[
        list[str] | None,
        typer.Option(help="Extra encoder option KEY=VALUE (repeatable).", rich_help_panel=ENC),
    ] = None,
    audio: Annotated[
        Audio,
        typer.Option(help="Copy audio as is, re-encode to AAC, or drop it.", rich_help_panel=ENC),
    ] = Audio.copy,
    device: Annotated[
        str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.", rich_help_panel=PERF)
    ] = "auto",
    precision: Annotated[
        Precision, typer.Option(help="Compute precision.", rich_help_panel=PERF)
    ] = (Precision.auto),
    tile: Annotated[
        str, typer.Option(help="Tile size: auto, 0 (whole frames) or pixels.", rich_help_panel=PERF)
    ] = "auto",
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print nothing but errors.", rich_help_panel=OUT)
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON report on stdout.", rich_help_panel=OUT)
    ] = False,
) -> None:
    """Denoise a video, keeping its audio, timing, colour, bit depth and size."""
    observer = ConsoleObserver(quiet=quiet)
    try:
        options = EncodeOptions(
            codec=codec,
            crf=crf,
            preset=preset,
            pix_fmt=pix_fmt,
            lossless=lossless,
            extra=parse_encoder_opts(encoder_opt or []),
        )
        begin, finish = parse_time(start, "--start"), parse_time(end, "--end")
        if fps is not None and not input.is_dir():
            raise UsageError("--fps applies to image-sequence input only")
        model = load_model(method)
        report = denoise_video(
            input,
            output,
            model,
            encode=options,
            audio=audio.value,
            device=device,
            precision=precision.value,
            tile=parse_tile(tile),
            start=begin,
            end=finish,
            fps=fps,
            overwrite=overwrite,
            ignore_errors=ignore_errors,
            observer=observer,
        )
    except (VdenoiseError, KeyboardInterrupt) as e:
        observer.stop()
        _fail(e, as_json)
    observer.stop()
    observer.summary(report)
    if as_json:
        print(json.dumps({"ok": True, **report.as_dict()}))


@app.command()
def probe(
    input: Annotated[Path, typer.Argument(help="Video file or image folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show what vdenoise reads from a video: size, depth, colour, timing, streams."""
    try:
        if not input.exists():
            raise UsageError(f"{input} does not exist")
        reader = open_input(input)
        try:
            info = reader.info.describe()
        finally:
            reader.close()
    except VdenoiseError as e:
        _fail(e, as_json)
    if as_json:
        print(json.dumps(info))
        return
    _print_info(info)


def _print_info(info: dict[str, Any]) -> None:
    tags = info["tags"]
    rate = info["average_rate"]
    lines = [
        f"{info['path']}: {info['container']}, {info['codec']}",
        f"  {info['width']}x{info['height']} {info['pix_fmt']} ({info['bits']}-bit), "
        f"colour {info['colour']}{' (guessed)' if info['colour_guessed'] else ''}",
        f"  tags: range {tags['range']}, primaries {tags['primaries']}, "
        f"transfer {tags['transfer']}, matrix {tags['matrix']}",
        f"  {info['frame_count'] or 'unknown number of'} frames, "
        + (f"{float(Fraction(rate)):.3f} fps average, " if rate else "")
        + f"time base {info['time_base']}, duration {info['duration'] or 0:.2f} s",
        f"  rotation {info['rotation']}°, sample aspect {info['sample_aspect_ratio'] or '1'}, "
        f"{info['audio_streams']} audio and {info['subtitle_streams']} subtitle stream(s)",
    ]
    print("\n".join(lines))


def version_callback(value: bool) -> None:
    if value:
        print(f"vdenoise {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=version_callback, is_eager=True, help="Show the version."
        ),
    ] = False,
) -> None:
    """vdenoise: F2R and STBN self-supervised video denoising."""


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # cleaned up like Ctrl-C: partial output removed, exit 130


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    app(prog_name="vdenoise")


if __name__ == "__main__":
    sys.exit(main())
