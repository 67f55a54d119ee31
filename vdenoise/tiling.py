"""Spatial tiles with overlap, blended so that no seam shows.

Neighbouring tiles overlap by `2 * margin + blend` pixels. Each tile's weight is 1 in its middle,
0 in the `margin` pixels next to an inner edge (where the model lacks context), and the two
weights cross-fade linearly over `blend` pixels in between, summing to 1 everywhere. A model
whose receptive field is within `margin` therefore gives the same result tiled as untiled.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

BLEND = 16


def tile_overlap(margin: int) -> int:
    return 2 * margin + BLEND


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Evenly spread start offsets of tiles covering [0, length) with at least `overlap`."""
    if length <= tile:
        return [0]
    if tile <= overlap:
        raise ValueError(f"tile {tile} must exceed the overlap {overlap}")
    n = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def axis_weights(length: int, tile: int, starts: list[int]) -> list[torch.Tensor]:
    """For each tile, its blend weight along one axis (1-D, the tile's extent)."""
    ends = [min(s + tile, length) for s in starts]
    # Cross-fade centres halfway through each overlap.
    centres = [(starts[i + 1] + ends[i]) / 2 for i in range(len(starts) - 1)]
    weights = []
    for i, (s, e) in enumerate(zip(starts, ends, strict=True)):
        p = torch.arange(s, e, dtype=torch.float32) + 0.5
        w = torch.ones(e - s)
        if i > 0:
            w *= ((p - centres[i - 1]) / BLEND + 0.5).clamp(0, 1)
        if i < len(centres):
            w *= 1 - ((p - centres[i]) / BLEND + 0.5).clamp(0, 1)
        weights.append(w)
    return weights


def run_tiled(
    fn: Callable[[torch.Tensor], torch.Tensor], clip: torch.Tensor, tile: int, margin: int
) -> torch.Tensor:
    """Apply `fn` ([..., h, w] -> [..., h, w], leading dims may change) tile by tile."""
    height, width = clip.shape[-2:]
    overlap = tile_overlap(margin)
    ys, xs = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    wy = axis_weights(height, tile, ys)
    wx = axis_weights(width, tile, xs)
    out: torch.Tensor | None = None
    for y0, weight_y in zip(ys, wy, strict=True):
        for x0, weight_x in zip(xs, wx, strict=True):
            y1, x1 = y0 + weight_y.numel(), x0 + weight_x.numel()
            piece = fn(clip[..., y0:y1, x0:x1]).float()
            if out is None:
                out = piece.new_zeros((*piece.shape[:-2], height, width))
            weight = (weight_y[:, None] * weight_x[None, :]).to(piece.device)
            out[..., y0:y1, x0:x1] += piece * weight
    assert out is not None
    return out
