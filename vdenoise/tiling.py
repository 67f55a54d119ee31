"""Spatial tiles with overlap, blended so that no seam shows.

Neighbouring tiles overlap by at least `2 * margin + BLEND` pixels. A tile's weight is 0 in the
`margin` pixels next to an inner edge (where the model lacks context) and rises linearly to 1
over the next `BLEND` pixels; the output is the weight-normalised sum. Only pixels at least
`margin` from a tile's inner edges contribute, so a model whose receptive field lies within
`margin` gives the same result tiled as untiled, and the ramps leave no visible seam.
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


def axis_weights(length: int, tile: int, starts: list[int], margin: int) -> list[torch.Tensor]:
    """For each tile, its (unnormalised) blend weight along one axis."""
    weights = []
    for s in starts:
        e = min(s + tile, length)
        d = torch.arange(e - s, dtype=torch.float32) + 0.5  # pixel centres, from the tile's start
        w = torch.ones(e - s)
        if s > 0:
            w = torch.minimum(w, ((d - margin) / BLEND).clamp(0, 1))
        if e < length:
            w = torch.minimum(w, ((e - s - d - margin) / BLEND).clamp(0, 1))
        weights.append(w)
    return weights


def run_tiled(
    fn: Callable[[torch.Tensor], torch.Tensor], clip: torch.Tensor, tile: int, margin: int
) -> torch.Tensor:
    """Apply `fn` ([..., h, w] -> [..., h, w], leading dims may change) tile by tile."""
    height, width = clip.shape[-2:]
    overlap = tile_overlap(margin)
    ys, xs = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    wy = axis_weights(height, tile, ys, margin)
    wx = axis_weights(width, tile, xs, margin)
    out: torch.Tensor | None = None
    total = torch.zeros(height, width, device=clip.device)
    for y0, weight_y in zip(ys, wy, strict=True):
        for x0, weight_x in zip(xs, wx, strict=True):
            y1, x1 = y0 + weight_y.numel(), x0 + weight_x.numel()
            piece = fn(clip[..., y0:y1, x0:x1]).float()
            if out is None:
                out = piece.new_zeros((*piece.shape[:-2], height, width))
            weight = (weight_y[:, None] * weight_x[None, :]).to(piece.device)
            out[..., y0:y1, x0:x1] += piece * weight
            total[y0:y1, x0:x1] += weight
    assert out is not None
    return out / total
