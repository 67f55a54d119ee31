"""Synthetic frames with known motion, as tensors (no video files)."""

from __future__ import annotations

import torch


def moving_texture(frames: int = 9, size: int = 96, step: int = 5, sigma: float = 0.1):
    """A random texture (5-pixel grain, doubled contrast) sliding `step` pixels per frame to the
    right, clean and with seeded Gaussian noise: [1, frames, 3, size, size] each."""
    g = torch.Generator().manual_seed(0)
    wide = torch.rand(1, 3, size + 8, size + step * frames + 8, generator=g)
    wide = torch.nn.functional.avg_pool2d(wide, 5, 1)[..., 2 : 2 + size, :]
    wide = ((wide - 0.5) * 2 + 0.5).clamp(0, 1)
    clean = torch.stack(
        [wide[0, :, :, step * (frames - t) : step * (frames - t) + size] for t in range(frames)]
    )[None]
    noisy = clean + sigma * torch.randn(clean.shape, generator=g)
    return clean, noisy


def shifted_texture(moves: list[tuple[int, int]], size: int = 256, sigma: float = 0.1):
    """A texture with detail at every scale from 1 to 32 pixels (as natural images have), and
    copies of it shifted by each (dx, dy) in `moves`, with seeded Gaussian noise: (targets,
    sources), [len(moves), 3, size, size] each; the true flow of pair i is -moves[i]."""
    g = torch.Generator().manual_seed(0)
    pad = max(max(abs(dx), abs(dy)) for dx, dy in moves)
    n = size + 2 * pad
    wide = torch.zeros(1, 3, n, n)
    for scale in (1, 2, 4, 8, 16, 32):
        layer = torch.rand(1, 3, n // scale + 2, n // scale + 2, generator=g) - 0.5
        layer = torch.nn.functional.interpolate(layer, size=(n + 2 * scale, n + 2 * scale))
        wide += layer[..., scale : scale + n, scale : scale + n]
    wide = (0.5 + wide / 3).clamp(0, 1)[0]

    def crop(dx: int, dy: int) -> torch.Tensor:
        return wide[:, pad + dy : pad + dy + size, pad + dx : pad + dx + size]

    targets = torch.stack([crop(0, 0)] * len(moves))
    sources = torch.stack([crop(dx, dy) for dx, dy in moves])
    noise = sigma * torch.randn(2, *targets.shape, generator=g)
    return targets + noise[0], sources + noise[1]
