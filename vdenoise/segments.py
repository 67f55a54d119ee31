"""One long video on many workers: cut at keyframes, denoise the segments as batch jobs (worker
processes or Ray tasks), join them by stream copy.

Each segment reads its model's temporal context from the frames beside it without writing
them, and its cuts fall on the model's call grid, so every frame is denoised from the same
frames, in the same model call, as in one whole run. The join copies the encoded segments into
one file with every frame at its source timestamp, and copies the source's audio and subtitles
once, as a whole run does.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import itertools
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from vdenoise import partfiles
from vdenoise.batch import Job, Settings, run_batch
from vdenoise.errors import UsageError, VdenoiseError
from vdenoise.io import is_image_sequence
from vdenoise.io.passthrough import AudioMode, Passthrough
from vdenoise.io.reader import main_video_stream, open_container
from vdenoise.io.writer import copy_tags
from vdenoise.pipeline import (
    DenoiseReport,
    Observer,
    SilentObserver,
    Span,
    check_paths,
    partial_prefix,
    staged_output,
)

MIN_FRAMES = 16  # no segment shorter than this (each worker reads context and starts up)


@dataclass(frozen=True)
class Timeline:
    """A video stream's frames, from its packets (nothing decoded)."""

    time_base: Fraction
    origin: Fraction  # seconds that players show as 0
    pts: list[int]  # every frame's timestamp, in presentation order
    keyframes: list[int]  # indices into pts of the frames that start a group of pictures

    def seconds(self, index: int) -> float:
        """Where a reader cuts just before frame `index` > 0: halfway from the frame before,
        in the reader's seconds (from the origin)."""
        middle = Fraction(self.pts[index - 1] + self.pts[index], 2)
        return float(middle * self.time_base - self.origin)


@dataclass(frozen=True)
class Part:
    """One segment: what its worker reads and writes, and where its frames go back."""

    span: Span
    frames: list[int]  # the timestamps of the frames it writes (source time base)


def probe(path: Path) -> Timeline:
    """Every frame's timestamp and the keyframes, from one pass over the packets."""
    with contextlib.closing(open_container(path)) as container:
        stream = main_video_stream(container)
        if stream is None:
            raise VdenoiseError(f"{path.name} has no video stream")
        start = container.start_time
        origin = Fraction(start, av.time_base) if start is not None else Fraction(0)
        stamps: list[tuple[int, bool]] = []
        try:
            for packet in container.demux(stream):
                if packet.size:
                    if packet.pts is None:
                        raise _irregular(path)
                    stamps.append((packet.pts, packet.is_keyframe))
        except av.FFmpegError as e:
            raise VdenoiseError(f"{path.name} is damaged ({e.strerror})") from None
        stamps.sort()
        pts = [p for p, _ in stamps]
        if not pts or len(set(pts)) < len(pts):
            raise _irregular(path)
        keys = [i for i, (_, key) in enumerate(stamps) if key]
        return Timeline(Fraction(stream.time_base), origin, pts, keys)


def _irregular(path: Path) -> VdenoiseError:
    return UsageError(
        f"{path.name} has frames without distinct timestamps: it cannot be cut into segments",
        "denoise it in one piece (without --jobs, --segments or --cluster)",
    )


