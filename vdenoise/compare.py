"""`vdenoise compare`: an original and its processed versions in one labelled video.

Frames are matched by time: every frame of the first input (the original) is shown with, from
each other input, its frame nearest in time, time counted from each input's first frame (so a
`denoise --start` output lines up with the same range of its source). The output has the
original's frames, timestamps and audio. The inputs must have the same size and cover the same
time to within a frame; their frame rates may differ.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch

from vdenoise import signals
from vdenoise.errors import UsageError, VdenoiseError
from vdenoise.io import open_input
from vdenoise.io.colour import ColourSpec, PixelLayout
from vdenoise.io.convert import planes_to_rgb, rgb_to_planes
from vdenoise.io.encoding import EncodeOptions
from vdenoise.io.media import Frame, VideoInfo
from vdenoise.io.reader import VideoReader
from vdenoise.io.writer import VideoWriter
from vdenoise.pipeline import Observer, SilentObserver, check_paths, staged_output
from vdenoise.threads import Consumer, Prefetcher

Layout = Literal["side", "split"]
QUEUE_DEPTH = 8  # frames decoded ahead per input, and queued for the encoder
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class Source:
    """One input: a video file or image folder, the label shown on it, and the part of it
    compared (seconds; None: from its start, to its end)."""

    path: Path
    label: str
    fps: float | None = None  # image folders' frame rate
    start: float | None = None
    end: float | None = None


def sources(
    paths: list[Path],
    labels: list[str] | None,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
) -> list[Source]:
    """The inputs, labelled with `labels` in order (default: their file names), each from
    `start` to `end`."""
    if len(paths) < 2:
        raise UsageError("compare needs the original and at least one processed version")
    labels = list(labels or [])
    if len(labels) > len(paths):
        raise UsageError(f"{len(labels)} labels for {len(paths)} inputs")
    labels += [p.name for p in paths[len(labels) :]]
    for path in paths:
        if not path.exists():
            raise UsageError(f"{path} does not exist")
    if start is not None and end is not None and end <= start:
        raise UsageError("--end must come after --start")
    return [Source(p, label, fps, start, end) for p, label in zip(paths, labels, strict=True)]


@dataclass
class Timed:
    """A decoded frame, its time in seconds and its picture (as `timed_frames` made it)."""

    seconds: Fraction
    frame: Frame
    picture: Any


def rgb_of(info: VideoInfo) -> Callable[[Frame], torch.Tensor]:
    """A frame's RGB picture [3, H, W]."""
    return lambda frame: planes_to_rgb(
        [torch.from_numpy(p) for p in frame.planes], info.layout, info.colour
    )


def timed_frames(
    reader: Any, picture: Callable[[Frame], Any] | None = None, absolute: bool = False
) -> Iterator[Timed]:
    """A reader's frames with their times and `picture(frame)` (default: RGB): times from its
    first frame, or (`absolute`) from the video's start as players count it."""
    info = reader.info
    picture = picture or rgb_of(info)
    first: int | None = None
    base = Fraction(0)
    for frame in reader:
        if first is None:
            first = frame.pts
            if absolute:
                base = _first_frame_time(reader, frame)
        yield Timed(base + (frame.pts - first) * info.time_base, frame, picture(frame))


def _first_frame_time(reader: Any, frame: Frame) -> Fraction:
    if isinstance(reader, VideoReader):
        if reader.offset is not None:  # opened at a start time
            return reader.offset
        return frame.pts * reader.info.time_base - reader.origin
    return frame.pts * reader.info.time_base


def frame_interval(info: VideoInfo) -> Fraction:
    """One frame's duration at the average rate (1/25 s when a file does not say)."""
    return 1 / info.average_rate if info.average_rate else Fraction(1, 25)


def check_alike(first: VideoInfo, other: VideoInfo, name: str, label: str) -> None:
    """Refuse versions that cannot be shown beside the original: another size, or another
    number of frames at the same rate."""
    if (other.width, other.height) != (first.width, first.height):
        raise UsageError(
            f"{label} is {other.width}x{other.height} and {name} {first.width}x{first.height}: "
            "compare shows versions of the same size"
        )
    counts = (first.frame_count, other.frame_count)
    if first.average_rate == other.average_rate and None not in counts and counts[0] != counts[1]:
        raise UsageError(
            f"{label} has {other.frame_count} frames and {name} {first.frame_count}: "
            "compare shows versions of the same length",
            "compare versions of the same part of the video (--start/--end trim every input)",
        )


