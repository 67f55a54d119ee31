"""Optical flow for aligning recurrent features, and the nearest-neighbour warp STBN needs.

The default estimator is OpenCV's DIS (Kroeger et al., ECCV 2016): no weights, no download,
and a cost of 0.4 dB against PWC-Net in STBN's own ablation (paper supplement, table 5:
32.28 vs 32.68 dB on Set8 at sigma 30). Estimators are pluggable: anything with
`__call__(target, source) -> flow` fits.
"""

from __future__ import annotations

import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import cv2
import numpy as np
import torch
import torch.nn.functional as F

MIN_SIZE = 16


class FlowEstimator(Protocol):
    def __call__(self, target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """Flow [N, 2, H, W] (x, y in pixels) such that target(p) ~ source(p + flow(p)),
        for frames [N, 3, H, W] in [0, 1]."""
        ...


class DISFlow:
    """OpenCV's Dense Inverse Search on lightly smoothed luma (noise would mislead it).

    `smoothness`: the weight of the variational refinement's smoothness term (OpenCV's alpha,
    20 by default); a smoother flow fits less of the target frame's noise. `patch_stride` and
    `refinement_iterations` override the preset's (medium: 3 and 5); None keeps them."""

    def __init__(
        self,
        preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
        smooth: float = 1.0,
        smoothness: float | None = None,
        patch_stride: int | None = None,
        refinement_iterations: int | None = None,
    ) -> None:
        self.preset, self.smooth, self.smoothness = preset, smooth, smoothness
        self.patch_stride, self.refinement_iterations = patch_stride, refinement_iterations

    def __repr__(self) -> str:
        extra = ""
        if self.patch_stride is not None or self.refinement_iterations is not None:
            extra = f", stride={self.patch_stride}, refine={self.refinement_iterations}"
        return f"DISFlow({self.preset}, smooth={self.smooth}, smoothness={self.smoothness}{extra})"

    def _luma(self, frames: torch.Tensor) -> np.ndarray:
        weights = torch.tensor([0.299, 0.587, 0.114], device=frames.device, dtype=frames.dtype)
        y = torch.einsum("nchw,c->nhw", frames, weights).clamp(0, 1).mul(255).round()
        return y.to(torch.uint8).cpu().numpy()

    def _pair(self, target: np.ndarray, source: np.ndarray) -> np.ndarray:
        if self.smooth:
            target = cv2.GaussianBlur(target, (0, 0), self.smooth)
            source = cv2.GaussianBlur(source, (0, 0), self.smooth)
        dis = cv2.DISOpticalFlow_create(self.preset)
        if self.smoothness is not None:
            dis.setVariationalRefinementAlpha(self.smoothness)
        if self.patch_stride is not None:
            dis.setPatchStride(self.patch_stride)
        if self.refinement_iterations is not None:
            dis.setVariationalRefinementIterations(self.refinement_iterations)
        return dis.calc(target, source, None)

    def __call__(self, target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        n, _, height, width = target.shape
        if min(height, width) < MIN_SIZE:  # too small for DIS's pyramid: assume no motion
            return target.new_zeros(n, 2, height, width, dtype=torch.float32)
        pairs = (self._luma(target.detach()), self._luma(source.detach()))
        flows = list(_pool().map(self._pair, *pairs))  # OpenCV releases the GIL: pairs in parallel
        flow = torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2)
        return flow.to(device=target.device, dtype=torch.float32)


class ByDevice:
    """One estimator for frames on the CPU, another for frames on an accelerator: DIS is the
    faster on a CPU, the torch `PyramidFlow` on a GPU, where it runs batched and is at least as
    accurate (benchmarks/flow_accuracy.py)."""

    def __init__(self, cpu: FlowEstimator, accelerator: FlowEstimator) -> None:
        self.cpu, self.accelerator = cpu, accelerator

    def __repr__(self) -> str:
        return f"ByDevice(cpu={self.cpu!r}, accelerator={self.accelerator!r})"

    def __call__(self, target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        estimator = self.cpu if target.device.type == "cpu" else self.accelerator
        return estimator(target, source)


class PairCache:
    """Each flow computed once: flows remembered by their two frames' content for the calls
    that follow (`keep` calls), so that windows and model calls sharing a pair of frames
    (F2R's consecutive steps, STBN's warm-up frames) reuse it. `computed` and `requested`
    count pairs.

    A frame is known by two weighted sums of its values (`fingerprints`), with fixed
    pseudo-random weights: frames that differ anywhere (one value by 1/255 included) differ in
    them. Each thread has its own memo (a model shared by the files in flight of `batch` sees
    one video per thread), the counts are over all."""

    def __init__(self, estimator: FlowEstimator, keep: int = 2) -> None:
        self.estimator, self.keep = estimator, keep
        self._local = threading.local()
        self._lock = threading.Lock()
        self._computed = self._requested = 0

    def __repr__(self) -> str:
        return f"PairCache({self.estimator!r}, keep={self.keep})"

    @property
    def computed(self) -> int:
        """Pairs the estimator was asked for."""
        return self._computed

    @property
    def requested(self) -> int:
        """Pairs this cache was asked for."""
        return self._requested

    def _memo(self) -> _Memo:
        memo = getattr(self._local, "memo", None)
        if memo is None:
            memo = self._local.memo = _Memo()
        return memo

    def __call__(self, target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        memo = self._memo()
        memo.calls += 1
        flows_of = memo.flows
        n = target.shape[0]
        keys = fingerprints(torch.cat([target, source]))
        pairs = list(zip(keys[:n], keys[n:], strict=True))
        missing = {pair: i for i, pair in reversed(list(enumerate(pairs))) if pair not in flows_of}
        if missing:
            index = torch.tensor(list(missing.values()), device=target.device)
            flows = self.estimator(target[index], source[index])
            for pair, flow in zip(missing, flows, strict=True):
                flows_of[pair] = (memo.calls, flow)
        with self._lock:
            self._requested += n
            self._computed += len(missing)
        out = []
        for pair in pairs:
            flow = flows_of[pair][1]
            flows_of[pair] = (memo.calls, flow)
            out.append(flow)
        expired = [p for p, (call, _) in flows_of.items() if call <= memo.calls - self.keep]
        for pair in expired:
            del flows_of[pair]
        return torch.stack(out)


Key = tuple[float, float]


class _Memo:
    """One thread's remembered flows, by pair of frame keys, with the call that last used
    each."""

    def __init__(self) -> None:
        self.flows: dict[tuple[Key, Key], tuple[int, torch.Tensor]] = {}
        self.calls = 0


BLOCK = 1024  # values a fingerprint sums in float32 before adding the sums in float64


def fingerprints(frames: torch.Tensor) -> list[Key]:
    """Two weighted sums of each frame [N, ...], the weights fixed per frame size: products
    summed in float32 over blocks of BLOCK values (a block's sum of frame values in [0, 1]
    stays below 1,536, where float32 resolves 1.2e-4: a change of 1/255 moves it by at least
    0.002), the blocks' sums added in float64: faster than float64 throughout
    (benchmarks/kernel_speed.py) and, unlike a matrix product, the same for the same values
    wherever they lie in memory."""
    flat = frames.reshape(frames.shape[0], -1)
    size = flat.shape[1]
    weights = _weights(size, str(frames.device))
    with torch.autocast(frames.device.type, enabled=False):  # fp16 would merge frames
        if size % BLOCK:
            flat = F.pad(flat, (0, BLOCK - size % BLOCK))
        blocks = flat.float().unflatten(1, (-1, 1, BLOCK))  # [N, blocks, 1, BLOCK]
        # one frame at a time: the products of a whole batch would be twice its size
        sums = torch.stack([(frame * weights).sum(-1).double().sum(0) for frame in blocks])
    return [(float(a), float(b)) for a, b in sums.cpu().tolist()]


@functools.lru_cache(maxsize=4)
def _weights(size: int, device: str) -> torch.Tensor:
    """[blocks, 2, BLOCK] in [0.5, 1.5], zero past `size`."""
    generator = torch.Generator().manual_seed(size)
    blocks = -(-size // BLOCK)
    weights = torch.zeros(2, blocks * BLOCK)
    weights[:, :size] = 0.5 + torch.rand(2, size, generator=generator)
    return weights.view(2, blocks, BLOCK).transpose(0, 1).contiguous().to(device)


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """One thread per core for the flows of a batch (a training step asks for a hundred)."""
    return ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="flow")


def _grid(flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """grid_sample's coordinates (align_corners=True) for sampling at p + flow(p): x and y,
    [N, H, W] each, float32."""
    height, width = flow.shape[-2:]
    ys = torch.arange(height, device=flow.device, dtype=torch.float32).view(-1, 1)
    xs = torch.arange(width, device=flow.device, dtype=torch.float32)
    gx = (xs + flow[:, 0]) * (2 / max(width - 1, 1)) - 1
    gy = (ys + flow[:, 1]) * (2 / max(height - 1, 1)) - 1
    return gx, gy


def warp_bilinear(x: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample x [N, C, H, W] at p + flow(p), bilinear, the border repeated outside the frame;
    also the mask [N, 1, H, W] of pixels whose source lies inside the frame (1) or not (0).

    For aligning whole frames (F2R's anchor), where sub-pixel accuracy matters more than
    keeping each value unmixed."""
    gx, gy = _grid(flow)
    grid = torch.stack([gx, gy], -1).to(x.dtype)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
    inside = (gx.abs() <= 1 + 1e-6) & (gy.abs() <= 1 + 1e-6)
    return out, inside.unsqueeze(1).to(x.dtype)


def warp_nearest(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample x [N, C, H, W] at p + flow(p), nearest neighbour, zeros outside the frame.

    Nearest (not bilinear) sampling copies values without mixing neighbours, which keeps the
    statistics of the propagated features and makes the output a piecewise-constant function
    of the flow (STBN, "Calibration of Frame Alignment").
    """
    grid = torch.stack(_grid(flow), -1).to(x.dtype)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=True)


def compose(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """The flow from frame a to frame c [N, 2, H, W], given a -> b (`first`) and b -> c
    (`second`): a(p) ~ b(p + first(p)) ~ c(p + first(p) + second(p + first(p)))."""
    return first + warp_bilinear(second, first)[0]
