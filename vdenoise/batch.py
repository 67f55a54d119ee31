"""Many videos in one command: which outputs to make, running them, and the manifest.

`plan` turns files, folders (searched recursively, sub-folders mirrored) and glob patterns into
(input, output) pairs under one output folder. `run_batch` denoises them one after another, in
worker processes (CPUs), or several at once in threads sharing one model per device (GPUs),
each file on its own: one that fails is recorded and the others go on. The
manifest (JSON Lines) gets one record per file as soon as it ends, so an interrupted batch
keeps what it finished, and `skip_existing` resumes it: outputs are written atomically, so an
output that exists is complete (one whose manifest line a crash cut is done again). Before any
file starts, the part-files that killed runs left beside the outputs are removed
(`vdenoise.partfiles`); worker processes end with the batch, however it ends
(`vdenoise.lifeline`).
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vdenoise import manifest as manifests
from vdenoise import partfiles
from vdenoise.errors import UsageError, VdenoiseError

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mkv", ".mov", ".webm", ".avi", ".mts", ".m2ts", ".ts", ".mxf", ".mpg"}
    | {".mpeg", ".wmv", ".flv", ".3gp", ".y4m"}
)
MANIFEST = "vdenoise-manifest.jsonl"

if TYPE_CHECKING:
    from vdenoise.pipeline import Span


@dataclass(frozen=True)
class Job:
    input: Path
    output: Path
    span: Span | None = None  # a segment of the input (`vdenoise.segments`), else all of it
    redo: bool = False  # its output exists, but the manifest line a crash cut may be its own


@dataclass
class Outcome:
    """One file's line in the manifest."""

    input: str
    output: str
    status: str  # done, failed, skipped
    frames: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    sigma: float | None = None
    error: str | None = None
    retries: int = 0  # attempts after the first (a Ray task whose worker or node died)


@dataclass
class Settings:
    """What every file of a batch is denoised with: the model's choice and `denoise_video`'s
    keyword options (sigma, encode, audio, device, precision, tile...)."""

    method: str | None = None
    weights: str | None = None
    offline: bool = False
    options: dict[str, Any] = field(default_factory=dict)


