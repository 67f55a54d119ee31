"""`vdenoise bench`: the papers' protocol, classical baselines, speed and memory, one command."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vdenoise.cli.support import fail
from vdenoise.errors import UsageError, VdenoiseError
from vdenoise.progress import BenchProgress

if TYPE_CHECKING:  # imported by `bench` itself: the CLI starts without torch
    import torch

    from vdenoise.bench.protocol import Condition, Method

DATA, CHOICE, PROTOCOL, OUT, PERF = "Data", "Methods", "Protocol", "Output", "Performance"


def _numbers(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--sigma {text!r}: give numbers separated by commas") from None
    if not values or any(not 0 < v <= 255 for v in values):
        raise UsageError("--sigma levels are on the 0-255 scale, e.g. 10,20,30,40,50")
    return values


def _write(path: Path, overwrite: bool, save: Callable[[Path], None]) -> None:
    """Write a report file whole or not at all."""
    if path.exists() and not overwrite:
        raise UsageError(f"{path} exists", "use --overwrite to replace it")
    if not path.parent.is_dir():
        raise UsageError(f"the folder of {path} does not exist")
    tmp = path.with_name(f".{path.name}.part{path.suffix}")
    try:
        save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def bench(
    dataset: Annotated[
        str,
        typer.Option(
            help="set8, davis, or folder (any folder of sequences).", rich_help_panel=DATA
        ),
    ] = "set8",
    root: Annotated[
        Path | None,
        typer.Option(help="Where the dataset is (default: $VDENOISE_DATA).", rich_help_panel=DATA),
    ] = None,
    method: Annotated[
        list[str] | None,
        typer.Option(
            help="A method, run with its released weights (repeatable); none: no models.",
            rich_help_panel=CHOICE,
        ),
    ] = None,
    weights: Annotated[
        list[str] | None,
        typer.Option(
            help="A checkpoint file or release name (repeatable).", rich_help_panel=CHOICE
        ),
    ] = None,
    baselines: Annotated[
        str,
        typer.Option(
            help="Classical baselines, comma-separated, or all, or none.", rich_help_panel=CHOICE
        ),
    ] = "all",
    sigma: Annotated[
        str, typer.Option(help="Noise levels (0-255), comma-separated.", rich_help_panel=PROTOCOL)
    ] = "10,20,30,40,50",
    noise: Annotated[
        str,
        typer.Option(
            help="gaussian (AWGN, the papers'), correlated (at each --sigma), or a full noise "
            "spec such as poisson-gaussian:0.01,5.",
            rich_help_panel=PROTOCOL,
        ),
    ] = "gaussian",
    eight_bit: Annotated[
        bool,
        typer.Option(
            "--eight-bit",
            help="Round and clip the noisy frames to 8 bits, as users' files hold them (the "
            "papers do neither).",
            rich_help_panel=PROTOCOL,
        ),
    ] = False,
    frames: Annotated[
        int,
        typer.Option(min=1, help="Frames per sequence (the papers: 85).", rich_help_panel=PROTOCOL),
    ] = 85,
    seed: Annotated[
        int, typer.Option(help="Noise seed, the same for every sequence.", rich_help_panel=PROTOCOL)
    ] = 0,
    device: Annotated[
        str, typer.Option(help="auto, cpu, cuda or cuda:N.", rich_help_panel=PERF)
    ] = "auto",
    precision: Annotated[
        str, typer.Option(help="auto, fp32, bf16 or fp16.", rich_help_panel=PERF)
    ] = "auto",
    end_to_end: Annotated[
        bool, typer.Option(help="Also time `denoise` on an encoded clip.", rich_help_panel=PERF)
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout.", rich_help_panel=OUT)
    ] = False,
    markdown: Annotated[
        Path | None, typer.Option(help="Also write the tables to this file.", rich_help_panel=OUT)
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write a PSNR-vs-sigma plot (PNG).", rich_help_panel=OUT)
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace existing report files.", rich_help_panel=OUT)
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print nothing but errors and results.")
    ] = False,
) -> None:
    """Measure methods with the papers' protocol (PSNR/SSIM per sigma), speed and memory."""
    progress = BenchProgress(quiet)  # stderr: stdout keeps only the results
    try:
        from vdenoise.bench.datasets import open_dataset
        from vdenoise.bench.report import markdown as tables
        from vdenoise.bench.report import plot as draw
        from vdenoise.bench.report import to_json
        from vdenoise.bench.runner import benchmark
        from vdenoise.device import select_device, select_precision

        for path in (markdown, plot):
            if path is not None and path.exists() and not overwrite:
                raise UsageError(f"{path} exists", "use --overwrite to replace it")
        settings = _conditions(sigma, noise, eight_bit)
        data = open_dataset(dataset, root)
        target = select_device(device)
        dtype = select_precision(precision, target)
        methods = _methods(method, weights, baselines, target, dtype, progress)
        progress.note(f"{data.label}: {', '.join(s.name for s in data.sequences)}")
        document = benchmark(data, methods, settings, frames, seed, target, dtype, progress,
                             end_to_end)  # fmt: skip
        progress.stop()
        if markdown is not None:
            _write(markdown, overwrite, lambda p: p.write_text(tables(document)))
        if plot is not None:
            _write(plot, overwrite, lambda p: draw(document, p))
    except KeyboardInterrupt as e:
        progress.stop()
        fail(e, as_json, interrupted="interrupted; no report was written")
    except VdenoiseError as e:
        progress.stop()
        fail(e, as_json)
    typer.echo(to_json(document) if as_json else tables(document), nl=False)


