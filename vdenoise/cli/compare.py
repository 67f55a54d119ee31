"""`vdenoise compare`: see what processing did, as a labelled video or as PNG stills."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from vdenoise.cli.options import IO, Codec, Crf, Fps, Json, Lossless, Quiet, parse_time
from vdenoise.cli.support import check_input, fail
from vdenoise.errors import UsageError, VdenoiseError
from vdenoise.progress import ConsoleObserver, frame_rate

if TYPE_CHECKING:  # torch and PyAV load only when the command runs
    from vdenoise.preview import PreviewReport
    from vdenoise.stills import Still


def compare(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="The original, then one or more processed versions of it (videos or image "
            "folders of the same size and length)."
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Video file (.mp4, .mkv...), or with --at a .png name.",
            rich_help_panel=IO,
        ),
    ],
    at: Annotated[
        list[str] | None,
        typer.Option(
            help="Write a PNG of this time instead of a video (s or h:mm:ss; repeatable: "
            "OUTPUT's name gets each time added).",
            rich_help_panel=IO,
        ),
    ] = None,
    split: Annotated[
        bool,
        typer.Option(
            "--split",
            help="One picture cut by vertical wipe lines, not side by side.",
            rich_help_panel=IO,
        ),
    ] = False,
    label: Annotated[
        list[str] | None,
        typer.Option(
            help="Each input's label, in order (repeatable; default: file names).",
            rich_help_panel=IO,
        ),
    ] = None,
    zoom: Annotated[
        int,
        typer.Option(
            help="Enlargement of the PNGs' crops, 2-4 (nearest neighbour).", rich_help_panel=IO
        ),
    ] = 3,
    start: Annotated[
        str | None,
        typer.Option(
            help="Compare from this time, in every input (s or h:mm:ss).", rich_help_panel=IO
        ),
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Compare up to this time.", rich_help_panel=IO)
    ] = None,
    fps: Fps = None,
    codec: Codec = None,
    crf: Crf = None,
    lossless: Lossless = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", "-y", help="Replace OUTPUT.", rich_help_panel=IO)
    ] = False,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Show an original and its processed versions side by side (or split screen), labelled,
    frame for frame with the original's timing and audio; or, with --at, as PNG stills with
    enlarged crops where the versions differ most."""
    observer = ConsoleObserver(quiet=quiet, description="comparing")
    try:
        from vdenoise.compare import compare_video, sources

        for path in inputs:
            check_input(path, fps)
        chosen = sources(inputs, label, fps, parse_time(start, "--start"), parse_time(end, "--end"))
        if at:
            if split or start or end:
                raise UsageError("--at writes stills: --split, --start and --end are for videos")
            if codec or crf is not None or lossless:
                raise UsageError("--at writes PNGs: encoder options are for videos")
            from vdenoise.stills import compare_stills

            times = [parse_time(t, "--at") or 0.0 for t in at]
            stills = compare_stills(chosen, output, times, zoom=zoom, overwrite=overwrite)
        else:
            from vdenoise.io.encoding import EncodeOptions

            encode = EncodeOptions(codec=codec, crf=crf, lossless=lossless)
            report = compare_video(
                chosen, output, layout="split" if split else "side", encode=encode,
                overwrite=overwrite, observer=observer,
            )  # fmt: skip
    except (VdenoiseError, KeyboardInterrupt) as e:
        observer.stop()
        fail(e, as_json)
    observer.stop()
    if at:
        for still in stills:
            crops = "; ".join(f"{k}: {r}" for k, r in enumerate(still.regions, 1))
            observer.console.print(
                f"[green]✓[/green] {escape(str(still.path))} · frame at {still.seconds:.3f} s · "
                f"x{still.zoom} crops {crops}", highlight=False, soft_wrap=True, markup=True,
            )  # fmt: skip
        if as_json:
            print(json.dumps({"ok": True, "stills": [_still(s) for s in stills]}))
        return
    observer.console.print(
        f"[green]✓[/green] {report.frames} frames in {report.seconds:.1f} s "
        f"({frame_rate(report.fps)}) → {escape(report.output)} · {report.width}x{report.height} "
        f"{report.codec} {report.pix_fmt}", highlight=False, soft_wrap=True,
    )  # fmt: skip
    if as_json:
        print(json.dumps({"ok": True, **asdict(report), "fps": round(report.fps, 3)}))


def _still(still: Still) -> dict[str, Any]:
    return {**asdict(still), "path": str(still.path)}


def duration(seconds: float) -> str:
    """'38 s', '4 min 10 s', '2 h 05 min'."""
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def said_preview(report: PreviewReport, weights: str, as_json: bool) -> None:
    """`denoise --preview`'s result: the comparison's path and the whole run's projected time."""
    if as_json:
        print(json.dumps({"ok": True, "weights": weights, **report.as_dict()}))
        return
    whole = report.projected_seconds
    projected = (
        f"about {duration(whole)} for {report.total_frames} frames"
        if whole is not None
        else "unknown (the video does not say how many frames it has)"
    )
    print(
        f"preview: {report.preview} ({report.start:.1f}-{report.end:.1f} s, {report.frames} "
        f"frames denoised at {frame_rate(report.fps)})\n"
        f"the whole run would take {projected} at that speed"
    )
