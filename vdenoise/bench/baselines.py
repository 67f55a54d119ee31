"""What a user could run instead of vdenoise: classical denoisers, each given the noise level.

- OpenCV's temporal non-local means, `cv2.fastNlMeansDenoisingColoredMulti` (5 frames).
- The FFmpeg filters inside PyAV's wheel: `nlmeans`, `bm3d`, `atadenoise`, `fftdnoiz`.

All of them take 8-bit frames, so they get the noisy frames clipped and rounded, as a camera
would store them. Each strength is a linear function of sigma whose slope was tuned on
held-out sequences (`benchmarks/baseline_strength.py`, figures below), so that each baseline
is shown near its best, not at a default made for other noise.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np
import torch

from vdenoise.engine import reflect_index

TEMPORAL_WINDOW = 5  # frames OpenCV's NLM averages over (odd)


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """[N, 3, H, W] in [0, 1] -> [N, H, W, 3] uint8 RGB (clipped, rounded)."""
    return (frames.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def from_uint8(frames: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0


@dataclass(frozen=True)
class Baseline:
    """A classical denoiser: frames [N, 3, H, W] in [0, 1] and sigma (0-255) -> frames."""

    name: str
    description: str
    run: Callable[[torch.Tensor, float], torch.Tensor]

    def __call__(self, noisy: torch.Tensor, sigma: float) -> torch.Tensor:
        return self.run(noisy, sigma)


# -- OpenCV -------------------------------------------------------------------------------------
OPENCV_H = 0.6  # h = OPENCV_H * sigma (luma and colour)


def opencv_nlmeans(noisy: torch.Tensor, sigma: float) -> torch.Tensor:
    frames = [f[..., ::-1].copy() for f in to_uint8(noisy)]  # OpenCV wants BGR
    half = TEMPORAL_WINDOW // 2
    n = len(frames)
    padded = [frames[reflect_index(i, n)] for i in range(-half, n + half)]
    h = OPENCV_H * sigma
    out = []
    for i in range(n):
        window = padded[i : i + TEMPORAL_WINDOW]
        denoised = cv2.fastNlMeansDenoisingColoredMulti(window, half, TEMPORAL_WINDOW, None, h, h)
        out.append(denoised[..., ::-1])
    return from_uint8(out)


# -- FFmpeg filters (PyAV) ----------------------------------------------------------------------
def ffmpeg_filter(name: str, options: Callable[[float], str]) -> Callable:
    """A denoiser running FFmpeg's `name` filter (planar RGB, 8 bits) with options(sigma)."""

    def run(noisy: torch.Tensor, sigma: float) -> torch.Tensor:
        import av  # PyAV stays out of the import path until a filter is used

        frames = to_uint8(noisy)
        n, height, width = frames.shape[:3]
        graph = av.filter.Graph()
        source = graph.add_buffer(
            width=width, height=height, format="rgb24", time_base=Fraction(1, 25)
        )
        chain = [
            graph.add("format", "gbrp"),
            graph.add(name, options(sigma)),
            graph.add("format", "rgb24"),
            graph.add("buffersink"),
        ]
        for a, b in itertools.pairwise([source, *chain]):
            a.link_to(b)
        graph.configure()
        out: list[np.ndarray] = []

        def drain() -> None:
            while True:
                try:
                    out.append(graph.pull().to_ndarray())
                except (av.BlockingIOError, av.EOFError):
                    return

        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, "rgb24")
            frame.pts = i
            graph.push(frame)
            drain()
        graph.push(None)
        drain()
        if len(out) != n:
            raise RuntimeError(f"FFmpeg {name} returned {len(out)} frames for {n}")
        return from_uint8(out)

    return run


# Slopes from `python benchmarks/baseline_strength.py --frames 8 --crop 256 --sigmas 10,30,50`
# (the 3 validation sequences; best mean PSNR over the sigmas, 2-core CPU, 2026-11-22):
# OpenCV h 0.6 (of 0.3-1.2), nlmeans 0.75 (0.5-1.5), bm3d 4.5 (3-16), atadenoise 0.01
# (0.002-0.02), fftdnoiz 3 (0.5-3; its cap of 30 binds from sigma 10 on).
NLMEANS_S = 0.75  # s = NLMEANS_S * sigma, at most 30 (FFmpeg: h = 10 s on a 7x7 patch SSD)
BM3D_SIGMA = 4.5  # FFmpeg bm3d sigma = BM3D_SIGMA * sigma (block 16, no grouping: its defaults)
ATADENOISE_A = 0.01  # threshold a = ATADENOISE_A * sigma, at most 0.3; b at its maximum, 5
# FFmpeg fftdnoiz sigma = FFTDNOIZ_SIGMA * sigma, at most 30; one frame each side
FFTDNOIZ_SIGMA = 3.0


def _nlmeans(sigma: float) -> str:
    return f"s={min(30.0, max(1.0, NLMEANS_S * sigma)):.3f}:p=7:r=15"


def _bm3d(sigma: float) -> str:
    return f"sigma={min(999.9, BM3D_SIGMA * sigma):.3f}"  # defaults: block 16, no grouping


def _atadenoise(sigma: float) -> str:
    a = min(0.3, ATADENOISE_A * sigma)
    return ":".join(f"{c}a={a:.4f}:{c}b=5" for c in "012")


def _fftdnoiz(sigma: float) -> str:
    return f"sigma={min(30.0, FFTDNOIZ_SIGMA * sigma):.3f}:prev=1:next=1"


BASELINES = {
    "noisy": Baseline("noisy", "the noisy input itself", lambda noisy, sigma: noisy),
    "opencv-nlm": Baseline(
        "opencv-nlm",
        f"cv2.fastNlMeansDenoisingColoredMulti, {TEMPORAL_WINDOW} frames, h = {OPENCV_H} sigma",
        opencv_nlmeans,
    ),
    "ffmpeg-nlmeans": Baseline(
        "ffmpeg-nlmeans",
        f"FFmpeg nlmeans, s = {NLMEANS_S} sigma",
        ffmpeg_filter("nlmeans", _nlmeans),
    ),
    "ffmpeg-bm3d": Baseline(
        "ffmpeg-bm3d", f"FFmpeg bm3d, sigma = {BM3D_SIGMA} sigma", ffmpeg_filter("bm3d", _bm3d)
    ),
    "ffmpeg-atadenoise": Baseline(
        "ffmpeg-atadenoise",
        f"FFmpeg atadenoise, thresholds a = {ATADENOISE_A} sigma (at most 0.3), b = 5",
        ffmpeg_filter("atadenoise", _atadenoise),
    ),
    "ffmpeg-fftdnoiz": Baseline(
        "ffmpeg-fftdnoiz",
        f"FFmpeg fftdnoiz, sigma = {FFTDNOIZ_SIGMA} sigma, 1 frame each side",
        ffmpeg_filter("fftdnoiz", _fftdnoiz),
    ),
}