def _videos_in(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if (
            path.suffix.lower() in VIDEO_SUFFIXES
            and path.is_file()
            and not path.name.startswith(".")
        ):
            yield path


def plan(
    items: list[str], outdir: Path, container: str | None = None, suffix: str = ""
) -> list[Job]:
    """The (input, output) pairs for files, folders and glob patterns, in a stable order.

    A folder's videos keep their sub-folders under `outdir`; a file keeps its name. `container`
    (e.g. "mkv") replaces each input's extension; `suffix` is added to the stem."""
    found: list[tuple[Path, Path]] = []  # (input, its path relative to outdir)
    for item in items:
        path = Path(item)
        if path.is_dir():
            found += [(video, video.relative_to(path)) for video in _videos_in(path)]
        elif path.exists():
            found.append((path, Path(path.name)))
        elif any(c in item for c in "*?["):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            found += [(m, Path(m.name)) for m in matches if m.is_file()]
            if not matches:
                raise UsageError(f"nothing matches {item}")
        else:
            raise UsageError(f"{item} does not exist")
    if not found:
        raise UsageError("no video files to denoise", "give files, folders or patterns")
    jobs: dict[Path, Job] = {}
    for source, relative in found:
        extension = f".{container.lstrip('.')}" if container else relative.suffix
        target = outdir / relative.with_name(relative.stem + suffix + extension)
        if target in jobs and jobs[target].input.resolve() != source.resolve():
            raise UsageError(
                f"{jobs[target].input} and {source} would both be written to {target}",
                "denoise them into separate folders, or rename one",
            )
        jobs[target] = Job(source, target)
    return list(jobs.values())


def append(manifest: Path, outcome: Outcome) -> None:
    """One JSON line per file, on the disk as soon as the file ends."""
    manifests.append(manifest, asdict(outcome))


def record(
    job: Job,
    outcome: Outcome,
    manifest: Path,
    outcomes: dict[Job, Outcome],
    ended: Callable[[Outcome], None],
) -> None:
    """A file has ended: kept, written to the manifest, told to the progress."""
    outcomes[job] = outcome
    append(manifest, outcome)
    ended(outcome)


def failed(job: Job, error: str) -> Outcome:
    return Outcome(str(job.input), str(job.output), "failed", error=error)


# -- the work of one file, the same in this process and in a worker -----------------------------
_worker_model: Any = None
_worker_settings: Any = None


def load(settings: Settings) -> Any:
    """The model for the batch (loaded once per process)."""
    from vdenoise.checkpoint import load_model
    from vdenoise.device import select_device

    device = select_device(settings.options.get("device", "auto"))
    return load_model(settings.method, settings.weights, settings.offline, device.type)[0]


def on_device(settings: Settings, device: str) -> Settings:
    return replace(settings, options={**settings.options, "device": device})


def shares_models(settings: Settings, devices: list[str] | None) -> bool:
    """Whether files in flight share one model per device (threads) rather than each worker
    having its own (processes): on accelerators, whose work overlaps the CPU's decoding and
    encoding of the other files; on CPUs, processes keep the cores apart."""
    from vdenoise.device import select_device

    names = devices or [str(settings.options.get("device", "auto"))]
    return all(select_device(name).type != "cpu" for name in names)


def denoise_one(model: Any, job: Job, settings: Settings, observer: Any = None) -> Outcome:
    """Denoise one file; a failure becomes a failed outcome, never an exception (but an
    interrupt goes on up)."""
    from vdenoise.pipeline import denoise_video

    job.output.parent.mkdir(parents=True, exist_ok=True)
    options = {**settings.options, "overwrite": True} if job.redo else settings.options
    try:  # (denoise_video first removes what killed writers left, a retried file's included)
        report = denoise_video(
            job.input, job.output, model, observer=observer, span=job.span, **options
        )
    except VdenoiseError as e:
        return failed(job, str(e))
    except Exception as e:  # a bug or a library's surprise must not stop the other files
        return failed(job, f"{type(e).__name__}: {e}")
    return Outcome(
        str(job.input), str(job.output), "done", report.frames, round(report.seconds, 3),
        round(report.fps, 3), report.sigma,
    )  # fmt: skip


def _start_worker(settings: Settings, threads: int, devices: Any, parent: int, run: str) -> None:
    import signal

    from vdenoise import lifeline

    lifeline.bind_to_parent(parent)  # ended with the batch, even while torch loads (seconds)
    try:
        import torch

        partfiles.join_run(run)
        global _worker_model, _worker_settings
        signal.signal(signal.SIGTERM, _interrupted)  # stopped by the batch: clean up as on Ctrl-C
        torch.set_num_threads(threads)
        if devices is not None:  # this worker's device, dealt round-robin
            settings = on_device(settings, devices.get())
        _worker_settings = settings
        _worker_model = load(settings)
    except KeyboardInterrupt:  # stopped while starting: nothing written yet, and no traceback
        os._exit(130)  # (the pool would print one for an initializer that raises)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _work(job: Job) -> Outcome:
    return denoise_one(_worker_model, job, _worker_settings)


# -- running a batch ---------------------------------------------------------------------------
def run_batch(
    jobs: list[Job],
    settings: Settings,
    manifest: Path,
    *,
    workers: int = 1,
    devices: list[str] | None = None,
    cluster: str | None = None,
    skip_existing: bool = False,
    share_models: bool | None = None,
    started: Callable[[Job], None] = lambda job: None,
    ended: Callable[[Outcome], None] = lambda outcome: None,
    observer: Any = None,
    said: Callable[[str], None] = lambda line: None,
) -> list[Outcome]:
    """Denoise every job (`workers` at a time when > 1, over `devices`, or as tasks on the Ray
    cluster at `cluster`); returns the outcomes in job order. `share_models`: the files in
    flight share one model per device, in threads (None: where the devices are accelerators,
    `shares_models`); else each worker process has its own.

    `ended` is told about each file as it ends; with one worker, `started` is told as each
    begins and `observer` follows its frames (progress); `said` gets the line about part-files
    of killed runs removed, if any."""
    removed = partfiles.sweep(job.output.parent for job in jobs if job.output.parent.is_dir())
    if note := partfiles.swept_note(removed):
        said(note)
    outcomes: dict[Job, Outcome] = {}
    todo = []
    redone: dict[Job, Job] = {}
    earlier = manifests.read(manifest) if skip_existing else manifests.Contents()
    for job in jobs:
        if skip_existing and job.output.exists():
            if _cut_off(job, earlier):
                todo.append(redone.setdefault(job, replace(job, redo=True)))
                continue
            skipped = Outcome(str(job.input), str(job.output), "skipped")
            record(job, skipped, manifest, outcomes, ended)
        else:
            todo.append(job)
    if cluster is not None and todo:
        _on_ray(todo, settings, manifest, cluster, outcomes, ended, said)
    elif workers <= 1:
        model = load(settings) if todo else None
        for job in todo:
            started(job)
            record(job, denoise_one(model, job, settings, observer), manifest, outcomes, ended)
    elif todo:
        if share_models is None:
            share_models = shares_models(settings, devices)
        if share_models:
            _sharing_models(todo, settings, manifest, workers, devices, outcomes, ended)
        else:
            _in_workers(todo, settings, manifest, workers, devices, outcomes, ended)
    return [outcomes[redone.get(job, job)] for job in jobs]


def _cut_off(job: Job, contents: manifests.Contents) -> bool:
    """Whether the crash that cut a manifest line may have cut this file's record (and no
    complete line records its output made): its output is then done again."""
    source, target = str(job.input), str(job.output)
    made = ("done", "skipped")
    if any(r.get("output") == target and r.get("status") in made for r in contents.records):
        return False
    return any(manifests.names(line, source, target) for line in contents.cut)


def _in_workers(
    todo: list[Job],
    settings: Settings,
    manifest: Path,
    workers: int,
    devices: list[str] | None,
    outcomes: dict[Job, Outcome],
    ended: Callable[[Outcome], None],
) -> None:
    """Worker processes sharing the cores, each with its own model and torch threads; with
    `devices`, each worker on one of them."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = get_context("spawn")
    dealt = None
    if devices:
        dealt = context.Queue()
        for i in range(workers):
            dealt.put(devices[i % len(devices)])
    pool = ProcessPoolExecutor(
        workers, context, initializer=_start_worker,
        initargs=(settings, threads, dealt, os.getpid(), partfiles.RUN),
    )  # fmt: skip
    try:
        _collect(pool, _work, todo, manifest, outcomes, ended)
    except BaseException:  # interrupted: each worker removes its partial output and stops
        # (the executor has no public way to stop running workers)
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _Stoppable:
    """The frame observer of a file run in a thread: it stops that file (its partial output
    removed, as on Ctrl-C) at its next frame once `stop` is set."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def note(self, text: str) -> None:
        pass

    def start(self, total: int | None, began: float) -> None:
        self.advance(0)

    def advance(self, frames: int) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt


def _sharing_models(
    todo: list[Job],
    settings: Settings,
    manifest: Path,
    workers: int,
    devices: list[str] | None,
    outcomes: dict[Job, Outcome],
    ended: Callable[[Outcome], None],
) -> None:
    """`workers` files in flight at once, in threads of this process, over one model per
    device: one device's model serves several files, so the decoding and encoding of some
    overlap the device's work on others, with one copy of the weights."""
    from vdenoise.device import select_device
    from vdenoise.engine import prepare

    names = devices or [str(settings.options.get("device", "auto"))]
    # Each model is moved to its device (and its layout) before any file starts: moving a
    # model while another thread runs it swaps tensors under that run (NaN outputs).
    models = {
        name: prepare(load(on_device(settings, name)), select_device(name))
        for name in dict.fromkeys(names)
    }
    lanes: queue.SimpleQueue[str] = queue.SimpleQueue()  # a free place in flight, by device
    for i in range(workers):
        lanes.put(names[i % len(names)])
    stop = threading.Event()

    def work(job: Job) -> Outcome:
        name = lanes.get()
        try:
            return denoise_one(models[name], job, on_device(settings, name), _Stoppable(stop))
        finally:
            lanes.put(name)

    pool = ThreadPoolExecutor(workers, thread_name_prefix="vdenoise-file")
    try:
        _collect(pool, work, todo, manifest, outcomes, ended)
    except BaseException:  # interrupted: the files in flight stop and remove their partials
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _collect(
    pool: Executor,
    work: Callable[[Job], Outcome],
    todo: list[Job],
    manifest: Path,
    outcomes: dict[Job, Outcome],
    ended: Callable[[Outcome], None],
) -> None:
    """Submit every job to the pool and record each as it ends."""
    pending: dict[Future[Outcome], Job] = {pool.submit(work, job): job for job in todo}
    while pending:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            job = pending.pop(future)
            try:
                outcome = future.result()
            except Exception as e:  # the worker died (killed, out of memory)
                outcome = failed(job, f"the worker stopped ({type(e).__name__})")
            record(job, outcome, manifest, outcomes, ended)


# -- a Ray cluster -------------------------------------------------------------------------------
RAY_RETRIES = 3  # attempts after a worker process dies (killed, node lost, out of memory)


def connect_ray(address: str) -> Any:
    """Ray, connected to the cluster at `address` ("local": a cluster of this machine alone,
    for the run; "auto": the one Ray finds)."""
    try:
        import ray
    except ImportError:
        raise UsageError(
            "--cluster needs Ray, which is not installed",
            "pip install 'vdenoise[cluster]'",
        ) from None
    if not ray.is_initialized():
        try:
            ray.init(
                address=None if address == "local" else address,
                log_to_driver=False,
                logging_level=logging.ERROR,
                include_dashboard=False,
            )
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise VdenoiseError(
                f"cannot reach the Ray cluster at {address} ({e})",
                "start one with `ray start --head`, or use --cluster local",
            ) from None
    return ray


def _on_ray(
    todo: list[Job],
    settings: Settings,
    manifest: Path,
    address: str,
    outcomes: dict[Job, Outcome],
    ended: Callable[[Outcome], None],
    said: Callable[[str], None],
) -> None:
    """One Ray task per file. Ray runs a task again when its worker or node dies (each attempt
    first removes what a killed one left on its host); a file is recorded done only once its
    output is in place here, whole (`_in_place`), with the attempts it took. Once every task
    has ended, what killed attempts left on other hosts goes too."""
    ray = connect_ray(address)
    device = str(settings.options.get("device", "auto"))
    gpus = 1 if device.startswith("cuda") or (device == "auto" and _cluster_has_gpus(ray)) else 0
    task = ray.remote(_ray_task).options(
        num_cpus=1, num_gpus=gpus, max_retries=RAY_RETRIES, retry_exceptions=False
    )
    pending = {task.remote(job, settings, partfiles.RUN): job for job in todo}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                try:
                    outcome, size = ray.get(ref)
                except Exception as e:  # every attempt's worker died
                    attempts = RAY_RETRIES + 1
                    outcome = failed(
                        job, f"the Ray task failed {attempts} times ({type(e).__name__})"
                    )
                    outcome.retries = RAY_RETRIES
                else:
                    outcome = _in_place(job, outcome, size)
                record(job, outcome, manifest, outcomes, ended)
    except BaseException:
        for ref in pending:  # an interrupt: the running tasks stop and remove their partials
            ray.cancel(ref)
        raise
    folders = (job.output.parent for job in todo if job.output.parent.is_dir())
    if note := partfiles.swept_note(partfiles.sweep(folders, ended_run=partfiles.RUN)):
        said(note)


def _in_place(job: Job, outcome: Outcome, size: int | None, tries: int = 10) -> Outcome:
    """A task's done outcome, if its output is here with the size the task published (a
    worker writing where this machine does not see is a failure, not a silent loss). A shared
    file system may show another machine's rename late (NFS caches a name it found missing):
    the folder is listed again, `tries` times over a few seconds, before it counts."""
    if outcome.status != "done":
        return outcome
    for attempt in range(tries):
        if attempt:
            time.sleep(0.5)
            with contextlib.suppress(OSError):
                os.listdir(job.output.parent)  # revalidates the folder's cached entries
        try:
            here: int | None = job.output.stat().st_size
        except OSError:
            here = None
        if here == size:
            return outcome
    found = "nothing" if here is None else f"{here} bytes of {size}"
    error = (
        f"the Ray task wrote its output where this machine does not see it (found {found}): "
        "the workers need this folder shared"
    )
    return replace(failed(job, error), retries=outcome.retries)


def _cluster_has_gpus(ray: Any) -> bool:
    return bool(ray.cluster_resources().get("GPU"))


_ray_models: dict[str, Any] = {}  # per Ray worker process: the batch's model, loaded once


def _ray_task(job: Job, settings: Settings, run: str) -> tuple[Outcome, int | None]:
    """One file on a Ray worker: its outcome, with the attempts before this one, and the size
    of the output it published (None: none)."""
    partfiles.join_run(run)
    key = json.dumps([settings.method, settings.weights, settings.options.get("device")])
    if key not in _ray_models:
        _ray_models[key] = load(settings)
    outcome = denoise_one(_ray_models[key], job, settings)
    outcome.retries = _attempt()
    size = job.output.stat().st_size if outcome.status == "done" else None
    return outcome, size


def _attempt() -> int:
    """The running Ray task's attempts before this one (Ray has no public call for it; its
    core worker's `get_current_task_attempt_number`, Ray 2.x; 0 where that is missing)."""
    import ray

    try:
        worker = ray._private.worker.global_worker
        return int(worker.core_worker.get_current_task_attempt_number())
    except Exception:  # another Ray version
        return 0
