"""The `vdenoise` command. Thin: parse, call the library, map failures to exit codes.

Exit codes: 0 success, 1 runtime error, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any

import typer

from vdenoise import __version__, cli_batch, cli_bench, cli_compare, cli_training, weights
from vdenoise.cli_options import (
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
from vdenoise.cli_support import Command, Group, check_input, fail
from vdenoise.errors import UsageError, VdenoiseError
from vdenoise.progress import ConsoleObserver

# Heavy modules (torch, PyAV) are imported inside the commands that use them, so `--help`,
# `--version`, `probe` and `models list` start in a fraction of a second.

app = typer.Typer(
    cls=Group,
    name="vdenoise",
    help="Self-supervised video denoising that leaves everything but the noise unchanged.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)


@app.command(cls=Command)
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
        cli_compare.said_preview(report, source, as_json)
        return
    observer.summary(report)
    if as_json:
        print(json.dumps({"ok": True, "weights": source, **report.as_dict()}))


@app.command(cls=Command)
def probe(
    input: Annotated[Path, typer.Argument(help="Video file or image folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show what vdenoise reads from a video: size, depth, colour, timing, streams."""
    try:
        from vdenoise.io import open_input

        check_input(input)
        reader = open_input(input)
        try:
            info = reader.info.describe()
        finally:
            reader.close()
    except VdenoiseError as e:
        fail(e, as_json)
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


models_app = typer.Typer(
    cls=Group,
    help="Released weights: what is here, where it came from, fetching and checking it.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")


def _release(name: str) -> weights.Release:
    release = weights.find_release(name)
    if release is None:
        known = ", ".join(r.name for r in weights.RELEASES) or "none released yet"
        raise UsageError(f"no release is named {name!r}", f"known: {known}")
    return release


@models_app.command("list", cls=Command)
def models_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The released checkpoints and whether each is on this machine."""
    rows = []
    for r in weights.RELEASES:
        found = weights.locate(r)
        rows.append(
            {
                "name": r.name,
                "method": r.method,
                "default_for": list(r.default_for),
                "where": found[1] if found else "not downloaded",
                "path": str(found[0]) if found else None,
                "hub": f"{r.repo_id}@{(r.revision or '')[:10]}" if r.repo_id else "bundled only",
                "license": r.license,
                "training_data": r.training_data,
            }
        )
    if as_json:
        print(json.dumps(rows))
    elif not rows:
        print(f"no weights have been released yet (bundled folder: {weights.bundled_dir()})")
    if rows and not as_json:
        print(f"{'NAME':24} {'METHOD':6} {'ON THIS MACHINE':15} {'HUB':22} DEFAULT ON")
    for row in [] if as_json else rows:
        default = "/".join(row["default_for"]) or "-"
        print(f"{row['name']:24} {row['method']:6} {row['where']:15} {row['hub']:22} {default}")


@models_app.command("download", cls=Command)
def models_download(
    name: Annotated[str, typer.Argument(help="Release name (see `vdenoise models list`).")],
) -> None:
    """Fetch a release from the Hugging Face Hub at its pinned commit (cached once)."""
    try:
        release = _release(name)
        path = weights.release_path(release)
        if weights.file_sha256(path) != release.sha256:
            raise VdenoiseError(f"{path} does not match the registered sha256")
    except VdenoiseError as e:
        fail(e, False)
    print(path)


@models_app.command("path", cls=Command)
def models_path(name: Annotated[str, typer.Argument(help="Release name.")]) -> None:
    """Where a release is on this machine (bundled or in the Hugging Face cache)."""
    try:
        found = weights.locate(_release(name))
        if found is None:
            raise VdenoiseError(
                f"{name} is not on this machine", f"vdenoise models download {name}"
            )
    except VdenoiseError as e:
        fail(e, False)
    print(found[0])


@models_app.command("verify", cls=Command)
def models_verify(
    target: Annotated[
        str | None, typer.Argument(help="Release name or checkpoint file (default: all).")
    ] = None,
) -> None:
    """Check sha256 of releases on this machine, or read a checkpoint file's metadata."""
    try:
        if target is not None and weights.find_release(target) is None:
            from vdenoise.checkpoint import read_metadata

            meta = read_metadata(Path(target))
            digest = weights.file_sha256(Path(target))
            print(f"{target}: {meta['method']} {meta['preset']}, sha256 {digest}")
            return
        failed = False
        for r in [_release(target)] if target else weights.RELEASES:
            found = weights.locate(r)
            status = "not downloaded"
            if found:
                ok = weights.file_sha256(found[0]) == r.sha256
                status = f"ok ({found[1]})" if ok else f"MISMATCH ({found[0]})"
                failed |= not ok
            print(f"{r.name}: {status}")
    except VdenoiseError as e:
        fail(e, False)
    if failed:
        raise typer.Exit(1)


@models_app.command("card", cls=Command)
def models_card(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint file.")],
    name: Annotated[str | None, typer.Option(help="Title (default: the file name).")] = None,
) -> None:
    """Print a checkpoint's model card (Markdown), from what its training recorded."""
    from vdenoise.model_card import render

    try:
        if not checkpoint.is_file():
            raise UsageError(f"{checkpoint} does not exist")
        typer.echo(render(checkpoint, name), nl=False)
    except VdenoiseError as e:
        fail(e, False)


app.command(cls=Command)(cli_batch.batch)
app.command(cls=Command)(cli_training.fit)
app.command(cls=Command)(cli_training.train)
app.command(cls=Command)(cli_bench.bench)
app.command(cls=Command)(cli_compare.compare)


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
