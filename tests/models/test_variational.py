import cv2
import numpy as np
import torch

from tests.textures import moving_texture
from vdenoise.models.variational import refine_flow


def pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two 8-bit luma frames of a texture moving 5 pixels a frame, with noise, and a first flow
    with half a pixel of noise of its own."""
    _, noisy = moving_texture(frames=2, size=64, sigma=0.05)
    luma = (noisy[0].mean(1).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    target, source = (cv2.GaussianBlur(f, (0, 0), 1.5) for f in (luma[1], luma[0]))
    first = np.random.default_rng(0).normal(0, 0.5, (64, 64, 2)).astype(np.float32)
    first[..., 0] -= 5  # the texture moved 5 pixels to the right from source to target
    return target, source, first


def test_the_refinement_is_opencvs():
    """The same energy, discretisation and solver: within 1e-3 pixels of OpenCV's
    VariationalRefinement on average (its warp interpolates in fixed point), where the
    refinement moves the flow by a third of a pixel on average, towards the motion."""
    target, source, first = pair()
    theirs = cv2.VariationalRefinement_create()
    theirs.setAlpha(60.0)
    theirs.setFixedPointIterations(3)
    expected = first.copy()
    theirs.calc(target, source, expected)
    flow = torch.from_numpy(first).permute(2, 0, 1)[None]
    frames = [torch.from_numpy(f).float()[None, None] for f in (target, source)]
    ours = refine_flow(*frames, flow, iterations=3, alpha=60.0)[0].permute(1, 2, 0).numpy()
    assert np.abs(expected - first).mean() > 0.3
    assert np.abs(ours - expected).mean() < 1e-3
    truth = np.stack([np.full((64, 64), -5.0), np.zeros((64, 64))], -1)
    assert np.abs(ours - truth).mean() < np.abs(first - truth).mean() / 3


def test_odd_sizes_are_refined_as_opencv_refines_them():
    """The SOR runs on 2x2 polyphase components: an odd height or width pads them."""
    target, source, first = (np.ascontiguousarray(x[:61, :63]) for x in pair())
    theirs = cv2.VariationalRefinement_create()
    theirs.setAlpha(20.0)
    expected = first.copy()
    theirs.calc(target, source, expected)
    flow = torch.from_numpy(first).permute(2, 0, 1)[None]
    frames = [torch.from_numpy(f).float()[None, None] for f in (target, source)]
    ours = refine_flow(*frames, flow)[0].permute(1, 2, 0).numpy()
    assert np.abs(expected - first).mean() > 0.3
    assert np.abs(ours - expected).mean() < 1e-3


def test_pairs_are_refined_alone_as_in_a_batch_and_zero_iterations_change_nothing():
    target, source, first = pair()
    frames = [torch.from_numpy(f).float()[None, None] for f in (target, source)]
    flow = torch.from_numpy(first).permute(2, 0, 1)[None]
    alone = refine_flow(*frames, flow, iterations=2)
    batched = refine_flow(*(f.repeat(3, 1, 1, 1) for f in frames), flow.repeat(3, 1, 1, 1), 2)
    assert torch.allclose(batched, alone.expand(3, -1, -1, -1), atol=1e-5)
    assert torch.equal(refine_flow(*frames, flow, iterations=0), flow)
