"""Measuring a model on held-out sequences: seeded synthetic noise, PSNR against the clean."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vdenoise.bench.metrics import psnr
from vdenoise.engine import Engine
from vdenoise.models.base import VideoDenoiser
from vdenoise.noise import NoiseModel


def corrupt(clean: torch.Tensor, noise: NoiseModel, seed: int) -> tuple[torch.Tensor, float]:
    """Seeded noisy version of frames [N, 3, H, W] in [0, 1], and its noise std (0-255)."""
    generator = torch.Generator().manual_seed(seed)
    noisy, sigma = noise.apply(clean[None], generator)
    return noisy[0], 255.0 * float(sigma[0])


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


def validate(
    model: VideoDenoiser,
    sequences: Sequence[tuple[str, torch.Tensor]],
    noise: NoiseModel,
    device: torch.device,
) -> dict[str, float]:
    """Mean PSNR over the sequences (clean uint8 [N, 3, H, W]), with noise seeded by index."""
    was_training = model.training
    results = {}
    for index, (name, frames) in enumerate(sequences):
        clean = frames.float() / 255.0
        noisy, sigma = corrupt(clean, noise, seed=index)
        results[name] = mean_psnr(denoise_frames(model, noisy, sigma, device), clean)
    model.train(was_training)
    return {"psnr": round(sum(results.values()) / len(results), 3)} | {
        k: round(v, 3) for k, v in results.items()
    }
