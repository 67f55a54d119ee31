"""Training clips: sequences decoded into memory once, random crops of T frames streamed out.

A source is a video file, a folder of frames, or a folder holding several of either. Frames
are kept as uint8 on the training device, so cropping and augmenting happen there too.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from vdenoise.engine import reflect_index
from vdenoise.errors import UsageError, VdenoiseError
from vdenoise.training.flow_cache import FlowCache, augment_flow

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


def motion_sequences(
    paths: list[Path], frames: int, steps: tuple[int, ...] = (1, 2, 3)
) -> list[tuple[str, torch.Tensor]]:
    """(name, uint8 frames) of each sequence at each frame step: every `step`-th frame kept,
    up to `frames` of them, named with ` xN` for N > 1. Steps 2 and 3 show 2x and 3x the
    footage's motion: the fast-motion validation."""
    out = []
    for path in paths:
        longest = read_sequence(path, frames * max(steps))
        for step in steps:
            name = path.stem + (f" x{step}" if step > 1 else "")
            out.append((name, longest[::step][:frames].contiguous()))
    return out


def load_sequences(
    path: Path, max_frames: int | None = None, device: torch.device | None = None
) -> list[torch.Tensor]:
    return [read_sequence(p, max_frames).to(device) for p in find_sequences(path)]


class ClipSampler:
    """Random clips [B, T, 3, crop, crop] in [0, 1]: a random sequence (weighted by length), T
    frames `step` apart (reflected at the ends; the step drawn per clip from `steps`, so that
    steps above 1 show faster motion than the footage has), one crop for all frames, and
    random flips, transposition and time reversal, all the same within a clip."""

    def __init__(
        self,
        sequences: list[torch.Tensor],
        frames: int,
        crop: int,
        augment: bool = True,
        seed: int = 0,
        steps: tuple[int, ...] = (1,),
    ) -> None:
        if not sequences:
            raise UsageError("no training sequences")
        if not steps or min(steps) < 1:
            raise UsageError("frame steps must be 1 or more")
        self.sequences = sequences
        self.frames = frames
        self.steps = tuple(steps)
        smallest = min(min(s.shape[-2:]) for s in sequences)
        self.crop = min(crop, smallest)
        self.augment = augment
        self.rng = random.Random(seed)
        self.weights = [s.shape[0] for s in sequences]
        # Set to sample flows with the clips: each clip's from one of them, drawn at random.
        self.flow_caches: list[FlowCache] = []

    def clip(self) -> torch.Tensor:
        return self._clip(())[0]

    def _clip(self, pairs: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A clip [T, 3, crop, crop] (uint8) and, with a flow cache, the flows [P, 2, crop,
        crop] between its frames `pairs` (target, source), augmented with it."""
        (chosen,) = self.rng.choices(range(len(self.sequences)), self.weights)
        seq = self.sequences[chosen]
        n, _, h, w = seq.shape
        start = self.rng.randrange(n)
        step = self.rng.choice(self.steps) if len(self.steps) > 1 else self.steps[0]
        index = [reflect_index(start + i * step, n) for i in range(self.frames)]
        y, x = self.rng.randrange(h - self.crop + 1), self.rng.randrange(w - self.crop + 1)
        ops = []
        if self.augment:
            ops = [op for op in ("flip_x", "flip_y", "transpose") if self.rng.random() < 0.5]
            if self.rng.random() < 0.5:
                index.reverse()
        clip = seq[index, :, y : y + self.crop, x : x + self.crop]
        for op in ops:
            clip = {"flip_x": clip.flip(-1), "flip_y": clip.flip(-2)}.get(op, clip.mT)
        if not self.flow_caches or not pairs:
            return clip, None
        caches = self.flow_caches
        cache = caches[0] if len(caches) == 1 else self.rng.choice(caches)
        size = (self.crop, self.crop)
        flows = [cache.flow(chosen, index[a], index[b], y, x, size) for a, b in pairs]
        return clip, augment_flow(torch.stack(flows), ops).to(clip.device)

    def sample(self, batch: int) -> torch.Tensor:
        return torch.stack([self.clip() for _ in range(batch)]).float() / 255.0

    def sample_with_flows(
        self, batch: int, pairs: Sequence[tuple[int, int]]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Clips [B, T, 3, crop, crop] in [0, 1] and, with a flow cache, the flows [B, P, 2,
        crop, crop] between their frames `pairs` (None without one)."""
        clips, flows = zip(*(self._clip(pairs) for _ in range(batch)), strict=True)
        stacked = None if flows[0] is None else torch.stack(flows)
        return torch.stack(clips).float() / 255.0, stacked
