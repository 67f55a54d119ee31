"""Streaming video decoding with PyAV: frames, exact timestamps and the stream's metadata."""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vdenoise.errors import UsageError, VdenoiseError
from vdenoise.io.colour import PixelLayout, resolve_colour
from vdenoise.io.files import refuse_unseekable
from vdenoise.io.media import ColourTags, Frame, VideoInfo

log = logging.getLogger(__name__)

HEAD_FRAMES = 8  # decoded up front: proves the file decodes and reveals disordered timestamps
REORDER_DEPTH = 16  # frames held to restore presentation order of disordered timestamps
_SWSCALE_COLORSPACE = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9}  # AVColorSpace -> swscale's enum

PacketSink = Callable[[av.Packet], None]


def open_container(path: Path) -> av.container.InputContainer:
    """Open a media file for reading, turning FFmpeg's failures into one clear line."""
    refuse_unseekable(path)
    try:
        return av.open(str(path), metadata_errors="replace")
    except FileNotFoundError:
        raise VdenoiseError(f"{path} does not exist") from None
    except PermissionError:
        raise VdenoiseError(f"{path} cannot be read (permission denied)") from None
    except (av.FFmpegError, UnicodeDecodeError) as e:
        raise VdenoiseError(
            f"{path.name} is not a readable video ({_reason(e)})",
            "check that the file plays; a partly copied file often loses its index",
        ) from None


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error)


def main_video_stream(container: av.container.Container) -> av.VideoStream | None:
    """The first video stream that is a moving picture (not cover art)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def frame_planes(frame: av.VideoFrame, layout: PixelLayout) -> list[np.ndarray]:
    """Views of a frame's planes as 2-D arrays (packed RGB: one H x W x 3 array), no copy."""
    arrays = []
    samples = 3 if layout.kind == "rgb" else 1  # per pixel, in one plane
    for plane in frame.planes[: 1 if layout.kind == "rgb" else 3]:
        row = plane.line_size // layout.dtype.itemsize
        flat = np.frombuffer(plane, layout.dtype, count=row * plane.height)
        arrays.append(flat.reshape(plane.height, row)[:, : plane.width * samples])
    if layout.kind == "rgb":
        arrays[0] = arrays[0].reshape(frame.height, frame.width, 3)
    return arrays


