import itertools

import pytest
import torch

from vdenoise.tiling import BLEND, axis_weights, run_tiled, tile_overlap, tile_starts


@pytest.mark.parametrize(("length", "tile", "margin"), [(100, 40, 4), (1080, 256, 24), (97, 96, 8)])
def test_tiles_cover_and_avoid_inner_edges(length, tile, margin):
    overlap = tile_overlap(margin)
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + tile >= length
    assert all(b - a <= tile - overlap for a, b in itertools.pairwise(starts))
    total = torch.zeros(length)
    for s, w in zip(starts, axis_weights(length, tile, starts, margin), strict=True):
        total[s : s + w.numel()] += w
        if s > 0:  # no weight within `margin` of an inner edge
            assert w[:margin].abs().max() == 0
        if s + tile < length:
            assert w[-margin:].abs().max() == 0
    assert total.min() >= 1  # every pixel has at least one tile at full weight


def test_single_tile_when_it_fits():
    assert tile_starts(50, 64, 24) == [0]


def test_blend_is_gradual():
    starts = tile_starts(200, 120, tile_overlap(8))
    w = axis_weights(200, 120, starts, 8)[0]
    steps = (w[1:] - w[:-1]).abs()
    assert steps.max() <= 1 / BLEND + 1e-6


def test_run_tiled_reproduces_a_pointwise_function():
    x = torch.rand(1, 2, 3, 75, 130)
    out = run_tiled(lambda c: c * 2 + 1, x, tile=48, margin=4)
    assert torch.allclose(out, x * 2 + 1, atol=1e-6)
