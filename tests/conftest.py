"""Shared fixtures: the real clips in ../shared/data, and small test-only models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from vdenoise.checkpoint import save_checkpoint
from vdenoise.models import build
from vdenoise.models.base import VideoDenoiser

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("VDENOISE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_clip(name: str) -> Path:
    """A real clip from ../shared/data/clips, or skip the test saying why."""
    path = SHARED_DATA / "clips" / name
    if not path.exists():
        pytest.skip(f"real clip {path} not present (set VDENOISE_SHARED_DATA)")
    return path


class Identity(VideoDenoiser):
    """Returns the centre frames unchanged; declares temporal context like a real model."""

    def __init__(self, before: int = 2, after: int = 2, per_call: int = 3) -> None:
        super().__init__()
        self.frames_before, self.frames_after, self.frames_per_call = before, after, per_call
        self.bytes_per_pixel = 64.0

    def forward(self, clip: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return clip[:, self.frames_before : clip.shape[1] - self.frames_after]


class TemporalMean(Identity):
    """Averages each frame with its neighbours: output depends on the context it is fed."""

    def forward(self, clip: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        a, b = self.frames_before, self.frames_after
        n = clip.shape[1] - a - b
        return torch.stack([clip[:, i : i + a + b + 1].mean(1) for i in range(n)], 1)


class LocalBlur(Identity):
    """A 5x5 box blur per frame (receptive radius 2): tiled output must equal untiled."""

    def __init__(self) -> None:
        super().__init__(0, 0, 2)
        self.spatial_margin = 4

    def forward(self, clip: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = clip.shape
        x = clip.reshape(b * t * c, 1, h, w)
        kernel = torch.full((1, 1, 5, 5), 1 / 25, device=clip.device)
        x = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (2, 2, 2, 2), "reflect"), kernel)
        return x.reshape(b, t, c, h, w)


@pytest.fixture
def identity() -> Identity:
    return Identity()


@pytest.fixture(scope="session")
def box_frames():
    from tests.datasets import real_frames

    return real_frames()


@pytest.fixture
def set8(tmp_path, box_frames):
    """Half of Set8 in the GoPro/Derfs layout (4 of its 8 sequences, 6 frames each)."""
    from tests.datasets import frame_folder

    root = tmp_path / "data"
    for group, name, start in [("GoPro", "motorbike", 0), ("GoPro", "rafting", 2),
                               ("Derfs", "tractor", 4), ("Derfs", "sunflower", 6)]:  # fmt: skip
        frame_folder(root / group / name, box_frames[start : start + 6])
    return root


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    """Tiny checkpoints of both methods: (model, path, sha256) by method."""
    folder = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    out = {}
    for method in ("f2r", "stbn"):
        model = build(method, "tiny")
        path = folder / f"{method}-tiny.safetensors"
        out[method] = (model, path, save_checkpoint(model, path, {"noise": "awgn 5-55"}))
    return out