def plan(timeline: Timeline, pieces: int, before: int, after: int, per_call: int) -> list[Part]:
    """Up to `pieces` segments of about equal length, each cut at the keyframe nearest its
    share, moved back onto the model's call grid (a multiple of `per_call` frames)."""
    n = len(timeline.pts)
    cuts = [0]
    for i in range(1, pieces):
        share = round(i * n / pieces)
        key = min(timeline.keyframes, key=lambda k: abs(k - share), default=share)
        if abs(key - share) > n / (2 * pieces):  # none near: cut anyway, decoding from before
            key = share
        cut = key - key % per_call
        if cut - cuts[-1] >= MIN_FRAMES and n - cut >= MIN_FRAMES:
            cuts.append(cut)
    cuts.append(n)
    parts = []
    for first, stop in itertools.pairwise(cuts):
        read_from = max(0, first - before)
        calls = -(-(stop - first) // per_call)  # the last call still sees its own context
        read_to = min(n, first + calls * per_call + after)
        span = Span(
            start=timeline.seconds(read_from) if read_from else None,
            end=timeline.seconds(read_to) if read_to < n else None,
            context=first - read_from,
            count=stop - first,
        )
        parts.append(Part(span, timeline.pts[first:stop]))
    return parts


# -- joining -------------------------------------------------------------------------------------
def join(
    parts: list[Path], frames: list[list[int]], source: Path, target: Path, audio: AudioMode
) -> list[str]:
    """Copy the segments' video into `target` one after another, each frame back at its source
    timestamp (`frames`: each segment's, in the source's time base), with the source's audio
    and subtitles copied once; returns what the user should know."""
    with contextlib.closing(open_container(source)) as src:
        original = main_video_stream(src)
        assert original is not None
        time_base = Fraction(original.time_base)
        out = av.open(str(target), "w")
        try:
            with contextlib.closing(av.open(str(parts[0]))) as first:
                template = first.streams.video[0]
                video = out.add_stream_from_template(template)
                extradata = template.codec_context.extradata
            video.time_base = time_base
            passthrough = Passthrough(src, out, audio)
            copy_tags(src, out, video)
            indices = passthrough.stream_indices
            side = (p for p in src.demux(*[src.streams[i] for i in indices]) if _timed(p))
            videos = _video_packets(parts, frames, time_base, extradata)
            for packet in heapq.merge(videos, side if indices else iter(()), key=_when):
                if packet.stream.type == "video":
                    packet.stream = video
                    out.mux(packet)
                else:
                    passthrough.mux(packet)
            passthrough.flush()
        except BaseException:
            with contextlib.suppress(Exception):
                out.close()
            raise
        try:
            out.close()
        except OSError as e:
            raise VdenoiseError(f"cannot finish {target.name} ({e.strerror or e})") from None
        return passthrough.notes


def _timed(packet: av.Packet) -> bool:
    return bool(packet.size) and packet.pts is not None


def _when(packet: av.Packet) -> Fraction:
    stamp = packet.dts if packet.dts is not None else packet.pts
    return stamp * Fraction(packet.time_base)


def _nearest(values: list[int], x: Fraction) -> int:
    """The value of the sorted `values` nearest x."""
    i = bisect.bisect_left(values, x)
    return min(values[max(0, i - 1) : i + 1], key=lambda v: abs(v - x))


def _video_packets(
    parts: list[Path], frames: list[list[int]], time_base: Fraction, extradata: bytes | None
) -> Iterator[av.Packet]:
    """The segments' packets in decoding order, in `time_base`, each frame back at its source
    timestamp (`frames`: each segment's, from the timeline), exact whatever precision the
    segment's container kept (Matroska's is a millisecond).

    Where that container keeps no decoding timestamps (Matroska), they are made from the
    sorted presentation timestamps less the encoder's reordering delay."""
    last_dts: int | None = None
    for path, stamps in zip(parts, frames, strict=True):
        offset = stamps[0]
        with contextlib.closing(av.open(str(path))) as part:
            stream = part.streams.video[0]
            if stream.codec_context.extradata != extradata:
                raise VdenoiseError("the segments were encoded with different parameters")
            scale = Fraction(stream.time_base) / time_base
            given = [(p.pts, p.dts) for p in part.demux(stream) if _timed(p)]
        relative = [pts - offset for pts in stamps]

        order = [_nearest(relative, pts * scale) + offset for pts, _ in given]
        if any(dts is None for _, dts in given):
            ranked = sorted(order)
            delay = max(r - p for r, p in zip(ranked, order, strict=True))
            dts_list = [r - delay for r in ranked]
        else:
            dts_list = [round(dts * scale) + offset for _, dts in given]
        with contextlib.closing(av.open(str(path))) as part:
            stream = part.streams.video[0]
            packets = (p for p in part.demux(stream) if _timed(p))
            for packet, pts, dts in zip(packets, order, dts_list, strict=True):
                dts = min(dts, pts)  # a coarse container may round it past its frame
                if last_dts is not None and dts <= last_dts:
                    dts = last_dts + 1
                if dts > pts:
                    raise VdenoiseError("the segments' timestamps do not join up")
                packet.pts, packet.dts, last_dts = pts, dts, dts
                if packet.duration:
                    packet.duration = round(packet.duration * scale)
                packet.time_base = time_base
                yield packet


# -- the whole run -------------------------------------------------------------------------------
def pieces_for(workers: int, cluster: str | None) -> int:
    """Segments by default: one per worker, or per CPU of the Ray cluster."""
    if cluster is None:
        return workers
    from vdenoise.batch import connect_ray

    return max(1, int(connect_ray(cluster).cluster_resources().get("CPU", 1)))


def denoise_segmented(
    src: Path,
    dst: Path,
    model: Any,
    settings: Settings,
    *,
    pieces: int,
    workers: int = 1,
    cluster: str | None = None,
    observer: Observer | None = None,
) -> DenoiseReport:
    """Denoise `src` into `dst` as up to `pieces` segments, `workers` at a time (or as tasks on
    the Ray cluster at `cluster`). `model`: the run's model, here for its temporal geometry and
    fitted noise level (each worker loads its own from `settings`)."""
    from vdenoise.device import describe, precision_name, select_device, select_precision

    observer = observer or SilentObserver()
    options = dict(settings.options)
    if cluster is not None and workers > 1:
        raise UsageError("--jobs is for one machine; on a cluster, Ray places the segments")
    if options.get("start") is not None or options.get("end") is not None:
        raise UsageError("--start and --end apply to one-piece runs", "drop --jobs or --segments")
    if src.is_dir() or is_image_sequence(dst):
        raise UsageError("segments are for video files", "give a video input and output")
    check_paths(src, dst, bool(options.get("overwrite")))
    if note := partfiles.swept_note(partfiles.sweep([dst.parent])):
        observer.note(note)
    began = time.perf_counter()
    timeline = probe(src)
    sigma = options.get("sigma")
    estimated = sigma is None
    sigma = _level(src, model, sigma, observer)
    parts = plan(
        timeline, pieces, model.frames_before, model.frames_after, max(1, model.frames_per_call)
    )
    observer.note(f"{len(parts)} segment(s) of {len(timeline.pts)} frames")
    folder = dst.parent / f"{partial_prefix(dst)}{secrets.token_hex(4)}-segments"
    try:
        partfiles.claim(folder)  # a killed run's folder is known as such (`vdenoise.partfiles`)
        folder.mkdir()
    except OSError as e:
        partfiles.release(folder)
        raise VdenoiseError(f"cannot write in {dst.parent} ({e.strerror})") from None
    try:
        jobs = [
            Job(src, folder / f"{i:05d}{dst.suffix}", part.span) for i, part in enumerate(parts)
        ]
        each = {**options, "sigma": sigma, "audio": "none", "overwrite": False}
        observer.start(len(timeline.pts), began)
        outcomes = run_batch(
            jobs, replace(settings, options=each), folder / "segments.jsonl",
            workers=workers, cluster=cluster, ended=lambda o: observer.advance(o.frames),
            said=observer.note,
        )  # fmt: skip
        for outcome in outcomes:
            if outcome.status != "done":
                raise VdenoiseError(f"a segment failed: {outcome.error}")
        with staged_output(dst, False) as tmp:
            outputs = [job.output for job in jobs]
            notes = join(outputs, [p.frames for p in parts], src, tmp, options.get("audio", "copy"))
        with contextlib.closing(av.open(str(dst))) as done:
            stream = done.streams.video[0]
            codec, pix_fmt = stream.codec_context.name, stream.codec_context.format.name
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        partfiles.release(folder)
    device = select_device(options.get("device", "auto"))
    return DenoiseReport(
        input=str(src), output=str(dst), frames=sum(o.frames for o in outcomes),
        seconds=time.perf_counter() - began, device=describe(device),
        precision=precision_name(select_precision(options.get("precision", "auto"), device)),
        tile=options.get("tile") or 0, pix_fmt=pix_fmt, codec=codec, sigma=round(sigma, 2),
        sigma_estimated=estimated, notes=notes,
    )  # fmt: skip


def _level(src: Path, model: Any, sigma: float | None, observer: Observer) -> float:
    """The noise level every segment is denoised at: given, fitted, or estimated once from the
    video's first frames (as a whole run does)."""
    import torch

    from vdenoise.io import open_input
    from vdenoise.io.convert import planes_to_rgb
    from vdenoise.pipeline import noise_level

    with contextlib.closing(open_input(src)) as reader:
        info = reader.info
        frames = (
            planes_to_rgb([torch.from_numpy(p) for p in f.planes], info.layout, info.colour)
            for f in reader
        )
        level, _ = noise_level(model, frames, sigma, observer)
    return level