class VideoReader:
    """Decodes the first video stream of a file, frame by frame, in presentation order.

    Packets of other streams (audio, subtitles) are handed to a sink, so one pass over the file
    feeds both the denoiser and the writer's passthrough.
    """

    def __init__(
        self,
        path: Path,
        *,
        start: float | None = None,
        end: float | None = None,
        ignore_errors: bool = False,
    ) -> None:
        self.path = Path(path)
        self.start, self.end = start, end
        self.ignore_errors = ignore_errors
        self.decode_errors = 0
        self.timestamp_fixes = 0
        self._sink: PacketSink | None = None
        self._pending: list[av.Packet] = []
        self.container = open_container(self.path)
        try:
            self.stream = main_video_stream(self.container)
            if self.stream is None:
                kinds = ", ".join(sorted({s.type for s in self.container.streams}))
                raise VdenoiseError(
                    f"{self.path.name} has no video stream",
                    f"vdenoise denoises video; this file holds only {kinds}"
                    if kinds
                    else "the file holds no streams at all: an empty or unfinished recording?",
                )
            self.stream.thread_type = "AUTO"
            self.origin = self._origin()
            self.offset: Fraction | None = None  # seconds removed from timestamps when trimming
            frames = self._decode()
            self._head = list(itertools.islice(frames, HEAD_FRAMES))
            if not self._head:
                raise self._nothing_decoded()
            self.info = self._describe(self._head[0])
            self._disordered = any(b.pts <= a.pts for a, b in itertools.pairwise(self._head))
            self._rest = frames
        except BaseException:
            self.container.close()
            raise

    def _nothing_decoded(self) -> VdenoiseError:
        """Why no frame came: the time range, an empty stream, or damage."""
        duration = self.container.duration / av.time_base if self.container.duration else None
        if self.start and duration is not None and self.start >= duration:
            return UsageError(
                f"--start {self.start:g} s is past the end of {self.path.name} "
                f"({duration:.2f} s long)",
                "vdenoise probe shows a video's duration",
            )
        if not self.stream.frames and not duration:
            return VdenoiseError(f"{self.path.name} holds no frames (an empty video)")
        where = f" between {self.start or 0:g} s and {self.end:g} s" if self.end else ""
        return VdenoiseError(
            f"no frame of {self.path.name} could be decoded{where}",
            "the file may be damaged; --ignore-errors skips damaged parts",
        )

    # -- timing -------------------------------------------------------------------------------
    def _origin(self) -> Fraction:
        """Time (s) that players show as 0: the container's start time."""
        start = self.container.start_time
        return Fraction(start, av.time_base) if start is not None else Fraction(0)

    def _seconds(self, ts: int, time_base: Fraction) -> Fraction:
        return ts * time_base - self.origin

    def _seek(self) -> None:
        if not self.start:
            return
        target = int((Fraction(self.start) + self.origin) / self.stream.time_base)
        try:
            self.container.seek(target, stream=self.stream, backward=True)
        except av.FFmpegError as e:
            raise VdenoiseError(f"cannot seek in {self.path.name} ({_reason(e)})") from None

    # -- decoding -----------------------------------------------------------------------------
    def _packets(self) -> Iterator[av.Packet]:
        """Demuxed packets of the video and side streams; a read failure means a damaged file."""
        side = [s for s in self.container.streams if s.type in _SIDE_TYPES]
        packets = self.container.demux(self.stream, *side)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.FFmpegError as e:
                self._damaged(None, e)
                return
            yield packet

    def _decode(self) -> Iterator[av.VideoFrame]:
        """Decoded frames within [start, end), side packets forwarded as they are demuxed."""
        self._seek()
        video = self.stream
        n_side = sum(s.type in _SIDE_TYPES for s in self.container.streams)
        passed_end: set[int] = set()
        for packet in self._packets():
            if packet.stream is not video:
                if packet.size and self._forward(packet):
                    passed_end.add(packet.stream.index)
                continue
            if video.index in passed_end:
                if len(passed_end) == 1 + n_side:
                    break
                continue
            for frame in self._decode_packet(packet):
                t = self._seconds(frame.pts, frame.time_base)
                if self.start is not None and t < self.start:
                    continue
                if self.end is not None and t >= self.end:
                    passed_end.add(video.index)
                    break
                if self.start is not None and self.offset is None:
                    self.offset = t
                    self._flush_pending()
                yield frame

    def _decode_packet(self, packet: av.Packet) -> list[av.VideoFrame]:
        if packet.is_corrupt:  # e.g. cut short by a truncated file; frame threads hide the error
            self._damaged(packet, ValueError("corrupt packet"))
        try:
            frames = packet.decode()
        except av.FFmpegError as e:
            self._damaged(packet, e)
            return []
        for frame in frames:
            if frame.pts is None:
                frame.pts = frame.dts
        return [f for f in frames if f.pts is not None]

    def _damaged(self, packet: av.Packet | None, error: Exception) -> None:
        """Count a decode or read failure; raise unless the user asked to carry on."""
        self.decode_errors += 1
        when = ""
        if packet is not None and packet.pts is not None:
            when = f" at {float(self._seconds(packet.pts, packet.time_base)):.2f} s"
        if not self.ignore_errors:
            raise VdenoiseError(
                f"{self.path.name} is damaged: decoding failed{when} ({_reason(error)})",
                "pass --ignore-errors to denoise the frames that do decode",
            ) from None
        log.warning("skipped undecodable data%s in %s", when, self.path.name)

    def _forward(self, packet: av.Packet) -> bool:
        """Queue a side packet for the sink; True once its stream is past the end of the range."""
        if packet.pts is None:
            return False
        t = self._seconds(packet.pts, packet.time_base)
        if self.end is not None and t >= self.end:
            return True
        if self.start is None or t >= self.start:
            self._pending.append(packet)
            self._flush_pending()
        return False

    def _flush_pending(self) -> None:
        """Deliver queued side packets once the sink and the trim offset are both known."""
        if self._sink is None or (self.start is not None and self.offset is None):
            return
        for packet in self._pending:
            if self.offset is not None:
                if self._seconds(packet.pts, packet.time_base) < self.offset:
                    continue  # between --start and the first frame: would start before 0
                shift = round(self.offset / packet.time_base)
                packet.pts -= shift
                if packet.dts is not None:
                    packet.dts -= shift
            self._sink(packet)
        self._pending.clear()

    def forward_packets(self, sink: PacketSink) -> None:
        """Send packets of the audio and subtitle streams to `sink` from now on."""
        self._sink = sink
        self._flush_pending()

    def __iter__(self) -> Iterator[Frame]:
        frames = itertools.chain(self._head, self._rest)
        self._head = []
        if self._disordered:
            frames = self._presentation_order(frames)
        last_pts = None
        for frame in frames:
            self._check_shape(frame)
            pts = frame.pts
            if last_pts is not None and pts <= last_pts:
                pts = last_pts + 1  # duplicate timestamps: the encoder needs them increasing
                self.timestamp_fixes += 1
            last_pts = pts
            yield Frame(self._planes(frame), self._shifted(pts), frame.duration or None)

    def _shifted(self, pts: int) -> int:
        if self.offset is None:
            return pts
        return pts - round(self.offset / self.stream.time_base)

    def _presentation_order(self, frames: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
        """Give frames the sorted timestamps of a sliding window.

        Some files (e.g. from old webcam software) store B-frames without composition offsets,
        so decoded frames carry decode-order timestamps. Players show such frames at the sorted
        times, and so do we.
        """
        window: deque[av.VideoFrame] = deque()
        heap: list[int] = []
        for frame in frames:
            window.append(frame)
            heapq.heappush(heap, frame.pts)
            if len(window) > REORDER_DEPTH:
                out = window.popleft()
                out.pts = heapq.heappop(heap)
                yield out
        while window:
            out = window.popleft()
            out.pts = heapq.heappop(heap)
            yield out

    def _check_shape(self, frame: av.VideoFrame) -> None:
        info = self.info
        shape = (frame.width, frame.height, frame.format.name)
        if shape != (info.width, info.height, info.pix_fmt):
            t = float(self._seconds(frame.pts, frame.time_base))
            raise VdenoiseError(
                f"{self.path.name} changes from {info.width}x{info.height} {info.pix_fmt} to "
                f"{frame.width}x{frame.height} {frame.format.name} at {t:.2f} s",
                "split the video where it changes and denoise the parts separately",
            )

    def _planes(self, frame: av.VideoFrame) -> list[np.ndarray]:
        info = self.info
        if info.layout.pix_fmt != info.pix_fmt:
            frame = frame.reformat(
                format=info.layout.pix_fmt,
                src_colorspace=_SWSCALE_COLORSPACE.get(info.colour.matrix),
                src_color_range=2 if info.colour.full_range else 1,
                dst_color_range=2,
            )
        return frame_planes(frame, info.layout)

    # -- metadata -----------------------------------------------------------------------------
    def _describe(self, first: av.VideoFrame) -> VideoInfo:
        stream, cc = self.stream, self.stream.codec_context
        pix_fmt = first.format.name
        fmt = first.format
        bits = max(c.bits for c in fmt.components)
        layout = PixelLayout.of(pix_fmt)
        if layout is None:
            fallback = "rgb48le" if bits > 8 else "rgb24"
            layout = PixelLayout.of(fallback)
            assert layout is not None
        tags = ColourTags(
            int(cc.color_range or first.color_range or 0),
            int(cc.color_primaries or 2),
            int(cc.color_trc or 2),
            int(cc.colorspace or first.colorspace or 2),
        )
        is_rgb = fmt.is_rgb or pix_fmt.startswith(("gbr", "pal8", "bgr", "rgb"))
        colour, guessed = resolve_colour(
            tags.colorspace, tags.color_range, pix_fmt, first.height, is_rgb
        )
        duration = None
        if self.container.duration:
            duration = self.container.duration / av.time_base
        elif stream.duration:
            duration = float(stream.duration * stream.time_base)
        sar = stream.sample_aspect_ratio or cc.sample_aspect_ratio
        trimmed = self.start is not None or self.end is not None
        return VideoInfo(
            path=self.path,
            container=self.container.format.name,
            codec=cc.name,
            width=first.width,
            height=first.height,
            pix_fmt=pix_fmt,
            layout=layout,
            bits=bits,
            colour=colour,
            colour_guessed=guessed,
            tags=tags,
            time_base=Fraction(stream.time_base),
            average_rate=Fraction(stream.average_rate) if stream.average_rate else None,
            frame_count=None if trimmed else (stream.frames or None),
            duration=duration,
            rotation=int(first.rotation or 0),
            sample_aspect_ratio=Fraction(sar) if sar else None,
            interlaced=bool(first.interlaced_frame),
            audio_streams=len(self.container.streams.audio),
            subtitle_streams=len(self.container.streams.subtitles),
        )

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_SIDE_TYPES = ("audio", "subtitle")
