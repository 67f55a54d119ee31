import pytest
import torch

from vdenoise.bench.baselines import BASELINES, to_uint8
from vdenoise.bench.metrics import psnr
from vdenoise.noise import NoiseModel
from vdenoise.training.evaluate import corrupt


@pytest.fixture(scope="module")
def clip():
    from tests.datasets import real_frames

    frames = real_frames(7, size=(160, 120))
    clean = torch.from_numpy(__import__("numpy").stack(frames)[..., ::-1].copy())
    clean = clean.permute(0, 3, 1, 2).float() / 255
    noisy, _ = corrupt(clean, NoiseModel.parse("gaussian:25"), seed=0)
    return clean, noisy


@pytest.mark.parametrize("name", [n for n in BASELINES if n != "noisy"])
def test_each_baseline_keeps_every_frame_and_removes_noise(clip, name):
    clean, noisy = clip
    out = BASELINES[name](noisy, 25.0)
    assert out.shape == clean.shape
    stored = torch.from_numpy(to_uint8(noisy)).permute(0, 3, 1, 2).float() / 255
    assert psnr(out, clean) > psnr(stored, clean) + 1.0


def test_the_noisy_baseline_is_the_input():
    x = torch.rand(2, 3, 8, 8)
    assert torch.equal(BASELINES["noisy"](x, 10), x)
