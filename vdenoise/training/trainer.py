"""The training loop shared by `vdenoise fit` and `vdenoise train`.

Training runs in phases, each with its own parameters, loss and share of the budget (steps or
minutes): STBN has one (NLL); F2R has its two distinct stages, the anchor first, then the
refiner with the anchor frozen, and with spatially adaptive supervision a short phase between
them that trains the local view; optionally (`joint_share`) a last phase fine-tunes both stages
together with stage 2's loss. Each phase uses Adam with a cosine learning rate over its
share and gradient clipping (STBN's recipe: ../shared/reference/methods.md 1.8).
Checkpoints are written periodically, at the end and on Ctrl-C, each with a resume file.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from vdenoise.checkpoint import save_checkpoint
from vdenoise.device import describe
from vdenoise.models.base import VideoDenoiser
from vdenoise.models.f2r import F2R
from vdenoise.models.stbn import STBN
from vdenoise.noise import NoiseModel, to_8bit
from vdenoise.training import losses
from vdenoise.training.data import ClipSampler
from vdenoise.training.flow_cache import FlowCache, effective, leaves, noisy_copies
from vdenoise.training.local_view import LocalView
from vdenoise.training.noise_profile import NoiseProfile, measure
from vdenoise.training.state import load_resume, save_resume

REFINER_LOSSES = ("sure", "r2r", "adaptive", "measured")  # sure: white, of level sigma
# Phases that train on 8-bit clips too (`eight_bit_share`). Not stage 2: SURE is biased where
# noise was clipped (Stein's lemma needs the whole Gaussian). Measured on f2r-small's trained
# anchor, 500 SURE steps at lr 1e-4 from a new refiner, sigma 30 on the validation sequences:
# with half the clips 8-bit the output fell below the posterior it starts from (29.35 against
# 29.54 dB; 28.85 against 29.26 on 8-bit input), with none it rose above it (29.58; 29.39).
CLIPPED = ("anchor", "nll")
# Each phase's rate rises linearly over its first steps: Adam's first steps move every weight
# by about the full rate whatever its gradient, which throws trained weights off (measured,
# f2r-small trained on at lr 1e-4, batch 32: validation 30.74 -> 27.39 dB in 4 steps).
WARMUP_STEPS = 50
FLOW_MARGIN, CACHED_FLOW_MARGIN = 64, 16  # pixels (`TrainSettings.flow_margin`)


@dataclass
class TrainSettings:
    """What a run does. Levels on the 0-255 scale; `sigma` None: the data's own (synthetic
    noise) or estimated from the footage (noisy footage)."""

    steps: int | None = None
    minutes: float | None = None
    batch: int = 8
    crop: int = 96
    # Context on each side of a crop that only the optical flow sees (None: FLOW_MARGIN, or
    # with `flow_cache`, whose flows come from whole frames, CACHED_FLOW_MARGIN: the warp's)
    flow_margin: int | None = None
    frames: int | None = None  # clip length (default: F2R 2k+1, STBN 8)
    lr: float = 3e-4
    noise: str = "none"  # synthetic noise added to the data (none: the data is noisy)
    sigma: float | None = None
    refiner_loss: str = "auto"  # sure | r2r | adaptive | measured | auto (see `refiner`)
    anchor_share: float | None = 0.6  # F2R: the budget's share for stage 1 (None: `fit` picks)
    local_share: float = 0.1  # F2R with adaptive supervision: the local view's share
    joint_share: float = 0.0  # F2R: the share of stage 2's budget then spent on both stages
    eight_bit_share: float = 0.0  # synthetic noise: the share of clips rounded and clipped
    # (stage 1 and STBN only: stage 2's SURE and recorrupted pairs assume unclipped noise)
    checkpoint_seconds: float = 120.0
    seed: int = 0
    # Flows of the training clips computed once on whole frames and cached (`flow_cache`),
    # not estimated from each step's noisy crops
    flow_cache: bool = False
    # ... and estimated, as at inference, from noisy frames: a copy of each sequence with its
    # own sigma drawn from `noise`, rounded to 8 bits (not the clean frames)
    noisy_flows: bool = False
    frame_steps: tuple[int, ...] = (1,)  # clips' frame steps, one drawn per clip (faster motion)
    # F2R: the anchor phase trains only stage 1's modules named so (new ones added to trained
    # weights, e.g. ("centre_view.", "gate.")); empty: all of stage 1
    anchor_only: tuple[str, ...] = ()
    # Flows from every estimator the model may meet at inference (`leaves`: with
    # VDENOISE_FLOW=auto, DIS and the torch flow), cached, or live one a step in turn; off:
    # only the one the training device uses (the torch flow costs 11x DIS on a CPU)
    all_flows: bool = False
    # F2R's SURE: each window's loss weighs sigma^-p, p this (0: the plain mean, where the
    # noisiest windows steer most)
    sigma_power: float = 0.0
    # F2R's stage-2 gate (`SpatialRefiner.gate_rows`) learns at this many times the rate: Adam
    # moves a weight by about the rate a step, too little for a gate to open in a fine-tune
    gate_rate: float = 1.0

    def refiner(self) -> str:
        """F2R's stage-2 loss. `auto`: on noisy footage `measured` (SURE for Gaussian noise of
        the covariance measured against the anchor); on synthetic noise SURE for AWGN,
        spatially adaptive supervision for the rest."""
        if self.refiner_loss != "auto":
            return self.refiner_loss
        kind = NoiseModel.parse(self.noise).kind
        if kind == "none":
            return "measured"
        return "sure" if kind == "gaussian" else "adaptive"


@dataclass
class Phase:
    name: str
    share: float
    steps: int = 0  # done
    seconds: float = 0.0  # spent


@dataclass
class TrainReport:
    steps: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    losses: dict[str, float] = field(default_factory=dict)  # last smoothed loss per phase
    validation: list[dict[str, Any]] = field(default_factory=list)


class TrainObserver(Protocol):
    def note(self, message: str) -> None: ...
    def start(self, total: float, unit: str, done: float) -> None: ...
    def update(self, done: float, phase: str, loss: float) -> None: ...
    def stop(self) -> None: ...


class SilentObserver:
    def note(self, message: str) -> None:
        pass

    def start(self, total: float, unit: str, done: float) -> None:
        pass

    def update(self, done: float, phase: str, loss: float) -> None:
        pass

    def stop(self) -> None:
        pass


def phases_for(model: VideoDenoiser, settings: TrainSettings) -> list[Phase]:
    if not isinstance(model, F2R):
        return [Phase("nll", 1.0)]
    anchor = settings.anchor_share
    assert anchor is not None, "a fit picks the anchor's share before training"
    local = settings.local_share if settings.refiner() == "adaptive" else 0.0
    joint = (1 - anchor - local) * settings.joint_share
    if joint and local:  # its target is the anchor itself where flat
        raise ValueError("joint fine-tuning needs SURE or recorrupted pairs, not adaptive")
    phases = [Phase("anchor", anchor)]
    if local:
        phases.append(Phase("local", local))
    phases.append(Phase("refine", 1 - anchor - local - joint))
    if joint:
        phases.append(Phase("joint", joint))
    return phases


class Trainer:
    """Trains `model` on clips from `sampler`, writing checkpoints to `output`."""

    def __init__(
        self,
        model: VideoDenoiser,
        sampler: ClipSampler,
        settings: TrainSettings,
        output: Path,
        device: torch.device,
        describe: dict[str, Any] | None = None,
        validate: Callable[[VideoDenoiser], dict[str, Any]] | None = None,
        validate_seconds: float = 300.0,
    ) -> None:
        if settings.steps is None and settings.minutes is None:
            raise ValueError("a budget (steps or minutes) is needed")
        if settings.refiner() not in REFINER_LOSSES:
            raise ValueError(f"unknown refiner loss {settings.refiner_loss!r}")
        self.model = model.to(device)
        self.sampler = sampler
        self.settings = settings
        # The sampler cuts crop + 2 margins where the frames allow (`clip_size`); less margin
        # where they are smaller.
        self.margin = max(0, (sampler.crop - settings.crop) // 2)
        self.output = Path(output)
        self.device = device
        self.describe = describe or {}
        self.validate = validate
        self.validate_seconds = validate_seconds
        self.noise = NoiseModel.parse(settings.noise)
        self.phases = phases_for(model, settings)
        adaptive = isinstance(model, F2R) and settings.refiner() == "adaptive"
        self.local = LocalView().to(device) if adaptive else None
        self.generator = torch.Generator(device).manual_seed(settings.seed)
        self.autocast_dtype = (
            torch.bfloat16
            if device.type == "cuda" and torch.cuda.is_bf16_supported()
            else torch.float32
        )
        self.profile: NoiseProfile | None = None  # the clip's noise, measured for stage 2
        self.report = TrainReport()
        self.optimizer: torch.optim.Optimizer | None = None
        self.phase_index = 0
        self.pairs: list[tuple[int, int]] = []  # the flows sampled with each clip (`_flows`)
        # The estimators whose flows training uses (`all_flows`); without the cache, each
        # step's come live from the noisy crops, as at inference, from one of them in turn.
        aligns = isinstance(model, STBN) or (isinstance(model, F2R) and model.config.align)
        flow = model.flow if aligns else None  # type: ignore[union-attr]
        self.estimators = [] if flow is None else leaves(flow)
        if not settings.all_flows:
            self.estimators = [effective(flow, device)] if flow is not None else []
        self.live_flows = [] if settings.flow_cache else self.estimators

    # -- budget ---------------------------------------------------------------------------------
    def _progress(self, phase: Phase) -> float:
        """How much of the phase's share of the budget is used, 0..1."""
        s = self.settings
        if s.steps is not None:  # whole steps, rounded so that the phases add up to the budget
            i = self.phases.index(phase)
            before = sum(p.share for p in self.phases[:i])
            budget = round(s.steps * (before + phase.share)) - round(s.steps * before)
            return phase.steps / budget if budget else 1.0
        assert s.minutes is not None
        budget = 60.0 * s.minutes * phase.share
        return phase.seconds / budget if budget else 1.0

    def _done_total(self) -> tuple[float, float, str]:
        if self.settings.steps is not None:
            return sum(p.steps for p in self.phases), self.settings.steps, "steps"
        assert self.settings.minutes is not None
        return sum(p.seconds for p in self.phases), 60.0 * self.settings.minutes, "s"

    # -- one step -------------------------------------------------------------------------------
    def _parameters(self, phase: Phase) -> list[nn.Parameter]:
        if phase.name == "anchor" and self.settings.anchor_only:
            only = self.settings.anchor_only
            named = self.model.estimator.named_parameters()  # type: ignore[union-attr]
            return [p for name, p in named if name.startswith(only)]
        if phase.name == "anchor":
            return list(self.model.estimator.parameters())  # type: ignore[union-attr]
        if phase.name == "local":
            assert self.local is not None
            return list(self.local.parameters())
        if phase.name == "refine":
            return list(self.model.refiner.parameters())  # type: ignore[union-attr]
        return list(self.model.parameters())

    def _batch(self, phase: Phase) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        clean, flows = self.sampler.sample_with_flows(self.settings.batch, self.pairs)
        noisy, sigma = self.noise.apply(clean, self.generator)
        if self.settings.eight_bit_share and self.noise.kind != "none" and phase.name in CLIPPED:
            share = torch.rand(len(noisy), generator=self.generator, device=noisy.device)
            chosen = (share < self.settings.eight_bit_share).view(-1, 1, 1, 1, 1)
            noisy = torch.where(chosen, to_8bit(noisy), noisy)
        if self.settings.sigma is not None:
            sigma = torch.full_like(sigma, self.settings.sigma / 255.0)
        return noisy, sigma, flows

    def _loss(
        self, phase: Phase, noisy: torch.Tensor, sigma: torch.Tensor, flows: torch.Tensor | None
    ) -> torch.Tensor:
        model = self.model
        if phase.name == "nll":
            return losses.stbn_nll(model, noisy, sigma, self.margin, flows)  # type: ignore[arg-type]
        assert isinstance(model, F2R)
        if phase.name == "anchor":
            return losses.f2r_anchor_loss(model, noisy, sigma, self.margin, flows)
        joint = phase.name == "joint"
        batch = losses.refiner_batch(model, noisy, sigma, joint, self.margin, flows)
        if phase.name == "local":
            assert self.local is not None
            return losses.local_view_loss(self.local, batch)
        kind = self.settings.refiner()
        if kind == "adaptive":
            assert self.local is not None
            return losses.f2r_adaptive(model, batch, self.local)
        if kind == "r2r":
            return losses.f2r_r2r(model, batch, self.profile)
        profile = self.profile if kind == "measured" else None
        return losses.f2r_sure(model, batch, profile, self.settings.sigma_power)

    def _measure_noise(self, observer: TrainObserver, stage: str) -> None:
        """Before each stage on noisy footage: the noise, read against the anchor as it is
        then (before stage 2: trained and frozen), so that both stages know how the noise
        varies with brightness; done again on resume."""
        noisy_footage = self.noise.kind == "none"
        if not (noisy_footage and self.settings.refiner() in ("measured", "r2r")):
            return
        assert isinstance(self.model, F2R) and self.settings.sigma is not None
        longest = max(self.sampler.sequences, key=len)
        if longest.shape[0] <= 2 * self.model.config.neighbours:
            observer.note(f"{stage}: too few frames to measure the noise; taken as white")
            return
        self.profile = measure(self.model, longest, self.settings.sigma)
        self.model.relative_variance = self.profile.relative_variance
        observer.note(f"{stage}: noise measured against the anchor: {self.profile.describe()}")

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    @contextlib.contextmanager
    def _live_flow(self, turn: int) -> Iterator[None]:
        """The flow estimator of step `turn`, where the model may meet several
        (`live_flows`)."""
        if len(self.live_flows) < 2:
            yield
            return
        model = self.model
        kept = model.flow  # type: ignore[union-attr]
        model.flow = self.live_flows[turn % len(self.live_flows)]  # type: ignore[union-attr]
        try:
            yield
        finally:
            model.flow = kept  # type: ignore[union-attr]

    def _new_optimizer(self, phase: Phase) -> torch.optim.Optimizer:
        return torch.optim.Adam(self._parameters(phase), lr=self.settings.lr)

    def _step(self, phase: Phase) -> float:
        assert self.optimizer is not None
        warm = min(1.0, (phase.steps + 1) / WARMUP_STEPS)
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, self._progress(phase))))
        lr = self.settings.lr * warm * cosine
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        noisy, sigma, flows = self._batch(phase)
        with self._autocast(), self._live_flow(self.steps):
            loss = self._loss(phase, noisy, sigma, flows)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the {phase.name} loss is {loss.item()}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self._parameters(phase), 1.0)
        with self._faster_gate():
            self.optimizer.step()
        return loss.item()

    @contextlib.contextmanager
    def _faster_gate(self) -> Iterator[None]:
        """The optimiser's step on F2R's gate rows scaled by `gate_rate` (Adam's state as it
        is: the same as a rate of their own)."""
        model, rate = self.model, self.settings.gate_rate
        rows = model.refiner.gate_rows() if isinstance(model, F2R) and rate != 1 else []
        before = [weight[part].clone() for weight, part in rows]
        yield
        with torch.no_grad():
            for (weight, part), old in zip(rows, before, strict=True):
                weight[part] = old + rate * (weight[part] - old)

    # -- the loop -------------------------------------------------------------------------------
    def run(self, observer: TrainObserver | None = None) -> TrainReport:
        """Train to the end of the budget (or Ctrl-C, after which a checkpoint is saved and
        KeyboardInterrupt raised again)."""
        observer = observer or SilentObserver()
        self._flows(observer)
        done, total, unit = self._done_total()
        observer.start(total, unit, done)
        last_save = last_validation = time.monotonic()
        try:
            for phase in self._remaining():
                if phase.name in ("anchor", "refine") and phase.share > 0:
                    self._measure_noise(observer, phase.name)
                self.model.train()
                smoothed: float | None = None
                while self._progress(phase) < 1.0:
                    began = time.monotonic()
                    loss = self._step(phase)
                    phase.steps += 1
                    phase.seconds += time.monotonic() - began
                    smoothed = loss if smoothed is None else 0.95 * smoothed + 0.05 * loss
                    self.report.losses[phase.name] = smoothed
                    observer.update(self._done_total()[0], phase.name, smoothed)
                    now = time.monotonic()
                    if now - last_save > self.settings.checkpoint_seconds:
                        self.save()
                        last_save = now
                    if self.validate and now - last_validation > self.validate_seconds:
                        self._validate(observer)
                        last_validation = time.monotonic()
            if self.validate:
                self._validate(observer)
        except KeyboardInterrupt:
            self.report.interrupted = True
            self.save()
            raise
        finally:
            observer.stop()
        self.save()
        return self.report

    def _flows(self, observer: TrainObserver) -> None:
        """With `flow_cache`, the flows of the training sequences, computed once (or read from
        the cache) by each of `estimators`, and which of them each clip's loss needs."""
        model, sampler = self.model, self.sampler
        if not self.settings.flow_cache or not isinstance(model, F2R | STBN):
            return
        if isinstance(model, F2R) and not model.config.align:
            return
        if not sampler.flow_caches:
            began = time.monotonic()
            sources = sampler.sequences
            if self.settings.noisy_flows:
                noise = NoiseModel.parse(self.settings.noise)
                sources = noisy_copies(sources, noise, self.settings.seed)
            sampler.flow_caches = [
                FlowCache.build(sources, estimator).to(self.device) for estimator in self.estimators
            ]
            seconds = time.monotonic() - began
            observer.note(f"optical flow of the training sequences ready in {seconds:.0f} s")
        self.pairs = losses.flow_pairs(model, sampler.frames)

    def _remaining(self) -> Iterator[Phase]:
        while self.phase_index < len(self.phases):
            phase = self.phases[self.phase_index]
            if self.optimizer is None:
                self.optimizer = self._new_optimizer(phase)
            yield phase
            self.phase_index += 1
            self.optimizer = None

    def _validate(self, observer: TrainObserver) -> None:
        assert self.validate is not None
        self.model.eval()
        result = {"step": self.steps, **self.validate(self.model)}
        self.report.validation.append(result)
        observer.note("validation " + ", ".join(f"{k} {v}" for k, v in result.items()))
        self.model.train()

    # -- checkpoints ----------------------------------------------------------------------------
    @property
    def steps(self) -> int:
        return sum(p.steps for p in self.phases)

    @property
    def resume_path(self) -> Path:
        return resume_path(self.output)

    def training_record(self) -> dict[str, Any]:
        self.report.steps = self.steps
        self.report.seconds = sum(p.seconds for p in self.phases)
        return {
            **self.describe,
            "settings": asdict(self.settings),
            "refiner_loss": self.settings.refiner() if isinstance(self.model, F2R) else None,
            "noise_profile": self.profile.as_dict() if self.profile else None,
            "phases": [asdict(p) for p in self.phases],
            "device": str(self.device),
            "hardware": describe(self.device),
            "precision": str(self.autocast_dtype).removeprefix("torch."),
            "losses": self.report.losses,
            "validation": self.report.validation,
        }

    def save(self) -> None:
        """The model checkpoint (what `denoise --weights` loads), then the resume file."""
        self.model.eval()
        save_checkpoint(self.model, self.output, self.training_record())
        save_resume(self, self.resume_path)

    def resume(self) -> None:
        """Continue from the resume file next to the output checkpoint."""
        load_resume(self, self.resume_path)


def clip_size(settings: TrainSettings) -> int:
    """The side of the clips to sample: the crop the networks train on plus the flow's
    margins (losses.py says why)."""
    margin = settings.flow_margin
    if margin is None:
        margin = CACHED_FLOW_MARGIN if settings.flow_cache else FLOW_MARGIN
    return settings.crop + 2 * margin


def resume_path(output: Path) -> Path:
    """Where the optimiser state of a run writing `output` is kept."""
    name = Path(output).name.removesuffix(".safetensors")
    return Path(output).with_name(name + ".resume.safetensors")
