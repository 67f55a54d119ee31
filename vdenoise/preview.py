"""`vdenoise denoise --preview`: a few seconds from the middle of the video, denoised with the
run's settings and shown beside the original (`vdenoise.compare`), and the time the whole run
would take at the speed measured on them. Only the comparison is written."""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vdenoise.compare import Source, compare_video
from vdenoise.errors import UsageError
from vdenoise.io import is_image_sequence, open_input
from vdenoise.models.base import VideoDenoiser
from vdenoise.pipeline import Observer, denoise_video, expected_frames

PREVIEW_SECONDS = 3.0


def preview_path(output: Path) -> Path:
    """Beside the output's name: out.mp4 -> out.preview.mp4; for an image-sequence output
    (a folder, or frames/%06d.png), the folder's name + .preview.mp4."""
    if is_image_sequence(output):
        folder = output.parent if "%" in output.name else output
        return folder.with_name(folder.name + ".preview.mp4")
    return output.with_name(f"{output.stem}.preview{output.suffix}")


@dataclass
class PreviewReport:
    preview: str
    start: float  # seconds of the input previewed
    end: float
    frames: int
    seconds: float  # the preview's denoising, start-up included
    total_frames: int | None  # of the whole run
    sigma: float
    notes: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def projected_seconds(self) -> float | None:
        """The whole run at the preview's speed."""
        return self.total_frames / self.fps if self.total_frames and self.fps else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fps": self.fps, "projected_seconds": self.projected_seconds}


def preview_range(duration: float, start: float | None, end: float | None) -> tuple[float, float]:
    """PREVIEW_SECONDS from the middle of [start, end) (the whole video by default); all of it
    when it is at most half a second longer."""
    first = start or 0.0
    last = min(end, duration) if end is not None else duration
    if last <= first:
        raise UsageError(f"--start {first:g} s is past the end of the video ({duration:.2f} s)")
    if last - first <= PREVIEW_SECONDS + 0.5:
        return first, last
    begin = (first + last - PREVIEW_SECONDS) / 2
    return begin, begin + PREVIEW_SECONDS


def denoise_preview(
    src: Path, dst: Path, model: VideoDenoiser, options: dict[str, Any], observer: Observer
) -> PreviewReport:
    """Denoise the preview range of `src` with `options` (`denoise_video`'s keywords) into a
    temporary file, write its comparison with the original beside `dst`'s name, remove the
    rest."""
    target = preview_path(Path(dst))
    if target.exists() and not options["overwrite"]:
        raise UsageError(f"{target} already exists", "pass --overwrite to replace it")
    fps, start, end = options["fps"], options["start"], options["end"]
    with contextlib.closing(open_input(src, fps=fps, start=start, end=end)) as reader:
        total = expected_frames(reader)
        duration = reader.info.duration
    if not duration:
        raise UsageError(f"{src.name} does not say how long it is: a preview needs that")
    begin, stop = preview_range(duration, start, end)
    if not target.parent.is_dir():
        raise UsageError(f"the folder {target.parent} does not exist")
    with tempfile.TemporaryDirectory(prefix="vdenoise-preview-") as tmp:  # the system's
        clip = Path(tmp) / f"denoised{target.suffix}"
        whole = end is None and stop >= duration  # to the end: keep its last frame
        stop_at = None if whole else stop
        settings = {**options, "start": begin, "end": stop_at, "overwrite": True}
        report = denoise_video(src, clip, model, observer=observer, **settings)
        original = Source(Path(src), "original", fps, begin, stop_at)
        sigma = f"sigma {report.sigma:g}" + (" (estimated)" if report.sigma_estimated else "")
        compare_video([original, Source(clip, f"denoised, {sigma}")], target,
                      overwrite=options["overwrite"])  # fmt: skip
    return PreviewReport(str(target), begin, stop, report.frames, report.seconds, total,
                         report.sigma, report.notes)  # fmt: skip
