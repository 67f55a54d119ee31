import pytest
import torch

from tests.textures import moving_texture
from vdenoise.bench.flicker import clean_motion, flicker, visible
from vdenoise.bench.metrics import psnr

FRAMES, SIZE, STEP, SIGMA = 9, 96, 5, 0.05


@pytest.fixture(scope="module")
def clean():
    return moving_texture(FRAMES, SIZE, STEP)[0][0]  # [N, 3, H, W], sliding right


def carried_noise(seed: int) -> torch.Tensor:
    """Noise fixed on the moving canvas: it slides with the texture, frame after frame."""
    g = torch.Generator().manual_seed(seed)
    canvas = SIGMA * torch.randn(3, SIZE, SIZE + STEP * FRAMES, generator=g)
    return torch.stack([canvas[..., STEP * (FRAMES - t) : STEP * (FRAMES - t) + SIZE]
                        for t in range(FRAMES)])  # fmt: skip


def mean_psnr(output, clean):
    return sum(psnr(o, c) for o, c in zip(output, clean, strict=True)) / len(clean)


def test_independent_noise_flickers_more_than_stable_noise_of_equal_psnr(clean):
    motion = clean_motion(clean)
    stable = clean + carried_noise(1)
    g = torch.Generator().manual_seed(2)
    flickering = clean + SIGMA * torch.randn(clean.shape, generator=g)
    assert mean_psnr(stable, clean) == pytest.approx(mean_psnr(flickering, clean), abs=0.1)
    steady, shaky = flicker(stable, clean, motion), flicker(flickering, clean, motion)
    assert shaky > 5 * steady
    assert 1.1 * SIGMA * 255 < shaky < 1.45 * SIGMA * 255  # independent noise: 1.1-1.4 sigma
    assert flicker(clean, clean, motion) == 0.0


def test_a_steady_blur_does_not_flicker_but_the_same_blur_switching_on_and_off_does(clean):
    motion = clean_motion(clean)
    blurred = torch.nn.functional.avg_pool2d(clean, 3, 1, 1, count_include_pad=False)
    odd = torch.arange(len(clean)).view(-1, 1, 1, 1) % 2 == 1
    alternating = torch.where(odd, blurred, clean)
    assert flicker(alternating, clean, motion) > 3 * flicker(blurred, clean, motion)


def test_occluded_and_outside_pixels_are_not_compared(clean):
    motion = clean_motion(clean)
    # content slides right by STEP: the left columns of each frame come from outside the last
    assert not motion.visible[:, :, :, : STEP - 1].any()
    assert motion.visible[:, :, :, 2 * STEP : -2 * STEP].float().mean() > 0.95
    assert motion.flow[:, 0, 8:-8, 2 * STEP : -8].mean() == pytest.approx(-STEP, abs=0.3)


def test_flows_that_disagree_mark_pixels_occluded():
    right = torch.zeros(1, 2, 8, 8)
    right[:, 0] = 3.0
    seen = visible(right, -right)  # back the way it came: consistent where inside the frame
    assert seen[..., :5].all() and not seen[..., 5:].any()
    assert not visible(right, right).any()  # the way back also says +3: contradicts


def test_a_single_frame_has_no_flicker(clean):
    assert clean_motion(clean[:1]) is None
    assert flicker(clean[:1], clean[:1], None) is None
