import pytest
import torch

from vdenoise.models import build
from vdenoise.noise import box_correlate
from vdenoise.training.noise_profile import (
    NoiseProfile,
    brightness_profile,
    measure_clip,
    residual_profile,
)

SIGMA = 25 / 255
SHAPE = (4, 3, 64, 64)


def white(seed=0):
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed)) * SIGMA


def everywhere(noise):
    return torch.ones(noise.shape[0], 1, *noise.shape[-2:], dtype=torch.bool)


def test_white_noise_reads_white_at_its_level():
    noise = white()
    profile = residual_profile(noise, everywhere(noise))
    assert profile.white
    assert profile.level == pytest.approx(25, rel=0.03)
    assert abs(profile.neighbour_correlation) < 0.05


def test_box_correlated_noise_reads_correlated_with_the_box_correlation():
    noise = box_correlate(white()) * 1.0
    profile = residual_profile(noise, everywhere(noise))
    assert not profile.white
    assert profile.level == pytest.approx(25, rel=0.03)
    r = 3  # a 3x3 box: correlation 2/3 at one pixel, 1/3 at two, 0 at three
    assert profile.correlation[r, r + 1] == pytest.approx(2 / 3, abs=0.03)
    assert profile.correlation[r + 2, r] == pytest.approx(1 / 3, abs=0.03)
    assert abs(profile.correlation[r, r + 3]) < 0.03


def test_noise_correlated_between_channels_is_not_white():
    noise = white()
    mixed = torch.stack([noise[:, 0], 0.8 * noise[:, 0] + 0.6 * noise[:, 1], noise[:, 2]], 1)
    profile = residual_profile(mixed, everywhere(mixed))
    assert profile.channel_correlation == pytest.approx(0.8, abs=0.03)
    assert not profile.white


def test_samples_have_the_measured_covariance():
    noise = box_correlate(white())
    mixed = torch.stack([noise[:, 0], 0.6 * noise[:, 0] + 0.8 * noise[:, 1], noise[:, 2]], 1)
    profile = residual_profile(mixed, everywhere(mixed))
    torch.manual_seed(1)
    again = residual_profile(profile.sample(mixed), everywhere(mixed))
    assert again.level == pytest.approx(profile.level, rel=0.05)
    assert torch.allclose(again.correlation, profile.correlation, atol=0.05)
    assert torch.allclose(again.colour, profile.colour, atol=0.1 * float(profile.colour.max()))


def test_a_smooth_anchor_error_is_not_read_as_correlated_noise():
    """Where the anchor misses motion its error is smooth; it must not make white noise
    read as correlated, nor add to its level."""
    y, x = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    phase = torch.rand(4, 3, 1, 1, generator=torch.Generator().manual_seed(2)) * 6.28
    error = 0.5 * SIGMA * torch.sin(x / 9 + y / 13 + phase)  # smooth over many pixels
    residual = white() + error
    profile = residual_profile(residual, everywhere(residual))
    assert profile.white
    assert abs(profile.neighbour_correlation) < 0.05
    assert profile.level == pytest.approx(25, rel=0.05)


def test_only_the_flat_pixels_are_read():
    noise = white()
    flat = everywhere(noise)
    flat[..., 32:] = False
    noise[..., 32:] += 0.5 * torch.rand_like(noise[..., 32:])  # "texture" the anchor missed
    assert residual_profile(noise, flat).level == pytest.approx(25, rel=0.03)


def test_a_profile_survives_its_dictionary():
    noise = box_correlate(white())
    profile = residual_profile(noise, everywhere(noise))
    again = NoiseProfile.from_dict(profile.as_dict())
    assert torch.allclose(again.colour, profile.colour)
    assert torch.allclose(again.correlation, profile.correlation)


@pytest.mark.parametrize("correlated", [False, True])
def test_measured_against_f2rs_anchor_on_a_static_scene(correlated):
    y, x = torch.meshgrid(torch.arange(96), torch.arange(96), indexing="ij")
    scene = torch.stack([0.3 + 0.4 * x / 96, 0.5 + 0.2 * y / 96, 0.4 + 0 * x]).float()
    noise = torch.randn(9, 3, 96, 96, generator=torch.Generator().manual_seed(0)) * SIGMA
    frames = scene + (box_correlate(noise) if correlated else noise)
    profile = measure_clip(build("f2r", "tiny"), frames, hint=10.0)
    assert profile.white is not correlated
    assert profile.level == pytest.approx(25, rel=0.2)


def test_signal_dependent_noise_is_read_at_the_frames_average_not_the_surest_pixels():
    """Shot noise grows with brightness; when the surest pixels are mostly the dark ones, their
    variance alone would read the level far too low: each brightness bin is read apart."""
    brightness = torch.linspace(0, 1, 256).expand(1, 1, 64, 256)
    std = 0.02 + 0.1 * brightness
    residual = torch.randn(1, 3, 64, 256, generator=torch.Generator().manual_seed(0)) * std
    jitter = torch.rand(brightness.shape, generator=torch.Generator().manual_seed(1))
    score = (brightness >= 0.3) + jitter  # the dark pixels are the surest
    average, relative = brightness_profile(residual, score, brightness, torch.zeros_like(score))
    surest_power = float(std[score <= torch.quantile(score, 0.3)].pow(2).mean())
    assert average == pytest.approx(float(std.pow(2).mean()), rel=0.1)
    assert average > 2 * surest_power
    white = torch.zeros(7, 7)
    white[3, 3] = 1.0
    profile = NoiseProfile(torch.eye(3) * average, white, relative)
    drawn = profile.sample(residual, brightness)  # re-drawn noise has the same variance map
    for low, high in ((0.0, 0.2), (0.8, 1.0)):
        band = (brightness >= low) & (brightness < high)
        expected = float(std.expand_as(residual)[band.expand_as(residual)].pow(2).mean())
        assert float(drawn[band.expand_as(drawn)].pow(2).mean()) == pytest.approx(expected, rel=0.2)


def test_each_brightness_bin_is_read_on_its_surest_pixels():
    brightness = torch.linspace(0, 1, 256).expand(1, 1, 64, 256)
    residual = 0.05 * torch.randn(1, 3, 64, 256, generator=torch.Generator().manual_seed(0))
    score = torch.rand(1, 1, 64, 256, generator=torch.Generator().manual_seed(1))
    residual = residual + (score > 0.5) * 0.3  # texture the anchor missed, where it is unsure
    average, _ = brightness_profile(residual, score, brightness, torch.zeros_like(score))
    assert average == pytest.approx(0.05**2, rel=0.1)


def test_noise_that_does_not_depend_on_the_signal_keeps_its_level():
    brightness = torch.linspace(0, 1, 256).expand(1, 1, 64, 256)
    residual = 0.1 * torch.randn(1, 3, 64, 256, generator=torch.Generator().manual_seed(0))
    average, relative = brightness_profile(
        residual, brightness, brightness, torch.zeros_like(brightness)
    )
    assert average == pytest.approx(0.01, rel=0.05)
    assert relative is not None and torch.allclose(relative, torch.ones(8), atol=0.1)
