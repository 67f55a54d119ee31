import itertools

import pytest
import torch

from tests.clipmaker import pattern
from tests.conftest import SHARED_DATA
from vdenoise.errors import UsageError
from vdenoise.io import read_rgb
from vdenoise.noise import NoiseModel, add_gaussian_noise, estimate_sigma, relative_variance_at


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


@pytest.mark.parametrize(
    "text", ["gaussian:25", "gaussian:5-55", "correlated:30", "poisson-gaussian:0.01,5", "none"]
)
def test_noise_models_parse_and_print_back(text):
    assert str(NoiseModel.parse(text)) == text


@pytest.mark.parametrize("text", ["gauss:5", "gaussian:", "gaussian:50-5", "poisson-gaussian:x"])
def test_bad_noise_is_a_usage_error(text):
    with pytest.raises(UsageError, match="cannot read noise"):
        NoiseModel.parse(text)


def test_gaussian_range_draws_one_level_per_clip_within_it():
    clean = torch.full((64, 2, 3, 32, 32), 0.5)
    noisy, sigma = NoiseModel.parse("gaussian:5-55").apply(clean, torch.Generator().manual_seed(0))
    assert sigma.min() >= 5 / 255 and sigma.max() <= 55 / 255 and sigma.std() > 0.03
    measured = (noisy - clean).flatten(1).std(1)
    assert torch.allclose(measured, sigma, rtol=0.05)


def test_correlated_noise_has_its_level_and_is_correlated_between_neighbours():
    clean = torch.zeros(1, 4, 3, 128, 128)
    noisy, sigma = NoiseModel.parse("correlated:25").apply(clean, torch.Generator().manual_seed(0))
    assert abs(noisy.std() * 255 - 25) < 0.5 and sigma.item() == pytest.approx(25 / 255)
    right = (noisy[..., :-1] * noisy[..., 1:]).mean() / noisy.var()
    assert 0.6 < right < 0.7  # a 3x3 box: neighbours share 6 of 9 taps
    assert abs((noisy[:, 0] * noisy[:, 1]).mean() / noisy.var()) < 0.02  # frames independent


def test_poisson_gaussian_variance_grows_with_the_signal():
    model = NoiseModel.parse("poisson-gaussian:0.01,5")
    g = torch.Generator().manual_seed(0)
    for level in (0.1, 0.8):
        clean = torch.full((1, 1, 3, 128, 128), level)
        noisy, _ = model.apply(clean, g)
        expected = 0.01 * level + (5 / 255) ** 2
        assert (noisy - clean).var().item() == pytest.approx(expected, rel=0.05)


def test_a_noise_level_function_gives_each_pixel_its_brightness_bins_value():
    table = torch.tensor([1.0, 3.0, 2.0, 2.5])
    brightness = torch.tensor([-0.1, 0.0, 0.24, 0.25, 0.6, 1.0, 1.2])
    expected = torch.tensor([1.0, 1.0, 1.0, 3.0, 2.0, 2.5, 2.5])
    assert torch.equal(relative_variance_at(table, brightness), expected)
