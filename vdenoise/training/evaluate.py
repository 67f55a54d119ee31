"""Measuring a model on held-out sequences: seeded synthetic noise, PSNR against the clean."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vdenoise.bench.metrics import psnr
from vdenoise.engine import Engine, reflect_index
from vdenoise.models.base import VideoDenoiser
from vdenoise.models.f2r import F2R
from vdenoise.models.stbn import STBN
from vdenoise.noise import NoiseModel, to_8bit


def corrupt(
    clean: torch.Tensor, noise: NoiseModel, seed: int, eight_bit: bool = False
) -> tuple[torch.Tensor, float]:
    """Seeded noisy version of frames [N, 3, H, W] in [0, 1], and its noise std (0-255);
    `eight_bit`: then rounded and clipped as an 8-bit file holds it (the same noise)."""
    generator = torch.Generator().manual_seed(seed)
    noisy, sigma = noise.apply(clean[None], generator)
    return (to_8bit(noisy[0]) if eight_bit else noisy[0]), 255.0 * float(sigma[0])


def denoise_frames(
    model: VideoDenoiser, noisy: torch.Tensor, sigma: float, device: torch.device
) -> torch.Tensor:
    """Frames [N, 3, H, W] through the engine (temporal reflection at the ends), on `device`."""
    engine = Engine(model, device, tile=0)
    out = [f.cpu() for f in engine.run((f.to(device) for f in noisy), sigma / 255.0)]
    return torch.stack(out)


def mean_psnr(estimate: torch.Tensor, clean: torch.Tensor) -> float:
    """Per-frame PSNR averaged over frames (the papers' protocol)."""
    return sum(psnr(e, c) for e, c in zip(estimate, clean, strict=True)) / len(clean)


@torch.inference_mode()
def stage_psnr(
    model: F2R | STBN, noisy: torch.Tensor, sigma: float, clean: torch.Tensor
) -> dict[str, float]:
    """A model's stages measured apart on frames [N, 3, H, W]: mean PSNR of the noisy frames,
    the first stage (F2R's anchor, STBN's blind mean), the posterior mean (F2R's stage 2
    starts from it) and the output. Windows as the engine cuts them, reflected at the ends."""
    before, after, n = model.frames_before, model.frames_after, len(noisy)
    level = torch.tensor([sigma / 255.0])
    results: dict[str, list[torch.Tensor]] = {"first": [], "posterior": [], "output": []}
    for start in range(0, n, model.frames_per_call):
        count = min(model.frames_per_call, n - start)
        order = [reflect_index(i, n) for i in range(start - before, start + count + after)]
        for name, frames in zip(results, model.stages(noisy[order][None], level), strict=True):
            if frames is not None:
                results[name].extend(frames[0].clamp(0, 1))
    scores = {"noisy": mean_psnr(noisy.clamp(0, 1), clean)}
    return scores | {k: mean_psnr(torch.stack(v), clean) for k, v in results.items() if v}


def validate(
    model: VideoDenoiser,
    sequences: Sequence[tuple[str, torch.Tensor]],
    noise: NoiseModel,
    device: torch.device,
) -> dict[str, float]:
    """Mean PSNR over the sequences (clean uint8 [N, 3, H, W]), with noise seeded by index:
    `psnr` over those at the footage's own motion, `psnr xN` over those named ` xN` (every
    N-th frame kept, `motion_sequences`), then each sequence's."""
    was_training = model.training
    results = {}
    for index, (name, frames) in enumerate(sequences):
        clean = frames.float() / 255.0
        noisy, sigma = corrupt(clean, noise, seed=index)
        results[name] = mean_psnr(denoise_frames(model, noisy, sigma, device), clean)
    model.train(was_training)
    groups: dict[str, list[float]] = {}
    for name, value in results.items():
        step = name.rsplit(" x", 1)[1] if " x" in name else ""
        groups.setdefault(f"psnr x{step}" if step else "psnr", []).append(value)
    means = {k: round(sum(v) / len(v), 3) for k, v in sorted(groups.items())}
    return means | {k: round(v, 3) for k, v in results.items()}
