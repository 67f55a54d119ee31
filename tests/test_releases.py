"""The registered releases: bundled, intact, and denoising a real clip well."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import torch

from tests.textures import moving_texture
from vdenoise import checkpoint, models, weights
from vdenoise.bench.metrics import psnr
from vdenoise.engine import Engine
from vdenoise.errors import VdenoiseError
from vdenoise.model_card import render

BOX_FRAMES = Path(__file__).parent / "data" / "box-frames.png"
SIGMA = 30.0
GAIN = 5.0  # dB over the noisy frames at sigma 30 (noise power cut by more than 3x)


def clean_clip() -> torch.Tensor:
    """Eight real frames, [8, 3, 120, 160] RGB in [0, 1] (see tests/data/README.md)."""
    strip = cv2.cvtColor(cv2.imread(str(BOX_FRAMES)), cv2.COLOR_BGR2RGB)
    frames = torch.from_numpy(strip).permute(2, 0, 1).float().div(255)
    return torch.stack(frames.split(120, dim=1))


@pytest.mark.parametrize("release", weights.RELEASES, ids=lambda r: r.name)
def test_release_is_bundled_intact_and_denoises_a_real_clip(release):
    found = weights.locate(release)
    assert found is not None and found[1] == "bundled", f"{release.filename} not in weights/"
    model = checkpoint.load_checkpoint(found[0], release.sha256)  # raises on a wrong sha256
    assert models.describe(model)[0] == release.method
    card = (weights.bundled_dir() / release.filename).with_suffix(".md")
    assert card.read_text().startswith(render(found[0], release.name))  # agrees with the file

    clean = clean_clip()
    noisy = clean + torch.randn(clean.shape, generator=torch.Generator().manual_seed(0)) * (
        SIGMA / 255
    )
    with torch.no_grad():
        out = torch.stack(list(Engine(model, torch.device("cpu")).run(iter(noisy), SIGMA / 255)))
    gain = psnr(out, clean) - psnr(noisy, clean)
    assert gain > GAIN, f"{release.name}: {gain:.2f} dB"


def test_every_method_has_one_default_per_device():
    for method in models.METHODS:
        released = [r for r in weights.RELEASES if r.method == method]
        if released:
            for device_type in ("cpu", "cuda"):
                chosen = [r for r in released if device_type in r.default_for]
                assert len(chosen) <= 1
            assert weights.default_release(method, "cpu") in released


def test_a_damaged_release_is_refused(tmp_path):
    for release in weights.RELEASES:
        data = bytearray((weights.bundled_dir() / release.filename).read_bytes())
        data[-1] ^= 0xFF
        (tmp_path / release.filename).write_bytes(bytes(data))
        with pytest.raises(VdenoiseError, match="sha256"):
            checkpoint.load_checkpoint(tmp_path / release.filename, release.sha256)


def test_the_stbn_cpu_release_gains_from_propagation_along_motion():
    """Texture sliding 5 pixels per frame, sigma 0.1: the blind mean (before the posterior)
    with propagation along the flow beats the same weights run on each frame alone by 10%
    (measured: 0.0025 against 0.0039; the release with the paper's head: 0.01046 against
    0.01056, which this test was written to catch)."""
    model = checkpoint.load_model("stbn", device_type="cpu")[0].eval()
    clean, noisy = moving_texture(frames=8, size=64)
    error = {}
    with torch.no_grad():
        for propagate in (True, False):
            model.propagate = propagate
            mean = model.prior(noisy, torch.tensor([0.1]), warmup=0)[:, :, :3]
            error[propagate] = float((mean - clean)[:, 1:-1].pow(2).mean())
    model.propagate = True
    assert error[True] < 0.9 * error[False]
