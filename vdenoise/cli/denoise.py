"""`vdenoise denoise`: one video (or image sequence) in, the same video out minus the noise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vdenoise.cli.compare import said_preview
from vdenoise.cli.options import (
    IO,
    PERF,
    Audio,
    AudioOption,
    Cluster,
    Codec,
    Crf,
    Device,
    EncoderOpt,
    EncoderPreset,
    End,
    Fps,
    IgnoreErrors,
    Json,
    Lossless,
    Method,
    Offline,
    Overwrite,
    PixFmt,
    Precision,
    PrecisionOption,
    Quiet,
    Sigma,
    Start,
    Tile,
    Weights,
    run_options,
)
from vdenoise.cli.support import check_input, fail
from vdenoise.errors import UsageError, VdenoiseError
from vdenoise.progress import ConsoleObserver


def denoise(
    input: Annotated[Path, typer.Argument(help="Video file, or a folder of images.")],
    output: Annotated[
        Path, typer.Argument(help="Video file (.mp4, .mkv, .mov, .webm), or a folder for PNGs.")
    ],
    method: Method = None,
    weights: Weights = None,
    sigma: Sigma = None,
    offline: Offline = False,
    start: Start = None,
    end: End = None,
    fps: Fps = None,
    overwrite: Overwrite = False,
    ignore_errors: IgnoreErrors = False,
    codec: Codec = None,
    crf: Crf = None,
    preset: EncoderPreset = None,
    pix_fmt: PixFmt = None,
    lossless: Lossless = False,
    encoder_opt: EncoderOpt = None,
    audio: AudioOption = Audio.copy,
    device: Device = "auto",
    precision: PrecisionOption = (Precision.auto),
    tile: Tile = "auto",
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="Split the video at keyframes and denoise the segments in this many worker "
            "processes (the output is the same as in one piece).",
            rich_help_panel=PERF,
        ),
    ] = 1,
    segments: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Segments to split into (default: --jobs, or one per CPU of the cluster).",
            rich_help_panel=PERF,
        ),
    ] = None,
    cluster: Cluster = None,
    preview: Annotated[
        bool,
        typer.Option(
            "--preview",
            help="Denoise 3 s from the middle with these settings, write them beside the "
            "original as OUTPUT's name + .preview (out.mp4: out.preview.mp4) and say how long "
            "the whole run would take. Nothing else is written.",
            rich_help_panel=IO,
        ),
    ] = False,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Denoise a video, keeping its audio, timing, colour, bit depth and size."""
    observer = ConsoleObserver(quiet=quiet)
    try:
        options = run_options(
            sigma=sigma, start=start, end=end, fps=fps, overwrite=overwrite,
            ignore_errors=ignore_errors, codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt,
            lossless=lossless, encoder_opt=encoder_opt, audio=audio, device=device,
            precision=precision, tile=tile,
        )  # fmt: skip
        if fps is not None and not input.is_dir():
            raise UsageError("--fps applies to image-sequence input only")
        check_input(input, fps)  # before torch loads: a bad input is said at once
        if preview and (jobs > 1 or segments or cluster is not None):
            raise UsageError(
                "--preview runs in one process: leave out --jobs, --segments and --cluster"
            )
        from vdenoise import checkpoint
        from vdenoise.device import select_device
        from vdenoise.pipeline import denoise_video

        model, source = checkpoint.load_model(method, weights, offline, select_device(device).type)
        observer.note(f"weights: {source}")
        if warning := checkpoint.unverified_note(model):
            observer.note(warning)
        if preview:
            from vdenoise.preview import denoise_preview

            report = denoise_preview(input, output, model, options, observer)
        elif jobs > 1 or segments or cluster is not None:
            from vdenoise.batch import Settings
            from vdenoise.segments import denoise_segmented, pieces_for

            settings = Settings(method, weights, offline, options)
            report = denoise_segmented(
                input, output, model, settings, workers=jobs, cluster=cluster,
                pieces=segments or pieces_for(jobs, cluster), observer=observer,
            )  # fmt: skip
        else:
            report = denoise_video(input, output, model, observer=observer, **options)
    except (VdenoiseError, KeyboardInterrupt) as e:
        observer.stop()
        fail(e, as_json)
    observer.stop()
    if preview:
        said_preview(report, source, as_json)
        return
    observer.summary(report)
    if as_json:
        print(json.dumps({"ok": True, "weights": source, **report.as_dict()}))
