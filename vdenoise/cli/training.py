"""`vdenoise fit` and `vdenoise train`: the training commands."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from vdenoise.cli.support import check_input, fail
from vdenoise.errors import UsageError, VdenoiseError
from vdenoise.progress import TrainingProgress

if TYPE_CHECKING:  # imported by the commands themselves: the CLI starts without torch
    from vdenoise.training import run
    from vdenoise.training.trainer import TrainReport, TrainSettings

MODEL, BUDGET, DATA, PERF = "Model", "Budget", "Data", "Performance"
DEFAULT_FIT_MINUTES = 5.0


class Refiner(StrEnum):
    auto = "auto"
    sure = "sure"
    r2r = "r2r"
    adaptive = "adaptive"
    measured = "measured"


Method = Annotated[
    str | None,
    typer.Option(help="f2r or stbn (default: that of --from, else f2r).", rich_help_panel=MODEL),
]
From = Annotated[
    str | None,
    typer.Option(
        "--from", help="Start from this checkpoint file or release name.", rich_help_panel=MODEL
    ),
]
Preset = Annotated[
    str | None,
    typer.Option(help="Start from a new model of this preset instead.", rich_help_panel=MODEL),
]
RefinerOption = Annotated[
    Refiner,
    typer.Option(
        help="F2R stage-2 loss: sure (white Gaussian noise), r2r (recorrupted pairs), adaptive "
        "(spatially adaptive supervision), measured (SURE for the noise's covariance measured "
        "against the anchor); auto: measured in fit, sure in train on AWGN.",
        rich_help_panel=MODEL,
    ),
]
Minutes = Annotated[float | None, typer.Option(help="Train for this long.", rich_help_panel=BUDGET)]
Steps = Annotated[int | None, typer.Option(help="Or for this many steps.", rich_help_panel=BUDGET)]
Batch = Annotated[int, typer.Option(help="Clips per step.", rich_help_panel=BUDGET)]
Crop = Annotated[int, typer.Option(help="Crop size of the clips, pixels.", rich_help_panel=BUDGET)]
Resume = Annotated[
    bool, typer.Option(help="Continue the run that wrote --output.", rich_help_panel=BUDGET)
]
Joint = Annotated[
    float,
    typer.Option(
        help="F2R: the share of stage 2's budget spent last fine-tuning both stages together.",
        rich_help_panel=BUDGET,
    ),
]
EightBit = Annotated[
    float,
    typer.Option(
        "--eight-bit",
        help="The share of training clips rounded and clipped to 8 bits after the noise is "
        "added, as users' files hold them (F2R's stage 1 and STBN; F2R's stage 2 needs "
        "unclipped noise).",
        rich_help_panel=DATA,
    ),
]
Overwrite = Annotated[bool, typer.Option("--overwrite", "-y", help="Replace existing outputs.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.", rich_help_panel=PERF)]
Offline = Annotated[bool, typer.Option(help="Never download weights.", rich_help_panel=MODEL)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]


def _budget(minutes: float | None, steps: int | None, default: float | None) -> dict:
    if minutes is not None and steps is not None:
        raise UsageError("give --minutes or --steps, not both")
    if (minutes is not None and minutes <= 0) or (steps is not None and steps <= 0):
        raise UsageError("the budget must be positive")
    if minutes is None and steps is None:
        if default is None:
            raise UsageError("give a budget: --minutes or --steps")
        minutes = default
    return {"minutes": minutes, "steps": steps}


def _frame_steps(text: str) -> tuple[int, ...]:
    try:
        steps = tuple(int(s) for s in text.split(","))
    except ValueError:
        steps = ()
    if not steps or min(steps) < 1:
        raise UsageError(f"--frame-steps takes steps of 1 or more, like 1,2,3,4 (not {text!r})")
    return steps


def _checked(settings: TrainSettings) -> TrainSettings:
    if not 0.0 <= settings.joint_share < 1.0:
        raise UsageError("--joint must be at least 0 and below 1")
    if not 0.0 <= settings.eight_bit_share <= 1.0:
        raise UsageError("--eight-bit must be a share between 0 and 1")
    if settings.noisy_flows and not settings.flow_cache:
        raise UsageError("--noisy-flows needs --flow-cache (it says how the cache is made)")
    if settings.joint_share and settings.refiner() == "adaptive":
        raise UsageError(
            "--joint needs a stage-2 loss that estimates the error",
            "use --refiner sure, r2r or measured",
        )
    return settings


def _summary(progress: TrainingProgress, report: TrainReport, output: Path) -> None:
    losses = ", ".join(f"{k} {v:.4g}" for k, v in report.losses.items())
    progress.console.print(
        f"[green]✓[/green] {report.steps} steps in {report.seconds / 60:.1f} min ({losses}) "
        f"→ {escape(str(output))}",
        highlight=False,
        soft_wrap=True,
    )


def fit(
    noisy: Annotated[Path, typer.Argument(help="The noisy video (or frame folder) to adapt to.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Checkpoint to write (default: NOISY.METHOD.safetensors)."
        ),
    ] = None,
    method: Method = None,
    start_from: From = None,
    preset: Preset = None,
    sigma: Annotated[
        float | None,
        typer.Option(help="Noise level, 0-255 scale (default: estimated).", rich_help_panel=MODEL),
    ] = None,
    refiner: RefinerOption = Refiner.auto,
    minutes: Minutes = None,
    steps: Steps = None,
    joint: Joint = 0.0,
    batch: Batch = 8,
    crop: Crop = 96,
    resume: Resume = False,
    denoise: Annotated[
        Path | None,
        typer.Option(help="Then denoise NOISY with the result into this file.", show_default=False),
    ] = None,
    overwrite: Overwrite = False,
    device: Device = "auto",
    offline: Offline = False,
    quiet: Quiet = False,
) -> None:
    """Adapt a model to the noise of your own clip (self-supervised: no clean video needed)."""
    progress = TrainingProgress(quiet)
    checkpoint = output
    try:
        from vdenoise.device import describe, select_device
        from vdenoise.training import run

        check_input(noisy)
        budget = _budget(minutes, steps, DEFAULT_FIT_MINUTES)
        target = select_device(device)
        start = run.starting_model(method, start_from, preset, offline, target.type)
        settings = _checked(
            run.fit_settings(
                start,
                **budget,
                batch=batch,
                crop=crop,
                sigma=sigma,
                refiner_loss=refiner.value,
                joint_share=joint,
            )
        )
        method_name = type(start.model).__name__.lower()
        checkpoint = output or Path(f"{noisy.stem}.{method_name}.safetensors")
        run.prepare_output(checkpoint, resume, overwrite)
        if denoise is not None:
            from vdenoise.pipeline import check_paths

            check_paths(noisy, denoise, overwrite)
        progress.note(f"{_origin(start, checkpoint, resume)}; training on {describe(target)}")
        if method_name == "stbn":
            progress.note(
                "STBN's one-pixel blind spot assumes noise independent from pixel to pixel; "
                "for camera noise (spatially correlated) F2R adapts better"
            )
        model, report, level = run.fit(noisy, checkpoint, start, settings, target, resume, progress)
        _summary(progress, report, checkpoint)
        if denoise is not None:
            from vdenoise.pipeline import denoise_video
            from vdenoise.progress import ConsoleObserver

            observer = ConsoleObserver(quiet)
            try:
                result = denoise_video(
                    noisy, denoise, model, sigma=level, device=device, overwrite=overwrite,
                    observer=observer,
                )  # fmt: skip
            finally:
                observer.stop()
            observer.summary(result)
    except KeyboardInterrupt as e:
        progress.stop()
        fail(e, interrupted=_interrupted(checkpoint))
    except VdenoiseError as e:
        progress.stop()
        fail(e)


def _interrupted(checkpoint: Path | None) -> str:
    if checkpoint is not None and checkpoint.exists():
        return f"interrupted; checkpoint saved to {checkpoint} (continue with --resume)"
    return "interrupted before the first checkpoint"


def train(
    data: Annotated[Path, typer.Argument(help="Clean videos or frame folders (a folder of them).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Checkpoint to write.")],
    val: Annotated[
        Path | None,
        typer.Option(
            help="Held-out clean sequences: validation PSNR is logged.", rich_help_panel=DATA
        ),
    ] = None,
    noise: Annotated[
        str,
        typer.Option(
            help="Synthetic noise: gaussian:S, gaussian:LO-HI, correlated:S, poisson-gaussian:A,S.",
            rich_help_panel=DATA,
        ),
    ] = "gaussian:5-55",
    val_noise: Annotated[
        str | None,
        typer.Option(
            help="Validation noise (default: the training noise's middle).", rich_help_panel=DATA
        ),
    ] = None,
    val_frames: Annotated[
        int, typer.Option(help="Frames per validation sequence.", rich_help_panel=DATA)
    ] = 10,
    eight_bit: EightBit = 0.0,
    frame_steps: Annotated[
        str,
        typer.Option(
            help="Frame steps of the training clips, one drawn per clip: 1,2,3,4 shows the "
            "networks up to 4x the footage's motion.",
            rich_help_panel=DATA,
        ),
    ] = "1",
    flow_cache: Annotated[
        bool,
        typer.Option(
            help="Compute the optical flow of the training sequences once, on whole clean "
            "frames, and cache it (~/.cache/vdenoise/flows), not every step from noisy crops.",
            rich_help_panel=PERF,
        ),
    ] = False,
    noisy_flows: Annotated[
        bool,
        typer.Option(
            help="With --flow-cache: estimate the cached flows from noisy copies of the "
            "frames (each its own sigma from --noise, 8-bit), as inference estimates them.",
            rich_help_panel=PERF,
        ),
    ] = False,
    all_flows: Annotated[
        bool,
        typer.Option(
            help="Train on the flows of every estimator the model may meet (with "
            "VDENOISE_FLOW=auto: DIS and the torch flow), not only the training device's.",
            rich_help_panel=PERF,
        ),
    ] = False,
    method: Method = None,
    start_from: From = None,
    preset: Preset = None,
    refiner: RefinerOption = Refiner.auto,
    minutes: Minutes = None,
    steps: Steps = None,
    joint: Joint = 0.0,
    batch: Batch = 8,
    crop: Crop = 96,
    lr: Annotated[
        float,
        typer.Option(
            help="Peak learning rate (each phase: 50 steps up to it, then a cosine down).",
            rich_help_panel=BUDGET,
        ),
    ] = 3e-4,
    seed: Annotated[int, typer.Option(help="Random seed.", rich_help_panel=BUDGET)] = 0,
    resume: Resume = False,
    overwrite: Overwrite = False,
    device: Device = "auto",
    offline: Offline = False,
    quiet: Quiet = False,
) -> None:
    """Train weights from clean footage with synthetic noise (how the released weights are made)."""
    progress = TrainingProgress(quiet)
    try:
        from vdenoise.device import describe, select_device
        from vdenoise.noise import NoiseModel
        from vdenoise.training import run
        from vdenoise.training.trainer import TrainSettings

        NoiseModel.parse(noise)
        settings = _checked(
            TrainSettings(
                **_budget(minutes, steps, None),
                batch=batch,
                crop=crop,
                lr=lr,
                noise=noise,
                refiner_loss=refiner.value,
                joint_share=joint,
                eight_bit_share=eight_bit,
                seed=seed,
                flow_cache=flow_cache,
                noisy_flows=noisy_flows,
                all_flows=all_flows,
                frame_steps=_frame_steps(frame_steps),
            )
        )
        run.prepare_output(output, resume, overwrite)
        target = select_device(device)
        start = run.starting_model(method, start_from, preset, offline, target.type)
        progress.note(f"{_origin(start, output, resume)}; training on {describe(target)}")
        _, report = run.train(
            data, output, start, settings, target, val, val_noise, val_frames, resume, progress
        )
        _summary(progress, report, output)
    except KeyboardInterrupt as e:
        progress.stop()
        fail(e, interrupted=_interrupted(output))
    except VdenoiseError as e:
        progress.stop()
        fail(e)


def _origin(start: run.Start, output: Path, resume: bool) -> str:
    return f"resuming the run saved in {output}" if resume else f"starting from {start.source}"
