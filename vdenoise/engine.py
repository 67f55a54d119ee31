"""Runs a `VideoDenoiser` over a stream of frames in bounded memory.

Frames arrive one by one; the engine keeps only the window the model needs, reflects the video
at both ends for temporal context, splits frames into tiles when they do not fit in memory, and
retries with smaller tiles when the device runs out of memory.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from vdenoise.device import free_memory, is_out_of_memory
from vdenoise.errors import VdenoiseError
from vdenoise.models.base import VideoDenoiser
from vdenoise.tiling import run_tiled, tile_overlap

MIN_TILE = 64
# Frames a call at most on accelerators, for models whose windows are independent: each call
# launches the same kernels whatever its batch (PyramidFlow's 10,225), so more frames a call
# launch fewer a frame (benchmarks/launches.py counts them)
MAX_FRAMES_PER_CALL = 16
_MEMORY_SHARE = {"cuda": 0.7, "mps": 0.5, "cpu": 0.4}  # of free memory a clip may use


def reflect_index(i: int, n: int | None) -> int:
    """Frame index i of a video of n frames, reflected at both ends (n=None: end not known)."""
    if i < 0 and n is None:
        return -i
    if n is None:
        return i
    if n == 1:
        return 0
    period = 2 * (n - 1)
    i %= period
    return period - i if i >= n else i


def prepare(model: VideoDenoiser, device: torch.device) -> VideoDenoiser:
    """The model on its device, for inference, with channels-last weights (convolutions run
    faster so: 1.1-1.4x on CPU, benchmarks/models.py; and it suits GPU tensor cores)."""
    return model.to(device, memory_format=torch.channels_last).eval()


@dataclass
class EngineStats:
    frames: int = 0
    calls: int = 0
    tile: int = 0  # final tile size (0: whole frames)
    frames_per_call: int = 0
    oom_retries: int = 0


class Engine:
    """Feeds clips with temporal context to a model and yields denoised frames in order."""

    def __init__(
        self,
        model: VideoDenoiser,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        tile: int | None = None,
    ) -> None:
        """`tile`: None picks from free memory, 0 never tiles, N uses N x N tiles."""
        self.model = prepare(model, device)
        self.device = device
        self.dtype = dtype
        self.auto_tile = tile is None
        self.overlap = tile_overlap(model.spatial_margin)
        self.min_tile = max(MIN_TILE, self.overlap + 2 * 16)
        if tile:
            tile = max(tile, self.min_tile)
        self.tile = tile or 0
        self.stats = EngineStats()

    # -- temporal windows ---------------------------------------------------------------------
    def run(
        self, frames: Iterable[torch.Tensor], sigma: float, skip: int = 0
    ) -> Iterator[torch.Tensor]:
        """Denoise a stream of [3, H, W] float frames on the engine's device, one out per in,
        except the first `skip`: those are only context for the frames after them (a segment
        of a longer video, whose model calls then start where a whole run's would)."""
        before, after = self.model.frames_before, self.model.frames_after
        source = iter(frames)
        first = next(source, None)
        if first is None:
            return
        per_call = self.frames_per_call(*first.shape[-2:])
        self.stats.frames_per_call = per_call
        source = itertools.chain([first], source)
        window: dict[int, torch.Tensor] = {}
        n: int | None = None  # frame count, once the stream has ended
        read, start = 0, skip
        while True:
            needed = max(start + per_call - 1 + after, before)
            while n is None and read <= needed:
                try:
                    window[read] = next(source)
                    read += 1
                except StopIteration:
                    n = read
            if n is not None and start >= n:
                return
            count = per_call if n is None else min(per_call, n - start)
            order = [reflect_index(i, n) for i in range(start - before, start + count + after)]
            clip = torch.stack([window[i] for i in order])[None]
            sigmas = torch.full((1,), float(sigma), device=self.device)
            out = self._call(clip, sigmas)
            if out.shape[:2] != (1, count) or out.shape[-2:] != clip.shape[-2:]:
                raise RuntimeError(f"model returned {tuple(out.shape)} for {count} frames")
            for k in range(count):
                yield out[0, k]
            del clip, out  # before the next clip is built: never two in memory
            self.stats.frames += count
            start += count
            for i in [i for i in window if i < start - before - after]:
                del window[i]

    # -- one model call -----------------------------------------------------------------------
    def _call(self, clip: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if self.auto_tile and self.stats.calls == 0:
            self.tile = self.choose_tile(clip.shape)
        while True:
            try:
                out = self._forward(clip, sigma)
                self.stats.calls += 1
                self.stats.tile = self.tile
                return out
            except Exception as e:
                if not is_out_of_memory(e):
                    raise
            self._shrink_tile(clip.shape)

    def _forward(self, clip: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        autocast = (
            torch.autocast(self.device.type, dtype=self.dtype)
            if self.dtype != torch.float32
            else contextlib.nullcontext()
        )
        height, width = clip.shape[-2:]
        with torch.inference_mode(), autocast:
            if not self.tile or (self.tile >= height and self.tile >= width):
                return self.model(clip, sigma).float()
            margin = self.model.spatial_margin
            return run_tiled(lambda c: self.model(c, sigma), clip, self.tile, margin)

    def _shrink_tile(self, shape: torch.Size) -> None:
        """After running out of memory: halve the tile, or give up with advice."""
        self.stats.oom_retries += 1
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        height, width = shape[-2:]
        current = self.tile or max(height, width)
        smaller = (current // 2) // 16 * 16
        if smaller < self.min_tile:
            raise VdenoiseError(
                f"out of memory on {self.device} even with {current}-pixel tiles",
                "try --precision fp16, a smaller model preset, or --device cpu",
            )
        self.tile = smaller

    def frames_per_call(self, height: int, width: int) -> int:
        """The model's frames a call; on an accelerator, for a model whose windows are
        independent, doubled while whole frames still fit in free memory, up to
        MAX_FRAMES_PER_CALL (the output is the same either way)."""
        per_call = max(1, self.model.frames_per_call)
        if self.device.type == "cpu" or not self.model.independent_windows or self.tile:
            return per_call
        context = self.model.frames_before + self.model.frames_after
        budget = self._budget() / (self._bytes_per_pixel() * height * width)
        while per_call * 2 <= MAX_FRAMES_PER_CALL and per_call * 2 + context <= budget:
            per_call *= 2
        return per_call

    def _budget(self) -> float:
        """Bytes a clip may use on the device now."""
        return free_memory(self.device) * _MEMORY_SHARE.get(self.device.type, 0.4)

    def _bytes_per_pixel(self) -> float:
        """The model's activation bytes per pixel of each clip frame, at the engine's dtype."""
        halved = self.dtype != torch.float32
        return self.model.bytes_per_pixel / (2 if halved else 1)

    def choose_tile(self, shape: torch.Size) -> int:
        """The largest tile (0: none) whose estimated activations fit in free memory."""
        frames, (height, width) = shape[1], shape[-2:]
        bytes_per_pixel = self._bytes_per_pixel() * frames
        budget = self._budget()
        if bytes_per_pixel * height * width <= budget:
            return 0
        side = int(math.sqrt(budget / bytes_per_pixel)) - self.overlap
        return max(self.min_tile, side // 16 * 16)
