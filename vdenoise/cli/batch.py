"""`vdenoise batch`: many videos (files, folders, patterns) into one folder, in parallel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

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
    IgnoreErrors,
    Json,
    Lossless,
    Method,
    Offline,
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
from vdenoise.cli.support import fail
from vdenoise.errors import UsageError, VdenoiseError
from vdenoise.progress import BatchProgress


def batch(
    inputs: Annotated[
        list[str], typer.Argument(help="Video files, folders of videos, or glob patterns.")
    ],
    output_dir: Annotated[
        Path,
        typer.Option(
            "--output-dir",
            "-o",
            help="Folder for the outputs (sub-folders mirrored).",
            rich_help_panel=IO,
        ),
    ],
    container: Annotated[
        str | None,
        typer.Option(
            help="Output extension, e.g. mkv (default: each input's).", rich_help_panel=IO
        ),
    ] = None,
    suffix: Annotated[
        str, typer.Option(help="Added to each output's name, e.g. _denoised.", rich_help_panel=IO)
    ] = "",
    skip_existing: Annotated[
        bool,
        typer.Option(
            "--skip-existing", help="Skip files whose output exists (resume).", rich_help_panel=IO
        ),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", "-y", help="Replace outputs.", rich_help_panel=IO)
    ] = False,
    manifest: Annotated[
        Path | None,
        typer.Option(
            help="JSON Lines record of every file (default: OUTPUT_DIR/vdenoise-manifest.jsonl).",
            rich_help_panel=IO,
        ),
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="Files in parallel: on CPUs in worker processes sharing the cores, on GPUs "
            "in flight together over one model per device.",
            rich_help_panel=PERF,
        ),
    ] = 1,
    devices: Annotated[
        str | None,
        typer.Option(
            help="Spread the files over these devices, e.g. cuda:0,cuda:1 (--jobs at least "
            "one per device; --jobs 4 on two GPUs: two files in flight on each).",
            rich_help_panel=PERF,
        ),
    ] = None,
    cluster: Cluster = None,
    method: Method = None,
    weights: Weights = None,
    sigma: Sigma = None,
    offline: Offline = False,
    start: Start = None,
    end: End = None,
    ignore_errors: IgnoreErrors = False,
    codec: Codec = None,
    crf: Crf = None,
    preset: EncoderPreset = None,
    pix_fmt: PixFmt = None,
    lossless: Lossless = False,
    encoder_opt: EncoderOpt = None,
    audio: AudioOption = Audio.copy,
    device: Device = "auto",
    precision: PrecisionOption = Precision.auto,
    tile: Tile = "auto",
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Denoise many videos into one folder; one failing file never stops the others."""
    progress = BatchProgress(quiet)
    try:
        from vdenoise.batch import MANIFEST, Settings, plan, run_batch

        options = run_options(
            sigma=sigma, start=start, end=end, fps=None, overwrite=overwrite,
            ignore_errors=ignore_errors, codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt,
            lossless=lossless, encoder_opt=encoder_opt, audio=audio, device=device,
            precision=precision, tile=tile,
        )  # fmt: skip
        if cluster is not None and jobs > 1:
            raise UsageError("--jobs is for one machine; on a cluster, Ray places the files")
        spread = [d.strip() for d in devices.split(",") if d.strip()] if devices else None
        if spread:
            from vdenoise.device import select_device

            for name in spread:
                select_device(name)  # an unknown or absent device is said before any work
            jobs = max(jobs, len(spread))
        if skip_existing and overwrite:
            raise UsageError("--skip-existing and --overwrite contradict each other")
        if output_dir.exists() and not output_dir.is_dir():
            raise UsageError(f"{output_dir} is not a folder")
        todo = plan(inputs, output_dir, container, suffix)
        output_dir.mkdir(parents=True, exist_ok=True)
        record = manifest or output_dir / MANIFEST
        settings = Settings(method, weights, offline, options)
        progress.start(len(todo))
        outcomes = run_batch(
            todo, settings, record, workers=jobs, devices=spread, cluster=cluster,
            skip_existing=skip_existing,
            started=progress.started, ended=progress.ended, observer=progress.frames,
            said=progress.note,
        )  # fmt: skip
    except KeyboardInterrupt as e:
        progress.stop()
        fail(e, as_json, interrupted="interrupted; finished files are kept, partial ones removed")
    except VdenoiseError as e:
        progress.stop()
        fail(e, as_json)
    progress.stop()
    failed = [o for o in outcomes if o.status == "failed"]
    progress.summary(outcomes, record)
    if as_json:
        print(json.dumps({"ok": not failed, "manifest": str(record), "files": len(outcomes)}))
    if failed:
        raise typer.Exit(1)