class Nearest:
    """The frames of one version, followed to the one nearest each time asked for."""

    def __init__(self, frames: Iterator[Timed], label: str, tolerance: Fraction) -> None:
        self.frames, self.label, self.tolerance = frames, label, tolerance
        self.current = next(frames, None)
        if self.current is None:
            raise VdenoiseError(f"{label} holds no frames")
        self.next = next(frames, None)

    def at(self, seconds: Fraction) -> Timed:
        assert self.current is not None
        while self.next is not None and abs(self.next.seconds - seconds) <= abs(
            self.current.seconds - seconds
        ):
            self.current, self.next = self.next, next(self.frames, None)
        if abs(self.current.seconds - seconds) > self.tolerance:
            raise UsageError(
                f"{self.label} has no frame near {float(seconds):.3f} s (its nearest is at "
                f"{float(self.current.seconds):.3f} s): compare shows versions of the same "
                "length and timing"
            )
        return self.current

    def check_end(self, seconds: Fraction) -> None:
        """Refuse a version that runs on past the original's last frame."""
        if self.next is not None and self.next.seconds - seconds > self.tolerance:
            raise UsageError(
                f"{self.label} runs on past the original's end ({float(seconds):.3f} s): "
                "compare shows versions of the same length"
            )


# -- the picture --------------------------------------------------------------------------------
def text_scale(height: int) -> float:
    """OpenCV font scale for labels about 1/25 of a frame's height (at least legible)."""
    return max(0.4, height / 900)


Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (end exclusive)


