"""`denoise_video`: decode -> denoise -> encode, three stages overlapping in threads.

    decode thread     main thread (device)                     encode thread
    VideoReader  -->  upload, YCbCr->RGB, Engine, RGB->YCbCr -->  VideoWriter (+ audio copy)

Queues between the stages are short, so memory is bounded by a few frames and the engine's
window, never by the length of the video. The output is written to a hidden file beside the
target and renamed only when everything succeeded.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import secrets
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from vdenoise import partfiles, signals
from vdenoise.checkpoint import fitted_level
from vdenoise.device import describe, precision_name, select_device, select_precision
from vdenoise.engine import Engine
from vdenoise.errors import UsageError, VdenoiseError
from vdenoise.io import is_image_sequence, open_input
from vdenoise.io.convert import planes_to_rgb, rgb_to_planes
from vdenoise.io.encoding import EncodeOptions
from vdenoise.io.frames import ImageSequenceReader, ImageSequenceWriter, split_pattern
from vdenoise.io.media import Frame, VideoInfo
from vdenoise.io.passthrough import AudioMode
from vdenoise.io.reader import VideoReader
from vdenoise.io.writer import VideoWriter
from vdenoise.models.base import VideoDenoiser
from vdenoise.noise import estimate_sigma
from vdenoise.threads import Consumer, Prefetcher

Reader = VideoReader | ImageSequenceReader

QUEUE_DEPTH = 8  # frames between stages
ESTIMATION_FRAMES = 5  # first frames the noise level is estimated from


@dataclass(frozen=True)
class Span:
    """One worker's part of a longer video (`vdenoise.segments`): frames read from `start` to
    `end` (seconds; None: the video's own ends), the first `context` of them only as the model's
    temporal context, then `count` written with timestamps moved to begin at 0 (the join moves
    them back: MP4's edit lists would round a late start to milliseconds)."""

    start: float | None
    end: float | None
    context: int
    count: int


class Observer(Protocol):
    """Receives progress from a run (the CLI draws a progress bar from it)."""

    def note(self, message: str) -> None: ...
    def start(self, total: int | None, began: float) -> None: ...
    def advance(self, frames: int) -> None: ...


class SilentObserver:
    def note(self, message: str) -> None:
        pass

    def start(self, total: int | None, began: float) -> None:
        pass

    def advance(self, frames: int) -> None:
        pass


@dataclass
class DenoiseReport:
    """What a run did, for the summary line and `--json`."""

    input: str
    output: str
    frames: int
    seconds: float
    device: str
    precision: str
    tile: int
    pix_fmt: str
    codec: str
    sigma: float
    sigma_estimated: bool
    notes: list[str] = field(default_factory=list)
    decode_errors: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fps": round(self.fps, 3), "seconds": round(self.seconds, 3)}


def check_paths(src: Path, dst: Path, overwrite: bool) -> None:
    """Refuse what would lose data or cannot work, before anything is decoded.

    `dst` is the output file, or the folder of an image-sequence output.
    """
    if not src.exists():
        raise UsageError(f"{src} does not exist")
    if dst.resolve() == src.resolve() or (dst.exists() and os.path.samefile(src, dst)):
        raise UsageError("the output would overwrite the input", "choose another output name")
    empty_folder = dst.is_dir() and not any(dst.iterdir())
    if dst.exists() and not empty_folder and not overwrite:
        raise UsageError(f"{dst} already exists", "pass --overwrite to replace it")
    if not dst.parent.is_dir():
        raise UsageError(f"the folder {dst.parent} does not exist")


partial_prefix = partfiles.part_prefix  # the start of any part-file's name of an output


@contextlib.contextmanager
def staged_output(dst: Path, as_folder: bool) -> Iterator[Path]:
    """A hidden part-file (or folder) beside `dst`, claimed by this process
    (`vdenoise.partfiles`), put in place as `dst` (data on the disk first) only if the block
    succeeds.

    Its name has a fixed length (any name `dst` may have fits), and errors raised in the block
    name `dst`, the path the user gave, not the temporary one."""
    token = secrets.token_hex(4)
    tmp = dst.parent / f"{partial_prefix(dst)}{token}{'' if as_folder else dst.suffix}"
    try:
        partfiles.claim(tmp)
        if as_folder:
            tmp.mkdir()
        else:
            tmp.touch()
    except OSError as e:
        partfiles.release(tmp)
        raise VdenoiseError(f"cannot write in {dst.parent} ({e.strerror})") from None
    try:
        yield tmp
        signals.check()  # no output appears after an interrupt, even one Python dropped
        try:
            if as_folder and dst.exists():
                partfiles.sync(tmp)
                old = dst.parent / f".vdenoise-old-{token}"
                dst.rename(old)
                tmp.rename(dst)
                shutil.rmtree(old, ignore_errors=True)
            else:
                partfiles.publish(tmp, dst)
        except OSError as e:  # the disk refused the data at the last step
            raise VdenoiseError(f"cannot finish {dst.name} ({e.strerror or e})") from None
    except VdenoiseError as e:
        e.message = e.message.replace(str(tmp), str(dst)).replace(tmp.name, dst.name)
        e.args = (e.message,)
        raise
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        partfiles.release(tmp)


def source_notes(info: VideoInfo) -> list[str]:
    """What the user should know about how the input is read."""
    notes = []
    if info.colour_guessed:
        notes.append(f"no colour tags: decoding as {info.colour.name}, as players do")
    if info.tags.is_hdr:
        notes.append(
            f"HDR video kept as {info.bits}-bit with its tags; "
            "mastering-display metadata is not carried over"
        )
    if info.interlaced:
        notes.append("interlaced video: fields are denoised together as progressive frames")
    return notes


def expected_frames(reader: Reader) -> int | None:
    """Frames to expect, for the progress bar only: the declared count, else an estimate."""
    info = reader.info
    if info.frame_count or not (info.duration and info.average_rate):
        return info.frame_count
    start = getattr(reader, "start", None) or 0.0
    end = min(getattr(reader, "end", None) or info.duration, info.duration)
    return max(1, round((end - start) * info.average_rate))


def _open_writer(
    tmp: Path,
    pattern: str | None,
    reader: Reader,
    encode: EncodeOptions,
    audio: AudioMode,
    side_streams: bool = True,
    gpu: bool = False,
) -> VideoWriter | ImageSequenceWriter:
    info = reader.info
    if pattern is not None:
        if encode != EncodeOptions():
            raise UsageError(
                "encoder options do not apply to image sequences",
                "write a video file (.mp4, .mkv) to use --codec, --crf, --preset or --pix-fmt",
            )
        writer = ImageSequenceWriter(tmp, pattern, info)
        if info.audio_streams and audio != "none":
            writer.notes.append("audio not written: image sequences hold no audio")
        return writer
    source = reader.container if isinstance(reader, VideoReader) and side_streams else None
    return VideoWriter(tmp, info, encode, source=source, audio=audio, gpu=gpu)


def upload(plane: Any, device: torch.device) -> torch.Tensor:
    """A decoded plane (numpy) on the device: through pinned memory to a GPU, so the copy
    runs asynchronously and at full bus speed."""
    tensor = torch.from_numpy(plane)
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def _drain(side: queue.SimpleQueue[Any], handle: Callable[[Any], None]) -> None:
    while True:
        try:
            handle(side.get_nowait())
        except queue.Empty:
            return


def denoise_video(
    src: str | Path,
    dst: str | Path,
    model: VideoDenoiser,
    *,
    sigma: float | None = None,
    encode: EncodeOptions | None = None,
    audio: AudioMode = "copy",
    device: str = "auto",
    precision: str = "auto",
    tile: int | None = None,
    start: float | None = None,
    end: float | None = None,
    fps: float | None = None,
    overwrite: bool = False,
    ignore_errors: bool = False,
    observer: Observer | None = None,
    span: Span | None = None,
) -> DenoiseReport:
    """Denoise a video file (or image-sequence folder) into `dst`, keeping all else as it was.

    `sigma` is the noise level on the 0-255 scale, estimated from the first frames when None;
    `tile` None picks tiles from free memory. `span`: only that part, its video alone.
    """
    src, dst = Path(src), Path(dst)
    observer = observer or SilentObserver()
    pattern = None
    if is_image_sequence(dst):
        dst, pattern = split_pattern(dst)
    check_paths(src, dst, overwrite)
    if note := partfiles.swept_note(partfiles.sweep([dst.parent])):
        observer.note(note)
    if span is not None:
        if sigma is None or pattern is not None or start is not None or end is not None:
            raise UsageError("a segment needs the video's noise level and a video output")
        start, end, audio = span.start, span.end, "none"
    if start is not None and start < 0:
        raise UsageError("--start must not be negative")
    if start is not None and end is not None and end <= start:
        raise UsageError("--end must come after --start")
    if sigma is not None and not 0 <= sigma <= 255:
        raise UsageError("--sigma is a noise level on the 0-255 scale", "e.g. --sigma 15")
    estimated = sigma is None
    dev = select_device(device)
    dtype = select_precision(precision, dev)
    engine = Engine(model, dev, dtype, tile)
    began = time.perf_counter()
    with contextlib.closing(
        open_input(src, start=start, end=end, fps=fps, ignore_errors=ignore_errors)
    ) as reader:
        info = reader.info
        notes = source_notes(info)
        with staged_output(dst, pattern is not None) as tmp:
            writer = _open_writer(
                tmp,
                pattern,
                reader,
                encode or EncodeOptions(),
                audio,
                span is None,
                gpu=dev.type == "cuda",
            )
            notes += writer.notes
            observer.note(f"{describe(dev)}, {precision_name(dtype)}")
            for note in notes:
                observer.note(note)
            try:
                frames, sigma = _run(reader, engine, writer, sigma, observer, began, span)
                writer.close()
            except BaseException:
                writer.abort()
                raise
    if isinstance(reader, VideoReader):
        if reader.decode_errors:
            notes.append(f"{reader.decode_errors} damaged packet(s) skipped")
        if reader.timestamp_fixes:
            notes.append(f"{reader.timestamp_fixes} duplicate timestamp(s) made increasing")
    return DenoiseReport(
        input=str(src),
        output=str(dst),
        frames=frames,
        seconds=time.perf_counter() - began,
        device=describe(dev),
        precision=precision_name(dtype),
        tile=engine.stats.tile,
        pix_fmt=writer.layout.pix_fmt,
        codec=writer.codec,
        sigma=round(sigma, 2),
        sigma_estimated=estimated,
        notes=notes,
        decode_errors=getattr(reader, "decode_errors", 0),
    )


def _run(
    reader: Reader,
    engine: Engine,
    writer: VideoWriter | ImageSequenceWriter,
    sigma: float | None,
    observer: Observer,
    began: float,
    span: Span | None = None,
) -> tuple[int, float]:
    """Stream every frame through the three stages; returns the frames written and sigma.
    `began` (perf_counter) is when the run started: frames/s count from there."""
    skip, count = (span.context, span.count) if span else (0, None)
    info = reader.info
    side: queue.SimpleQueue[Any] = queue.SimpleQueue()
    if isinstance(reader, VideoReader):
        reader.forward_packets(side.put)

    def write(out: tuple[list[torch.Tensor], int, int | None]) -> None:
        planes, pts, duration = out
        frame = Frame([p.cpu().numpy() for p in planes], pts, duration)  # the download, here:
        _drain(side, writer.mux_side)  # the main thread goes on feeding the device meanwhile
        writer.write(frame)

    timing: deque[tuple[int, int | None]] = deque()

    def uploaded() -> Iterator[torch.Tensor]:
        for frame in decoded:
            timing.append((frame.pts, frame.duration))
            planes = [upload(p, engine.device) for p in frame.planes]
            yield planes_to_rgb(planes, info.layout, info.colour)

    encoder: Consumer[tuple[list[torch.Tensor], int, int | None]] | None = None
    written = 0
    first_pts: int | None = None
    decoded = Prefetcher(reader, QUEUE_DEPTH, name="decode")
    try:  # whatever happens from here, the decode thread stops before the reader closes
        frames: Iterator[torch.Tensor] = uploaded()
        sigma, frames = noise_level(engine.model, frames, sigma, observer)
        encoder = Consumer(write, QUEUE_DEPTH, name="encode")
        observer.start(count or expected_frames(reader), began)
        outputs = engine.run(frames, sigma / 255.0, skip)
        for out in itertools.islice(outputs, count):
            planes = rgb_to_planes(out, writer.layout, writer.colour)
            for _ in range(skip):  # context frames: read, not written
                timing.popleft()
            skip = 0
            pts, duration = timing.popleft()
            if span is not None:  # a segment's timestamps begin at 0
                first_pts = pts if first_pts is None else first_pts
                pts -= first_pts
            encoder.put((planes, pts, duration))
            written += 1
            observer.advance(1)
            signals.check()
        outputs.close()
        if count is not None and written < count:
            raise VdenoiseError(
                f"a segment of {info.path.name} came {count - written} frames short"
            )
        encoder.finish()
    except BaseException:
        if encoder is not None:
            encoder.abort()
        raise
    finally:
        decoded.close()
    _drain(side, writer.mux_side)
    return written, sigma


def noise_level(
    model: VideoDenoiser,
    frames: Iterator[torch.Tensor],
    sigma: float | None,
    observer: Observer,
) -> tuple[float, Iterator[torch.Tensor]]:
    """The noise level (0-255): given, fitted, or estimated from the first frames; and the
    frames, those read for the estimate put back in front."""
    if sigma is None and (sigma := fitted_level(model)) is not None:
        observer.note(f"noise level {sigma:.1f} (0-255), the level these weights were fitted to")
    if (table := getattr(model, "relative_variance", None)) is not None:
        low, high = (float(v) ** 0.5 for v in table.aminmax())
        observer.note(
            f"noise std by brightness, as fitted: x{low:.2f} to x{high:.2f} of that level"
        )
    if sigma is None:
        head = list(itertools.islice(frames, ESTIMATION_FRAMES))
        sigma = estimate_sigma(head)
        observer.note(
            f"noise level {sigma:.1f} (0-255), estimated from {len(head)} frames; "
            "set it with --sigma"
        )
        frames = itertools.chain(head, frames)
    return sigma, frames
