"""`vdenoise compare --at TIME`: one PNG per time, the versions' frames side by side and, below
them, nearest-neighbour enlargements of the places where the versions differ most."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import torch

from vdenoise.compare import (
    Source,
    Timed,
    check_alike,
    draw_label,
    frame_interval,
    text_scale,
    timed_frames,
)
from vdenoise.errors import UsageError
from vdenoise.io import open_input
from vdenoise.io.media import VideoInfo
from vdenoise.pipeline import check_paths, staged_output

REGIONS = 2  # places enlarged per PNG
SEEK_BACK = 1.0  # seconds read before a time, so the frame nearest it is among those decoded
BORDER = 2  # white pixels between pictures


@dataclass(frozen=True)
class Region:
    """A rectangle of the frame (pixels): left, top, width, height."""

    x: int
    y: int
    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height} at ({self.x}, {self.y})"


@dataclass(frozen=True)
class Still:
    path: Path
    seconds: float  # the original's frame shown
    zoom: int
    regions: tuple[Region, ...]


def still_paths(output: Path, times: list[float]) -> list[Path]:
    """OUTPUT itself for one time; for several, OUTPUT's name with each time added
    (compare.png -> compare-1.5s.png, compare-90s.png)."""
    if output.suffix.lower() != ".png":
        raise UsageError(f"--at writes PNG images: name the output *.png, not {output.name}")
    if len(times) == 1:
        return [output]
    return [output.with_name(f"{output.stem}-{t:g}s.png") for t in times]


def frame_near(source: Source, seconds: float, step: Fraction) -> tuple[Timed, VideoInfo]:
    """The frame of `source` nearest `seconds` (from the video's start), within `step`."""
    folder = source.path.is_dir()
    start = None if folder else max(0.0, seconds - SEEK_BACK)
    with contextlib.closing(open_input(source.path, start=start, fps=source.fps)) as reader:
        best = None
        for timed in timed_frames(reader, absolute=True):
            if best is None or abs(timed.seconds - seconds) < abs(best.seconds - seconds):
                best = timed
            if timed.seconds > seconds + step:
                break
        info = reader.info
    assert best is not None  # the reader refuses a range without frames
    if abs(float(best.seconds) - seconds) > step:
        raise UsageError(
            f"{source.label} has no frame near {seconds:g} s (its nearest is at "
            f"{float(best.seconds):.3f} s)",
            "vdenoise probe shows a video's duration",
        )
    return best, info


def to_image(rgb: torch.Tensor) -> np.ndarray:
    """[3, H, W] in [0, 1] -> H x W x 3 uint8 RGB."""
    return (rgb.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def differing_regions(
    pictures: list[np.ndarray], width: int, height: int, count: int = REGIONS
) -> list[Region]:
    """`count` width x height rectangles where the versions differ most: the largest mean
    spread (highest minus lowest version, per sample), chosen greedily, each at least a
    rectangle's size away from those before (distinct places, not neighbours)."""
    stack = np.stack(pictures).astype(np.float32)
    spread = (stack.max(0) - stack.min(0)).mean(axis=2)
    frame_h, frame_w = spread.shape
    # mean over each window, indexed by its top-left corner
    means = cv2.blur(spread, (width, height), anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
    means = means[: frame_h - height + 1, : frame_w - width + 1].copy()
    regions = []
    for _ in range(count):
        y, x = np.unravel_index(int(np.argmax(means)), means.shape)
        if means[y, x] < 0:
            break
        regions.append(Region(int(x), int(y), width, height))
        means[max(0, y - 2 * height + 1) : y + 2 * height,
              max(0, x - 2 * width + 1) : x + 2 * width] = -1  # fmt: skip
    return regions


def layout_still(
    pictures: list[np.ndarray], labels: list[str], zoom: int, regions: int = REGIONS
) -> tuple[np.ndarray, list[Region]]:
    """The PNG's picture: the frames side by side with the regions outlined and numbered;
    below, each region of every version enlarged `zoom` times (two regions to a row, as wide
    as the frames)."""
    height, width = pictures[0].shape[:2]
    crop_w, crop_h = max(1, (width - BORDER) // (2 * zoom)), max(1, height // (2 * zoom))
    found = differing_regions(pictures, crop_w, crop_h, regions)
    scale = text_scale(height)
    parts = []
    for picture, label in zip(pictures, labels, strict=True):
        part = picture.copy()
        _outline(part, found, scale)
        draw_label(part, None, label, 4, 4, scale)
        parts.append(part)
    rows = [_row(parts)]
    for first in range(0, len(found), 2):
        tiles = []
        for k, r in enumerate(found[first : first + 2], first + 1):
            for picture, label in zip(pictures, labels, strict=True):
                crop = picture[r.y : r.y + r.height, r.x : r.x + r.width]
                tile = np.repeat(np.repeat(crop, zoom, axis=0), zoom, axis=1)  # nearest neighbour
                draw_label(tile, None, f"{k}: {label} x{zoom}", 3, 3, text_scale(height) * 0.7)
                tiles.append(tile)
        rows.append(_row(tiles))
    canvas_w = max(row.shape[1] for row in rows)
    canvas = np.full((sum(r.shape[0] for r in rows) + BORDER * (len(rows) - 1), canvas_w, 3),
                     255, np.uint8)  # fmt: skip
    y = 0
    for row in rows:
        canvas[y : y + row.shape[0], : row.shape[1]] = row
        y += row.shape[0] + BORDER
    return canvas, found


def _row(pictures: list[np.ndarray]) -> np.ndarray:
    """Pictures of one height side by side, BORDER white pixels apart."""
    height = pictures[0].shape[0]
    width = sum(p.shape[1] for p in pictures) + BORDER * (len(pictures) - 1)
    row = np.full((height, width, 3), 255, np.uint8)
    x = 0
    for picture in pictures:
        row[:, x : x + picture.shape[1]] = picture
        x += picture.shape[1] + BORDER
    return row


OUTLINE = (0, 255, 255)  # cyan


def _outline(picture: np.ndarray, regions: list[Region], scale: float) -> None:
    """Each region's rectangle and number, drawn on a full frame."""
    for k, r in enumerate(regions, 1):
        cv2.rectangle(picture, (r.x, r.y), (r.x + r.width - 1, r.y + r.height - 1), OUTLINE, 1)
        below = r.y < 20 * scale
        y = r.y + r.height + round(14 * scale) if below else r.y - 4
        cv2.putText(picture, str(k), (r.x + 2, y), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    OUTLINE, 1, cv2.LINE_AA)  # fmt: skip


def compare_stills(
    inputs: list[Source], output: Path, times: list[float], *, zoom: int = 3,
    overwrite: bool = False,
) -> list[Still]:  # fmt: skip
    """One PNG per time (`still_paths`): the original's frame nearest it and every other
    version's frame nearest that one, side by side, with enlarged crops. All or none written."""
    if not 2 <= zoom <= 4:
        raise UsageError("--zoom is 2, 3 or 4")
    if not times:
        raise UsageError("give at least one --at time")
    paths = still_paths(Path(output), times)
    for path in paths:
        for source in inputs:
            check_paths(source.path, path, overwrite)
    stills = []
    with contextlib.ExitStack() as stack:
        for seconds, path in zip(times, paths, strict=True):
            pictures, found, shown = _one(inputs, seconds, zoom)
            tmp = stack.enter_context(staged_output(path, as_folder=False))
            image = cv2.cvtColor(pictures, cv2.COLOR_RGB2BGR)
            if not cv2.imwrite(str(tmp), image, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
                raise UsageError(f"cannot write {path}")
            stills.append(Still(path, shown, zoom, tuple(found)))
    return stills


def _one(inputs: list[Source], seconds: float, zoom: int) -> tuple[np.ndarray, list[Region], float]:
    first, info = _original(inputs[0], seconds)
    pictures = [to_image(first.picture)]
    for source in inputs[1:]:
        probe, other = frame_near(source, float(first.seconds), frame_interval(info))
        check_alike(info, other, inputs[0].label, source.label)
        pictures.append(to_image(probe.picture))
    image, found = layout_still(pictures, [s.label for s in inputs], zoom)
    return image, found, float(first.seconds)


def _original(source: Source, seconds: float) -> tuple[Timed, VideoInfo]:
    with contextlib.closing(open_input(source.path, fps=source.fps)) as reader:
        info = reader.info
    if info.duration is not None and seconds > info.duration:
        raise UsageError(
            f"--at {seconds:g} s is past the end of {source.label} ({info.duration:.2f} s long)"
        )
    return frame_near(source, seconds, frame_interval(info))
