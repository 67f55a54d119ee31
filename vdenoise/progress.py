"""What the user sees on stderr while a command runs: notes, a progress bar, a summary line."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
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
        self.console.print(f"[dim]·[/dim] {escape(message)}", highlight=False, soft_wrap=True)

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
            f"({frame_rate(report.fps)}) → {escape(str(report.output))} · "
            f"{report.codec} {report.pix_fmt} · "
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
            self.progress.update(self.task, advance=1, description=escape(what))


class BatchProgress(_StderrStatus):
    """What `batch` shows: a bar over the files, one over the current file's frames (one worker),
    a line per failure as it happens, and a summary."""

    def __init__(self, quiet: bool = False) -> None:
        super().__init__(quiet)
        self.file_task: Any = None
        self.frames = _FileFrames(self)

    def start(self, files: int) -> None:
        self._start(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            description="files",
            total=files,
        )

    def started(self, job: Any) -> None:
        if self.progress is not None and self.file_task is not None:
            self.progress.remove_task(self.file_task)
            self.file_task = None
        self.current = escape(Path(job.input).name)  # a task description is markup

    def ended(self, outcome: Any) -> None:
        if outcome.status == "failed":
            self.console.print(
                f"[red]✗[/red] {escape(f'{outcome.input}: {outcome.error}')}",
                highlight=False,
                soft_wrap=True,
            )
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task, 1)

    def summary(self, outcomes: list[Any], manifest: Path) -> None:
        counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
        frames = sum(o.frames for o in outcomes)
        mark = "[red]✗[/red]" if counts["failed"] else "[green]✓[/green]"
        self.console.print(
            f"{mark} {counts['done']} done ({frames} frames), {counts['skipped']} skipped, "
            f"{counts['failed']} failed · manifest {escape(str(manifest))}",
            highlight=False,
            soft_wrap=True,
        )
        for outcome in outcomes:
            if outcome.status == "failed":
                self.console.print(
                    f"  failed: {outcome.input}: {outcome.error}",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )


class _FileFrames:
    """The pipeline's observer for the file `BatchProgress` is on: its frames as a second bar."""

    def __init__(self, owner: BatchProgress) -> None:
        self.owner = owner

    def note(self, message: str) -> None:
        pass  # per-file notes would drown the batch's lines; the manifest keeps the facts

    def start(self, total: int | None, began: float) -> None:
        progress = self.owner.progress
        if progress is not None:
            self.owner.file_task = progress.add_task(
                getattr(self.owner, "current", "frames"), total=total, began=began
            )

    def advance(self, frames: int) -> None:
        progress = self.owner.progress
        if progress is not None and self.owner.file_task is not None:
            progress.advance(self.owner.file_task, frames)