def _conditions(sigma: str, noise: str, eight_bit: bool) -> list[Condition]:
    from vdenoise.bench.protocol import LEVELLED, conditions
    from vdenoise.noise import NoiseModel

    if noise not in LEVELLED:
        NoiseModel.parse(noise)  # a clear error for a bad spec, before any work
    return conditions(_numbers(sigma), noise, eight_bit)


def _methods(
    method: list[str] | None,
    weights: list[str] | None,
    baselines: str,
    device: torch.device,
    dtype: torch.dtype,
    progress: BenchProgress,
) -> list[Method]:
    """Our checkpoints between the noisy input and the classical baselines."""
    from vdenoise.bench.baselines import BASELINES
    from vdenoise.bench.protocol import ModelMethod
    from vdenoise.bench.runner import baseline_methods
    from vdenoise.checkpoint import load_model
    from vdenoise.models import METHODS
    from vdenoise.weights import default_release, file_sha256

    named = list(method or [])
    if "none" in named:
        named = []  # the baselines (and any --weights) alone
    elif not named and not weights:
        named = [m for m in METHODS if default_release(m, device.type) is not None]
        if not named:
            progress.note(
                "no released weights yet: benchmarking the baselines (add --weights FILE)"
            )
    ours: list[Method] = []
    for name, file in [(m, None) for m in named] + [(None, w) for w in weights or []]:
        model, source = load_model(name, file, device_type=device.type)
        path = getattr(model, "checkpoint", {}).get("path")
        label = name or Path(str(file)).name.removesuffix(".safetensors")
        info = {"weights": source, "sha256": file_sha256(Path(path)) if path else None}
        ours.append(ModelMethod(label, model, device, dtype, info))
    chosen = {"none": [], "all": list(BASELINES)}.get(baselines)
    if chosen is None:
        chosen = [b.strip() for b in baselines.split(",") if b.strip()]
    methods = baseline_methods([b for b in chosen if b == "noisy"]) + ours
    methods += baseline_methods([b for b in chosen if b != "noisy"])
    if not methods:
        raise UsageError("nothing to benchmark", "name a --method, --weights or --baselines")
    return methods
