"""`fit` (adapt a model to one noisy clip) and `train` (release weights from clean footage):
the same trainer, fed differently."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vdenoise import models
from vdenoise.checkpoint import load_checkpoint, load_model, read_metadata
from vdenoise.errors import UsageError
from vdenoise.models.base import VideoDenoiser
from vdenoise.models.f2r import F2R
from vdenoise.noise import NoiseModel, estimate_sigma
from vdenoise.training.data import (
    ClipSampler,
    find_sequences,
    load_sequences,
    motion_sequences,
    read_sequence,
)
from vdenoise.training.evaluate import validate
from vdenoise.training.noise_profile import NoiseProfile, measure, measure_clip
from vdenoise.training.trainer import (
    Trainer,
    TrainObserver,
    TrainReport,
    TrainSettings,
    clip_size,
)
from vdenoise.weights import default_release

FIT_MEMORY = 2 << 30  # bytes of decoded frames a fit keeps (uint8): ~1,400 frames at 720p
MIN_FIT_SIZE = 32  # pixels: smaller frames cannot hold a training crop and its context
STBN_CLIP = 8  # frames per training clip (the official code's --train_length)
# A fit fine-tunes trained weights on one clip, at a fine-tuning rate. F2R's anchor was trained
# on white noise: spatially correlated noise it takes for texture and keeps, so a fit retrains
# it then; on white noise (signal-dependent or not) it stays, and only stage 2 is fitted.
# 5-minute fits of the released f2r-small (benchmarks/fit_variants.py, the start as
# fit_gain.py runs it). Correlated noise: derf-tractor, start 23.19 dB, both stages at lr 1e-3
# 25.56, 1e-4 25.89, stage 2 only 25.49; davis-bmx-trees, start 22.80, both stages at 1e-3
# 24.03, 1e-4 24.45, stage 2 only 22.37. Poisson-Gaussian noise on derf-tractor, start 30.69:
# both stages at 1e-3 28.28, 1e-4 29.09 (29.88 with the noise level function in the anchor's
# NLL), stage 2 only 30.57 (30.69 with the noise level function). STBN keeps the rate
# measured for it (1e-3; benchmarks/fit_variants.py, 2026-11-22).
FIT_DEFAULTS: dict[str, dict[str, float | None]] = {
    "f2r": {"lr": 1e-4, "anchor_share": None},  # None: from the noise, `ANCHOR_SHARE`
    "stbn": {"lr": 1e-3},
}
ANCHOR_SHARE = {"white": 0.0, "correlated": 0.6}  # a fit's share of its budget for stage 1


def fit_settings(start: Start, **settings: Any) -> TrainSettings:
    """A fit's settings: its method's defaults (a new model trains every stage at the
    training rate), then `settings`."""
    if not start.trained:
        return TrainSettings(**settings)
    method = "f2r" if isinstance(start.model, F2R) else "stbn"
    return TrainSettings(**{**FIT_DEFAULTS[method], **settings})


@dataclass
class Start:
    model: VideoDenoiser
    source: str  # where the starting weights came from
    trained: bool = True  # False: a new model


def starting_model(
    method: str | None,
    start_from: str | None,
    preset: str | None,
    offline: bool = False,
    device_type: str = "cpu",
) -> Start:
    """Released (or given) weights to start from; a fresh model of `preset` when there are
    none, or when a preset is asked for explicitly."""
    if method is not None and method not in models.METHODS:
        raise UsageError(f"unknown method {method!r}", f"choose from {', '.join(models.METHODS)}")
    method = method or (None if start_from else models.METHODS[0])
    if start_from is None and (preset is not None or default_release(method, device_type) is None):
        assert method is not None
        preset = preset or next(iter(models.ARCHITECTURES[method][2]))
        return Start(models.build(method, preset), f"a new {method} {preset} model", False)
    model, source = load_model(method, start_from, offline, device_type)
    return Start(model, source)


def clip_frames(model: VideoDenoiser, settings: TrainSettings) -> int:
    if settings.frames:
        return settings.frames
    if isinstance(model, F2R):
        return 2 * model.config.neighbours + 1
    return STBN_CLIP


def prepare_output(output: Path, resume: bool, overwrite: bool) -> None:
    if not output.parent.is_dir():
        raise UsageError(f"the folder of {output} does not exist")
    if output.suffix != ".safetensors":
        raise UsageError(f"{output.name}: checkpoints are .safetensors files")
    if output.exists() and not (resume or overwrite):
        raise UsageError(
            f"{output} exists", "continue that run with --resume, or replace it with --overwrite"
        )


def fit(
    noisy: Path,
    output: Path,
    start: Start,
    settings: TrainSettings,
    device: torch.device,
    resume: bool = False,
    observer: TrainObserver | None = None,
) -> tuple[VideoDenoiser, TrainReport, float]:
    """Adapt `start.model` to the noise of one clip; returns the model, the report and the
    noise level (0-255) it was trained and should be run with."""
    first = read_sequence(noisy, max_frames=1)
    if min(first.shape[-2:]) < MIN_FIT_SIZE:
        height, width = first.shape[-2:]
        raise UsageError(
            f"{noisy.name} is {width}x{height}: too small to learn its noise from",
            f"fit needs frames of at least {MIN_FIT_SIZE}x{MIN_FIT_SIZE} pixels",
        )
    max_frames = max(2, FIT_MEMORY // first.numel())
    sequences = load_sequences(noisy, max_frames, device)
    model = load_checkpoint(output) if resume else start.model
    level, profile = measure_noise(model, sequences[0], settings.sigma)
    if settings.sigma is None:
        settings.sigma = round(level, 2)
        if observer:
            observer.note(f"noise level estimated: {settings.sigma:g} (0-255); set it with --sigma")
    if settings.anchor_share is None:
        if resume:  # as the run began (the resume file holds its phases)
            settings.anchor_share = read_metadata(output)["training"]["settings"]["anchor_share"]
        else:
            white = profile is None or profile.white
            settings.anchor_share = ANCHOR_SHARE["white" if white else "correlated"]
            if observer and not white:
                observer.note("the noise is spatially correlated: stage 1 is fitted too")
    describe = {
        "kind": "fit",
        "clip": noisy.name,
        "frames": int(sequences[0].shape[0]),
        "started_from": start.source,
        "sigma": settings.sigma,
    }
    trainer = _trainer(model, sequences, settings, output, device, describe)
    if resume:
        trainer.resume()
    report = trainer.run(observer)
    return trainer.model, report, settings.sigma


def measure_noise(
    model: VideoDenoiser, frames: torch.Tensor, sigma: float | None = None
) -> tuple[float, NoiseProfile | None]:
    """The noise level (0-255) of uint8 frames [N, 3, H, W], `sigma` when given, and for F2R
    the noise's profile read against its anchor (whose level is the marginal std, also for
    correlated noise; found from a patch-based first guess)."""
    guess = sigma if sigma is not None else estimate_sigma(list(frames[:5].float().cpu() / 255))
    if not isinstance(model, F2R) or frames.shape[0] <= 2 * model.config.neighbours:
        return guess, None
    if sigma is not None:
        return sigma, measure(model, frames, sigma)
    profile = measure_clip(model, frames, guess)
    return profile.level, profile


def train(
    data: Path,
    output: Path,
    start: Start,
    settings: TrainSettings,
    device: torch.device,
    val: Path | None = None,
    val_noise: str | None = None,
    val_frames: int = 10,
    resume: bool = False,
    observer: TrainObserver | None = None,
) -> tuple[VideoDenoiser, TrainReport]:
    """Train on clean footage with synthetic noise, validating on held-out sequences."""
    if NoiseModel.parse(settings.noise).kind == "none":
        raise UsageError("train adds noise to clean footage: give --noise (e.g. gaussian:5-55)")
    sources = find_sequences(data)
    sequences = [read_sequence(p).to(device) for p in sources]
    model = load_checkpoint(output) if resume else start.model
    describe = {
        "kind": "train",
        "data": [p.name for p in sources],
        "started_from": start.source,
    }
    check = None
    if val is not None:
        held_out = motion_sequences(find_sequences(val), val_frames)  # 1x, 2x and 3x motion
        noise = NoiseModel.parse(val_noise or default_val_noise(settings.noise))
        describe["validation_noise"] = str(noise)
        describe["validation_data"] = [name for name, _ in held_out]

        def check(m: VideoDenoiser) -> dict[str, Any]:
            return validate(m, held_out, noise, device)

    trainer = _trainer(model, sequences, settings, output, device, describe, check)
    if resume:
        trainer.resume()
    return trainer.model, trainer.run(observer)


def default_val_noise(noise: str) -> str:
    """Validation at one level: the training level, or the middle of its range."""
    model = NoiseModel.parse(noise)
    if model.kind in ("gaussian", "correlated") and model.low != model.high:
        return f"{model.kind}:{(model.low + model.high) / 2:g}"
    return noise


def _trainer(
    model: VideoDenoiser,
    sequences: list[torch.Tensor],
    settings: TrainSettings,
    output: Path,
    device: torch.device,
    describe: dict[str, Any],
    check: Any = None,
) -> Trainer:
    sampler = ClipSampler(
        sequences,
        clip_frames(model, settings),
        clip_size(settings),
        seed=settings.seed,
        steps=settings.frame_steps,
    )
    return Trainer(model, sampler, settings, output, device, describe, check)
