"""Small synthetic clips made with PyAV, each with one property the pipeline must keep."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vdenoise.io import read_rgb


def pattern(index: int, width: int, height: int) -> np.ndarray:
    """A smooth, moving, colourful RGB picture (uint8), easy on codecs."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    t = index * 0.35
    r = 128 + 90 * np.sin(x / 9.0 + t)
    g = 128 + 90 * np.sin(y / 7.0 - t)
    b = 128 + 90 * np.sin((x + y) / 11.0 + 2 * t)
    return np.stack([r, g, b], axis=-1).round().astype(np.uint8)


@dataclass
class ClipSpec:
    """What to put in a clip; the defaults make a plain 8-bit H.264 MP4."""

    frames: int = 12
    width: int = 64
    height: int = 48
    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    time_base: Fraction = Fraction(1, 30000)
    pts: list[int] | None = None  # default: constant 1001 steps (29.97 fps)
    rotation: int = 0
    sample_aspect_ratio: Fraction | None = None
    colour: tuple[int, int, int, int] | None = None  # range, primaries, trc, colorspace
    audio: str | None = None  # encoder name: aac, libopus, pcm_s16le...
    title: str | None = None  # container metadata, with one chapter of that name
    options: dict[str, str] = field(default_factory=lambda: {"crf": "12"})

    def timestamps(self) -> list[int]:
        return self.pts if self.pts is not None else [i * 1001 for i in range(self.frames)]


def make_clip(path: Path, spec: ClipSpec | None = None) -> Path:
    spec = spec or ClipSpec()
    with av.open(str(path), "w") as out:
        stream = out.add_stream(spec.codec, rate=30, options=spec.options)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, spec.pix_fmt
        stream.time_base = stream.codec_context.time_base = spec.time_base
        if spec.colour:
            cc = stream.codec_context
            cc.color_range, cc.color_primaries, cc.color_trc, cc.colorspace = spec.colour
        if spec.sample_aspect_ratio:
            stream.codec_context.sample_aspect_ratio = spec.sample_aspect_ratio
            stream.sample_aspect_ratio = spec.sample_aspect_ratio
        if spec.rotation:
            stream.set_display_rotation(spec.rotation)
        if spec.title:
            out.metadata["title"] = spec.title
            end = int(spec.timestamps()[-1])
            chapter = {"id": 1, "start": 0, "end": end, "time_base": spec.time_base}
            out.set_chapters([{**chapter, "metadata": {"title": spec.title}}])
        audio = None
        if spec.audio:
            layout = "mono" if spec.audio.startswith("pcm") else "stereo"
            audio = out.add_stream(spec.audio, rate=48000, layout=layout)
        for index, pts in enumerate(spec.timestamps()):
            frame = av.VideoFrame.from_ndarray(pattern(index, spec.width, spec.height), "rgb24")
            frame = frame.reformat(format=spec.pix_fmt)
            frame.pts, frame.time_base = pts, spec.time_base
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if audio is not None:
            _write_tone(out, audio, float(spec.timestamps()[-1] * spec.time_base) + 0.1)
    return path


def _write_tone(out: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    rate = stream.codec_context.sample_rate
    channels = stream.codec_context.layout.nb_channels
    size = stream.codec_context.frame_size or 1024
    fmt = stream.codec_context.format.name
    total = int(seconds * rate)
    for start in range(0, total, size):
        n = min(size, total - start)
        t = (np.arange(start, start + n) / rate).astype(np.float32)
        wave = 0.3 * np.sin(2 * np.pi * 440 * t)
        if fmt.startswith("s16"):
            data = (wave * 32767).astype(np.int16)[None].repeat(channels, 0)
            data = data.T.reshape(1, -1) if not fmt.endswith("p") else data
        else:
            data = wave[None].repeat(channels, 0)
            data = data.T.reshape(1, -1) if not fmt.endswith("p") else data
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=stream.codec_context.layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def decoded_pts(path: Path) -> list[Fraction]:
    """Presentation times (s) of every decoded frame, as exact fractions."""
    with av.open(str(path)) as c:
        return [f.pts * f.time_base for f in c.decode(video=0)]


def raw_planes(path: Path) -> list[list[np.ndarray]]:
    """Every frame's planes exactly as decoded (no colour conversion)."""
    with av.open(str(path)) as c:
        return [
            [np.array(p, copy=True).reshape(p.height, -1)[:, : p.line_size] for p in f.planes]
            for f in c.decode(video=0)
        ]


def largest_difference(a: Path, b: Path) -> int:
    """The largest difference, in levels, between the decoded frames of two videos of as many
    frames (fails if their counts differ)."""
    first, second = raw_planes(a), raw_planes(b)
    assert len(first) == len(second)
    pairs = [(x, y) for p, q in zip(first, second, strict=True) for x, y in zip(p, q, strict=True)]
    return max(int(np.abs(x.astype(int) - y.astype(int)).max()) for x, y in pairs)


def our_rgb(path: Path) -> np.ndarray:
    """All frames as float RGB on the 0-255 scale, read by vdenoise (`read_rgb`).

    (swscale is no reference here: it resamples chroma according to the frame's chroma-siting
    flag, which differs between codecs, and for odd sizes.)"""
    frames = np.stack(list(read_rgb(path)))
    return frames.astype(float) / (257.0 if frames.dtype == np.uint16 else 1.0)


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return []
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = float(np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)
