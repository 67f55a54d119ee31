"""Training clips: sequences decoded into memory once, random crops of T frames streamed out.

A source is a video file, a folder of frames, or a folder holding several of either. Frames
are kept as uint8 on the training device, so cropping and augmenting happen there too.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import cv2
import numpy as np
import torch

from vdenoise.engine import reflect_index
from vdenoise.errors import UsageError, VdenoiseError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v", ".mts", ".ts", ".mpg", ".y4m"}


def frame_files(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(
        files, key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]
    )


def find_sequences(path: Path) -> list[Path]:
    """The sequences under `path`: itself if it is a video or a frame folder, else its children
    that are (sorted by name)."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path} does not exist")
    if path.is_file():
        return [path]
    if frame_files(path):
        return [path]
    children = sorted(
        p
        for p in path.iterdir()
        if (p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES) or (p.is_dir() and frame_files(p))
    )
    if not children:
        raise UsageError(f"{path} holds no videos or frame folders")
    return children


def read_sequence(path: Path, max_frames: int | None = None) -> torch.Tensor:
    """A video file or frame folder as uint8 RGB frames [N, 3, H, W] (OpenCV decoding)."""
    frames: list[np.ndarray] = []
    if path.is_dir():
        for file in frame_files(path)[:max_frames]:
            image = cv2.imread(str(file), cv2.IMREAD_COLOR)
            if image is None:
                raise VdenoiseError(f"{file.name} is not a readable image")
            frames.append(image)
    else:
        capture = cv2.VideoCapture(str(path))
        try:
            while max_frames is None or len(frames) < max_frames:
                ok, image = capture.read()
                if not ok:
                    break
                frames.append(image)
        finally:
            capture.release()
    if not frames:
        raise VdenoiseError(f"no frames could be read from {path.name}")
    if any(f.shape != frames[0].shape for f in frames):
        raise VdenoiseError(f"the frames of {path.name} differ in size")
    rgb = np.stack(frames)[..., ::-1]  # BGR -> RGB
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(0, 3, 1, 2).contiguous()


def load_sequences(
    path: Path, max_frames: int | None = None, device: torch.device | None = None
) -> list[torch.Tensor]:
    return [read_sequence(p, max_frames).to(device) for p in find_sequences(path)]


class ClipSampler:
    """Random clips [B, T, 3, crop, crop] in [0, 1]: a random sequence (weighted by length), T
    consecutive frames (reflected at the ends), one crop for all frames, and random flips,
    transposition and time reversal, all the same within a clip."""

    def __init__(
        self,
        sequences: list[torch.Tensor],
        frames: int,
        crop: int,
        augment: bool = True,
        seed: int = 0,
    ) -> None:
        if not sequences:
            raise UsageError("no training sequences")
        self.sequences = sequences
        self.frames = frames
        smallest = min(min(s.shape[-2:]) for s in sequences)
        self.crop = min(crop, smallest)
        self.augment = augment
        self.rng = random.Random(seed)
        self.weights = [s.shape[0] for s in sequences]

    def clip(self) -> torch.Tensor:
        (seq,) = self.rng.choices(self.sequences, self.weights)
        n, _, h, w = seq.shape
        start = self.rng.randrange(n)
        index = [reflect_index(start + i, n) for i in range(self.frames)]
        y, x = self.rng.randrange(h - self.crop + 1), self.rng.randrange(w - self.crop + 1)
        clip = seq[index, :, y : y + self.crop, x : x + self.crop]
        if self.augment:
            if self.rng.random() < 0.5:
                clip = clip.flip(-1)
            if self.rng.random() < 0.5:
                clip = clip.flip(-2)
            if self.rng.random() < 0.5:
                clip = clip.transpose(-1, -2)
            if self.rng.random() < 0.5:
                clip = clip.flip(0)
        return clip

    def sample(self, batch: int) -> torch.Tensor:
        return torch.stack([self.clip() for _ in range(batch)]).float() / 255.0
