"""The test protocol of STBN and FloRNN (../shared/reference/methods.md 1.9), run on any method.

Per sequence (first 85 frames): noise drawn from a generator seeded with the same seed for
every sequence (STBN: `torch.manual_seed(0)` before each), added without clipping (or, with
`eight_bit`, the same noise then rounded and clipped, as users' 8-bit files hold it); every
method gets the same noisy frames and the true noise level; PSNR and SSIM per frame on the
output clipped to [0, 1], averaged over frames, then over sequences. Beside them, flicker
(`vdenoise.bench.flicker`): the error's frame-to-frame change along the clean frames' motion.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from vdenoise.bench.datasets import MAX_FRAMES, Dataset
from vdenoise.bench.flicker import Motion, clean_motion, flicker
from vdenoise.bench.metrics import psnr, ssim
from vdenoise.engine import Engine
from vdenoise.models.base import VideoDenoiser
from vdenoise.noise import NoiseModel
from vdenoise.training.evaluate import corrupt

SIGMAS = (10, 20, 30, 40, 50)
LEVELLED = ("gaussian", "correlated")  # noise kinds run at each --sigma


@dataclass(frozen=True)
class Condition:
    """One noise setting of the benchmark."""

    noise: NoiseModel
    eight_bit: bool = False  # the noisy frames rounded and clipped to 8 bits

    @property
    def label(self) -> str:
        label = f"sigma {self.noise.low:g}" if self.noise.kind == "gaussian" else str(self.noise)
        return label + (", 8-bit" if self.eight_bit else "")

    @property
    def sigma(self) -> float | None:
        """The nominal level (0-255) for tables and plots; None where it varies per clip."""
        return self.noise.low if self.noise.kind in LEVELLED else None


def conditions(
    sigmas: Iterable[float], noise: str = "gaussian", eight_bit: bool = False
) -> list[Condition]:
    """AWGN (or box-correlated noise) at each sigma, or one condition for a full noise spec."""
    if noise in LEVELLED:
        return [Condition(NoiseModel.parse(f"{noise}:{s:g}"), eight_bit) for s in sigmas]
    return [Condition(NoiseModel.parse(noise), eight_bit)]


class Method(Protocol):
    name: str

    def __call__(self, noisy: torch.Tensor, sigma: float) -> torch.Tensor: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass
class Timer:
    frames: int = 0
    seconds: float = 0.0

    @property
    def fps(self) -> float | None:
        return self.frames / self.seconds if self.seconds else None


@dataclass
class ModelMethod:
    """One of our checkpoints, run through the engine as `vdenoise denoise` runs it."""

    name: str
    model: VideoDenoiser
    device: torch.device
    dtype: torch.dtype
    info: dict[str, Any] = field(default_factory=dict)  # weights, sha256, ...
    timer: Timer = field(default_factory=Timer)

    def __call__(self, noisy: torch.Tensor, sigma: float) -> torch.Tensor:
        engine = Engine(self.model, self.device, self.dtype)
        _synchronize(self.device)
        began = time.perf_counter()
        out = [f.float().cpu() for f in engine.run((f.to(self.device) for f in noisy), sigma / 255)]
        _synchronize(self.device)
        self.timer.seconds += time.perf_counter() - began
        self.timer.frames += len(out)
        return torch.stack(out)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "model", **self.info, "model_fps": self.timer.fps}


@dataclass
class BaselineMethod:
    """A classical denoiser (`vdenoise.bench.baselines`)."""

    name: str
    run: Callable[[torch.Tensor, float], torch.Tensor]
    description: str
    timer: Timer = field(default_factory=Timer)

    def __call__(self, noisy: torch.Tensor, sigma: float) -> torch.Tensor:
        began = time.perf_counter()
        out = self.run(noisy, sigma)
        self.timer.seconds += time.perf_counter() - began
        self.timer.frames += len(out)
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "baseline",
            "description": self.description,
            "fps": self.timer.fps,
        }


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class BenchObserver(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self, what: str) -> None: ...


@dataclass
class Score:
    method: str
    condition: str
    sequence: str
    sigma: float  # the level the methods were given (0-255)
    psnr: float
    ssim: float
    frames: int
    flicker: float | None = None  # 0-255; None for a single frame


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def score(
    output: torch.Tensor, clean: torch.Tensor, motion: Motion | None = None
) -> tuple[float, float, float | None]:
    """Mean per-frame PSNR and SSIM, and the flicker along `motion` (None without it)."""
    psnrs = [psnr(o, c) for o, c in zip(output, clean, strict=True)]
    ssims = [ssim(o, c) for o, c in zip(output, clean, strict=True)]
    return sum(psnrs) / len(psnrs), sum(ssims) / len(ssims), flicker(output, clean, motion)


def run_protocol(
    dataset: Dataset,
    methods: list[Method],
    settings: list[Condition],
    frames: int = MAX_FRAMES,
    seed: int = 0,
    observer: BenchObserver | None = None,
) -> list[Score]:
    """Every method on every sequence under every condition."""
    if observer:
        observer.start(len(dataset.sequences) * len(settings) * len(methods))
    scores = []
    for sequence in dataset.sequences:
        clean = sequence.frames(frames).float() / 255.0
        motion = clean_motion(clean)  # measured once, for every method and condition
        for condition in settings:
            noisy, sigma = corrupt(clean, condition.noise, seed, condition.eight_bit)
            for method in methods:
                output = method(noisy, sigma)
                value_psnr, value_ssim, value_flicker = score(output, clean, motion)
                level = round(sigma, 4)
                result = Score(method.name, condition.label, sequence.name, level, value_psnr,
                               value_ssim, len(clean), value_flicker)  # fmt: skip
                scores.append(result)
                if observer:
                    observer.advance(f"{sequence.name}, {condition.label}, {method.name}")
    return scores


def averages(scores: list[Score]) -> list[dict[str, Any]]:
    """Mean over sequences of the per-sequence means, per method and condition."""
    groups: dict[tuple[str, str], list[Score]] = {}
    for s in scores:
        groups.setdefault((s.method, s.condition), []).append(s)
    return [
        {
            "method": method,
            "condition": condition,
            "psnr": sum(s.psnr for s in group) / len(group),
            "ssim": sum(s.ssim for s in group) / len(group),
            "flicker": _mean([s.flicker for s in group]),
            "sequences": len(group),
        }
        for (method, condition), group in groups.items()
    ]


def peak_memory(device: torch.device) -> dict[str, int | None]:
    """Peak resident host memory of this process and peak GPU memory allocated, bytes."""
    host = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes
    gpu = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return {"peak_host_bytes": host, "peak_gpu_bytes": gpu}