def draw_label(
    colour: np.ndarray, alpha: np.ndarray | None, text: str, x: int, y: int, scale: float
) -> Box:
    """A white label on a dark box with its top-left corner at (x, y): drawn into an RGB
    overlay and its opacity (`alpha`), or straight onto an image (`alpha` None). Returns the
    box."""
    thickness = max(1, round(scale * 1.6))
    (width, height), base = cv2.getTextSize(text, FONT, scale, thickness)
    pad = max(2, round(5 * scale))
    x1 = min(colour.shape[1], x + width + 2 * pad)
    y1 = min(colour.shape[0], y + height + base + 2 * pad)
    if alpha is None:
        box = colour[y:y1, x:x1]
        box[:] = (box * 0.35).astype(colour.dtype)
    else:
        colour[y:y1, x:x1] = 0
        alpha[y:y1, x:x1] = 0.65
    origin = (x + pad, y + pad + height)
    cv2.putText(colour, text, origin, FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    if alpha is not None:
        mask = np.zeros(alpha.shape, np.uint8)
        cv2.putText(mask, text, origin, FONT, scale, 255, thickness, cv2.LINE_AA)
        np.maximum(alpha, mask / 255.0, out=alpha)
    return x, y, x1, y1


def columns(width: int, parts: int, layout: Layout, step: int = 1) -> list[tuple[int, int]]:
    """Where each version's picture sits in the output, as [start, end) columns; split-screen
    cuts fall on multiples of `step` (the chroma grid)."""
    if layout == "side":
        return [(i * width, (i + 1) * width) for i in range(parts)]
    cuts = [round(i * width / parts / step) * step for i in range(parts)] + [width]
    return list(itertools.pairwise(cuts))


WIPE_LINE = 2  # pixels


@dataclass
class Patch:
    """Part of one plane the overlay covers: where, its values and their opacity."""

    plane: int
    rows: slice
    cols: slice
    values: np.ndarray  # float32
    alpha: np.ndarray  # float32, same shape


class Overlay:
    """Labels and wipe lines, drawn once in RGB and blended into every frame's planes in the
    output's own pixel format, only where they lie."""

    def __init__(
        self,
        colour: np.ndarray,
        alpha: np.ndarray,
        boxes: list[Box],
        layout: PixelLayout,
        spec: ColourSpec,
    ) -> None:
        rgb = torch.from_numpy(colour).permute(2, 0, 1).float() / 255
        planes = [p.numpy().astype(np.float32) for p in rgb_to_planes(rgb, layout, spec)]
        self.patches = []
        for index, plane in enumerate(planes):
            sx, sy = (0, 0) if index == 0 or layout.kind != "yuv" else layout.chroma_shift
            for x0, y0, x1, y1 in boxes:
                rows = slice(y0 >> sy, -(-y1 >> sy))
                cols = slice(x0 >> sx, -(-x1 >> sx))
                a = _subsample(alpha[rows.start << sy : rows.stop << sy,
                                     cols.start << sx : cols.stop << sx], sx, sy)  # fmt: skip
                self.patches.append(Patch(index, rows, cols, plane[rows, cols], a))

    def apply(self, planes: list[np.ndarray]) -> None:
        """Blend into `planes` (arrays this frame owns), in place."""
        for p in self.patches:
            region = planes[p.plane][p.rows, p.cols]
            mixed = region * (1 - p.alpha) + p.values * p.alpha
            region[:] = np.rint(mixed).astype(region.dtype)


def _subsample(alpha: np.ndarray, sx: int, sy: int) -> np.ndarray:
    """Mean over (2^sy x 2^sx) blocks (edge blocks padded by repetition)."""
    if not (sx or sy):
        return alpha.astype(np.float32)
    fy, fx = 1 << sy, 1 << sx
    h, w = alpha.shape
    padded = np.pad(alpha, ((0, -h % fy), (0, -w % fx)), mode="edge")
    return padded.reshape(-(-h // fy), fy, -(-w // fx), fx).mean(axis=(1, 3)).astype(np.float32)


def overlay(
    size: tuple[int, int], spans: list[tuple[int, int]], labels: list[str], wipe: bool,
    layout: PixelLayout, spec: ColourSpec,
) -> Overlay:  # fmt: skip
    """White labels on dark boxes at the top left of each part and, with `wipe` (a split
    screen), a white line where one part meets the next."""
    width, height = size
    colour = np.zeros((height, width, 3), np.uint8)
    alpha = np.zeros((height, width), np.float32)
    scale = text_scale(height)
    margin = max(2, round(8 * scale))
    boxes = []
    for (start, _), text in zip(spans, labels, strict=True):
        if wipe and start:
            line = (start - WIPE_LINE // 2, 0, start + WIPE_LINE - WIPE_LINE // 2, height)
            colour[:, line[0] : line[2]] = 255
            alpha[:, line[0] : line[2]] = 1.0
            boxes.append(line)
        boxes.append(draw_label(colour, alpha, text, start + margin, margin, scale))
    return Overlay(colour, alpha, boxes, layout, spec)


def compose(
    planes: list[list[np.ndarray]], layout: PixelLayout, spans: list[tuple[int, int]], how: Layout
) -> list[np.ndarray]:
    """The versions' planes (all in the output's format) as one frame's: side by side, or
    each showing its own columns (split screen). New arrays: the inputs are left alone."""
    if how == "side":
        return [np.concatenate(parts, axis=1) for parts in zip(*planes, strict=True)]
    out = [p.copy() for p in planes[0]]
    for version, (start, end) in zip(planes[1:], spans[1:], strict=True):
        for index, (target, source) in enumerate(zip(out, version, strict=True)):
            sx = layout.chroma_shift[0] if index and layout.kind == "yuv" else 0
            target[:, start >> sx : -(-end >> sx)] = source[:, start >> sx : -(-end >> sx)]
    return out


def converter(info: VideoInfo, layout: PixelLayout, spec: ColourSpec, width: int):
    """A frame's planes in `layout` and `spec`: as decoded where they are already so (and the
    width is on the chroma grid), else through RGB."""
    if info.layout == layout and info.colour == spec and layout.fits(width, 2):
        return lambda frame: frame.planes

    def convert(frame: Frame) -> list[np.ndarray]:
        rgb = planes_to_rgb([torch.from_numpy(p) for p in frame.planes], info.layout, info.colour)
        return [p.numpy() for p in rgb_to_planes(rgb, layout, spec)]

    return convert


# -- the video ----------------------------------------------------------------------------------
@dataclass
class CompareReport:
    output: str
    frames: int
    seconds: float
    width: int
    height: int
    codec: str
    pix_fmt: str
    notes: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def compare_video(
    inputs: list[Source],
    output: Path,
    *,
    layout: Layout = "side",
    encode: EncodeOptions | None = None,
    overwrite: bool = False,
    observer: Observer | None = None,
) -> CompareReport:
    """Write `output`: the inputs' frames matched by time, labelled, as `layout` places them,
    with the first input's timestamps and audio.
    `encode`: libx264 at the `PRESET` speed unless another preset is given."""
    observer = observer or SilentObserver()
    output = Path(output)
    for source in inputs:
        check_paths(source.path, output, overwrite)
    if output.suffix == "" or output.is_dir():
        raise UsageError(f"{output} is no video file name", "end it in .mp4, .mkv or .mov")
    encode = encode or EncodeOptions()
    if encode.preset is None and (encode.codec or "libx264") in ("libx264", "h264", "x264"):
        encode = replace(encode, preset=PRESET)
    began = time.perf_counter()
    with contextlib.ExitStack() as stack:
        readers = []
        for source in inputs:
            reader = open_input(source.path, start=source.start, end=source.end, fps=source.fps)
            stack.callback(reader.close)
            readers.append(reader)
        info = readers[0].info
        for source, reader in zip(inputs[1:], readers[1:], strict=True):
            check_alike(info, reader.info, inputs[0].label, source.label)
        with staged_output(output, as_folder=False) as tmp:
            original = readers[0]
            source = original.container if isinstance(original, VideoReader) else None
            step = 1 << (info.layout.chroma_shift[0] if info.layout.kind == "yuv" else 0)
            spans = columns(info.width, len(inputs), layout, step)
            size = (spans[-1][1], info.height)
            writer = VideoWriter(tmp, replace(info, width=size[0]), encode, source=source,
                                 audio="copy")  # fmt: skip
            for note in writer.notes:
                observer.note(note)
            labels = [s.label for s in inputs]
            shapes = overlay(size, spans, labels, layout == "split", writer.layout, writer.colour)
            try:
                frames = _run(readers, inputs, writer, shapes, spans, layout, observer, began)
                writer.close()
            except BaseException:
                writer.abort()
                raise
    return CompareReport(str(output), frames, time.perf_counter() - began, size[0], size[1],
                         writer.codec, writer.pix_fmt, writer.notes)  # fmt: skip


PRESET = "superfast"  # libx264 preset of compare videos, a viewing copy (benchmarks/compare.py)


def _run(
    readers: list[Any],
    inputs: list[Source],
    writer: VideoWriter,
    shapes: Overlay,
    spans: list[tuple[int, int]],
    layout: Layout,
    observer: Observer,
    began: float,
) -> int:
    """Decode (and convert where needed) every input in its own thread, compose in this one,
    encode in another."""
    side: queue.SimpleQueue[Any] = queue.SimpleQueue()
    if isinstance(readers[0], VideoReader):
        readers[0].forward_packets(side.put)

    def write(frame: Frame) -> None:
        while not side.empty():
            writer.mux_side(side.get())
        writer.write(frame)

    width = readers[0].info.width
    streams = [
        Prefetcher(timed_frames(r, converter(r.info, writer.layout, writer.colour, width)),
                   QUEUE_DEPTH, name=f"decode-{i}")
        for i, r in enumerate(readers)
    ]  # fmt: skip
    encoder: Consumer[Frame] | None = None
    written = 0
    try:
        step = frame_interval(readers[0].info)
        versions = [
            Nearest(iter(s), source.label, max(step, frame_interval(r.info)))
            for s, source, r in zip(streams[1:], inputs[1:], readers[1:], strict=True)
        ]
        encoder = Consumer(write, QUEUE_DEPTH, name="encode")
        observer.start(readers[0].info.frame_count, began)
        last = Fraction(0)
        for timed in streams[0]:
            pictures = [timed.picture] + [v.at(timed.seconds).picture for v in versions]
            planes = compose(pictures, writer.layout, spans, layout)
            shapes.apply(planes)
            encoder.put(Frame(planes, timed.frame.pts, timed.frame.duration))
            last = timed.seconds
            written += 1
            observer.advance(1)
            signals.check()
        for version in versions:
            version.check_end(last)
        encoder.finish()
    except BaseException:
        if encoder is not None:
            encoder.abort()
        raise
    finally:
        for stream in streams:
            stream.close()
    while not side.empty():
        writer.mux_side(side.get())
    return written
