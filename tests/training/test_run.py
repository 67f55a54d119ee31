import cv2
import numpy as np
import pytest
import torch

from vdenoise.models import build
from vdenoise.noise import box_correlate
from vdenoise.training import run


def noisy_folder(folder, correlated, frames=9, size=64):
    """A still, smooth scene with white or box-correlated noise of std 20, as PNG frames."""
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    scene = (0.5 + 0.2 * torch.sin(x / 9) * torch.cos(y / 11)).expand(3, size, size)
    for i in range(frames):
        noise = torch.randn(1, 3, size, size, generator=g)
        if correlated:
            noise = box_correlate(noise)
            noise = noise / noise.std()
        frame = (scene + noise[0] * 20 / 255).clamp(0, 1) * 255
        rgb = frame.round().byte().permute(1, 2, 0).numpy()
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.ascontiguousarray(rgb[..., ::-1]))
    return folder


@pytest.mark.parametrize("correlated", [False, True])
def test_a_fit_of_trained_f2r_retrains_the_anchor_only_for_correlated_noise(tmp_path, correlated):
    """The anchor was trained on white noise: correlated noise it would keep as texture, so a
    fit retrains it then; on white noise only stage 2 is fitted and the anchor stays."""
    torch.manual_seed(0)
    model = build("f2r", "tiny")
    before = [p.clone() for p in model.estimator.parameters()]
    start = run.Start(model, "test weights")
    settings = run.fit_settings(start, steps=4, batch=2, crop=32)
    clip = noisy_folder(tmp_path / "noisy", correlated)
    fitted, _, level = run.fit(clip, tmp_path / "fit.safetensors", start, settings,
                               torch.device("cpu"))  # fmt: skip
    expected = run.ANCHOR_SHARE["correlated" if correlated else "white"]
    assert settings.anchor_share == expected and 10 < level < 30
    after = fitted.estimator.parameters()
    kept = all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert kept is not correlated
