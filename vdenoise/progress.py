"""What the user sees on stderr while a command runs: notes, a progress bar, a summary line."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

if TYPE_CHECKING:  # the pipeline (and PyAV) load only when a video is denoised
    from vdenoise.pipeline import DenoiseReport


def frame_rate(fps: float) -> str:
    """'2.6 fps', and for slow runs '0.042 fps' (never '0.0 fps')."""
    return f"{fps:.1f} fps" if fps >= 1 else f"{fps:.2g} fps"


class RateColumn(ProgressColumn):
    """Frames per second since the run began: the figure the summary line ends with."""

    def render(self, task: Task) -> Text:
        seconds = time.perf_counter() - task.fields["began"]
        text = frame_rate(task.completed / seconds) if task.completed and seconds > 0 else ""
        return Text(text, style="progress.data.speed")


class _StderrStatus:
    """Notes and one progress bar on stderr; nothing at all when quiet."""

    def __init__(self, quiet: bool = False) -> None:
        self.console = Console(stderr=True, quiet=quiet)
        self.progress: Progress | None = None
        self.task = None

    def note(self, message: str) -> None:
        self.console.print(f"[dim]·[/dim] {message}", highlight=False, soft_wrap=True)

    def _start(self, *columns: ProgressColumn, **task: Any) -> None:
        tail = (TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
        self.progress = Progress(*columns, *tail, console=self.console, transient=True)
        self.progress.start()
        self.task = self.progress.add_task(**task)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


class ConsoleObserver(_StderrStatus):
    """What `denoise` shows: notes, a bar over the frames, a summary line."""

    def __init__(self, quiet: bool = False, description: str = "denoising") -> None:
        super().__init__(quiet)
        self.description = description

    def start(self, total: int | None, began: float) -> None:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        self._start(*columns, RateColumn(), description=self.description, total=total, began=began)

    def advance(self, frames: int) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task, frames)

    def summary(self, report: DenoiseReport) -> None:
        self.console.print(
            f"[green]✓[/green] {report.frames} frames in {report.seconds:.1f} s "
            f"({frame_rate(report.fps)}) → {report.output} · {report.codec} {report.pix_fmt} · "
            f"noise {report.sigma:g}{' (estimated)' if report.sigma_estimated else ''} · "
            f"{report.device}, {report.precision}",
            highlight=False,
            soft_wrap=True,
        )


class TrainingProgress(_StderrStatus):
    """What `fit` and `train` show: phase, a bar over the budget (steps or seconds), loss."""

    def start(self, total: float, unit: str, done: float) -> None:
        self._start(
            TextColumn("{task.description:<7}"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} " + unit),
            TextColumn("loss {task.fields[loss]}"),
            description="training",
            total=total,
            completed=done,
            loss="-",
        )

    def update(self, done: float, phase: str, loss: float) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=done, description=phase, loss=f"{loss:.4g}")


class BenchProgress(_StderrStatus):
    """What `bench` shows: one bar over every (sequence, condition, method) run."""

    def start(self, total: int) -> None:
        self._start(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            description="benchmark",
            total=total,
        )

    def advance(self, what: str) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, advance=1, description=what)
