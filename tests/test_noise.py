import itertools

import pytest
import torch

from tests.clipmaker import pattern
from tests.conftest import SHARED_DATA
from vdenoise.io import read_rgb
from vdenoise.noise import add_gaussian_noise, estimate_sigma


def synthetic_frames(n=4):
    g = torch.Generator().manual_seed(1)
    frames = []
    for i in range(n):
        smooth = torch.from_numpy(pattern(i, 256, 192)).permute(2, 0, 1).float() / 255
        texture = torch.nn.functional.avg_pool2d(torch.rand(3, 196, 260, generator=g)[None], 5, 1)
        frames.append(0.7 * smooth + 0.3 * texture[0, :, :192, :256])
    return frames


def real_frames(n=4):
    path = SHARED_DATA / "trainpack" / "val" / "derf-tractor.mp4"
    if not path.exists():
        pytest.skip(f"{path} not present")
    rgb = itertools.islice(read_rgb(path), n)
    return [torch.from_numpy(f).permute(2, 0, 1).float() / 255 for f in rgb]


@pytest.mark.parametrize("source", [synthetic_frames, real_frames])
@pytest.mark.parametrize("sigma", [5, 10, 25, 50])
def test_estimate_is_within_ten_percent(source, sigma):
    g = torch.Generator().manual_seed(sigma)
    noisy = [add_gaussian_noise(f, sigma, g) for f in source()]
    assert estimate_sigma(noisy) == pytest.approx(sigma, rel=0.10)


def test_noise_is_seeded_unclipped_and_of_the_right_level():
    clean = torch.full((3, 100, 100), 0.99)
    a = add_gaussian_noise(clean, 20, torch.Generator().manual_seed(7))
    b = add_gaussian_noise(clean, 20, torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and a.max() > 1.0
    assert (a - clean).std().item() * 255 == pytest.approx(20, rel=0.02)


def test_clean_flat_frames_estimate_near_zero():
    assert estimate_sigma([torch.full((3, 64, 64), 0.5)]) < 0.1
