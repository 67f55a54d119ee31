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


def test_the_anchors_predicted_error_is_taken_out_of_the_level():
    noise, error = white(0), white(1) * 0.5  # the anchor's error, independent of the noise
    residual = noise - error
    covariance = torch.eye(3) * (0.5 * SIGMA) ** 2
    assert residual_profile(residual, everywhere(noise)).level == pytest.approx(27.95, rel=0.03)
    profile = residual_profile(residual, everywhere(noise), covariance)
    assert profile.level == pytest.approx(25, rel=0.03)


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


def test_signal_dependent_noise_is_read_at_the_frames_average_not_the_flat_pixels():
    """Shot noise grows with brightness; when the flat pixels are mostly the dark ones, their
    variance alone would read the level far too low."""
    brightness = torch.linspace(0, 1, 256).expand(1, 1, 64, 256)
    std = 0.02 + 0.1 * brightness
    residual = torch.randn(1, 3, 64, 256, generator=torch.Generator().manual_seed(0)) * std
    columns = torch.arange(256).expand(1, 1, 64, 256)
    flat = (brightness < 0.3) | (columns % 8 == 0)  # all the dark pixels, a few bright ones
    scale, relative = brightness_profile(residual, flat, brightness, torch.zeros_like(brightness))
    flat_power = float(std[flat].pow(2).mean())
    assert scale * flat_power == pytest.approx(float(std.pow(2).mean()), rel=0.1)
    assert scale > 2
    white = torch.zeros(7, 7)
    white[3, 3] = 1.0
    profile = NoiseProfile(torch.eye(3) * scale * flat_power, white, relative)
    drawn = profile.sample(residual, brightness)  # re-drawn noise has the same variance map
    for low, high in ((0.0, 0.2), (0.8, 1.0)):
        band = (brightness >= low) & (brightness < high)
        expected = float(std.expand_as(residual)[band.expand_as(residual)].pow(2).mean())
        assert float(drawn[band.expand_as(drawn)].pow(2).mean()) == pytest.approx(expected, rel=0.2)


def test_noise_that_does_not_depend_on_the_signal_keeps_its_flat_level():
    brightness = torch.linspace(0, 1, 256).expand(1, 1, 64, 256)
    residual = 0.1 * torch.randn(1, 3, 64, 256, generator=torch.Generator().manual_seed(0))
    scale, relative = brightness_profile(
        residual, brightness < 0.3, brightness, torch.zeros_like(brightness)
    )
    assert scale == pytest.approx(1.0, abs=0.05)
    assert relative is not None and torch.allclose(relative, torch.ones(8), atol=0.1)
