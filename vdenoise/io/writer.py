"""Video encoding with PyAV that reproduces the input's form: timing, colour, depth, geometry."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from vdenoise.errors import UsageError, VdenoiseError
from vdenoise.io.colour import BT709, RANGE_FULL, RANGE_LIMITED, RGB_MATRIX, ColourSpec, PixelLayout
from vdenoise.io.encoding import (
    EncodeOptions,
    choose_pix_fmt,
    default_codec,
    encoder_settings,
    find_encoder,
    for_gpu,
)
from vdenoise.io.media import ColourTags, Frame, VideoInfo
from vdenoise.io.passthrough import AudioMode, Passthrough
from vdenoise.io.reader import main_video_stream

_MUXER_KEYS = {"encoder", "major_brand", "minor_version", "compatible_brands", "creation_time"}
IEC61966_2_1 = 13  # sRGB transfer


def output_colour(info: VideoInfo, layout: PixelLayout) -> tuple[ColourSpec, ColourTags]:
    """How to encode colour in the output, and the tags that say so.

    A Y'CbCr source keeps its matrix, range and tags. Where the input relied on a convention the
    output cannot repeat (a full-range `yuvj` format written as plain `yuv`), the tag is made
    explicit. RGB sources written as Y'CbCr get BT.709 limited range, tagged, so no player guesses.
    """
    tags = info.tags
    if layout.kind == "gbr":
        return ColourSpec(RGB_MATRIX, True), ColourTags(
            RANGE_FULL, tags.color_primaries, tags.color_trc, RGB_MATRIX
        )
    if info.is_rgb_source:
        return ColourSpec(BT709, False), ColourTags(RANGE_LIMITED, BT709, IEC61966_2_1, BT709)
    colour = info.colour
    if tags.color_range == 0 and colour.full_range:
        tags = ColourTags(RANGE_FULL, tags.color_primaries, tags.color_trc, tags.colorspace)
    return colour, tags


def copy_tags(
    source: av.container.InputContainer, out: av.container.OutputContainer, video: av.VideoStream
) -> None:
    """The source's container tags (not the muxer's), its video's language, its chapters."""
    out.metadata.update({k: v for k, v in source.metadata.items() if k.lower() not in _MUXER_KEYS})
    original = main_video_stream(source)
    video.metadata.update({k: v for k, v in original.metadata.items() if k == "language"})
    chapters = source.chapters()
    if chapters:
        out.set_chapters(chapters)


class VideoWriter:
    """Encodes frames into a new file with the same timestamps and form as the input."""

    def __init__(
        self,
        path: Path,
        info: VideoInfo,
        options: EncodeOptions,
        *,
        source: av.container.InputContainer | None = None,
        audio: AudioMode = "copy",
        container_format: str | None = None,
        gpu: bool = False,
    ) -> None:
        """`gpu`: the frames come from a GPU, so the default encoder is its hardware one, or
        a libx264 preset that keeps pace (`encoding.for_gpu`)."""
        self.path = Path(path)
        self.gpu = gpu
        try:
            self.container = av.open(str(path), "w", format=container_format)
        except ValueError:
            raise UsageError(
                f"cannot tell the video format from the name {path.name}",
                "end the output name in .mp4, .mkv, .mov, .webm or .avi",
            ) from None
        try:
            self._setup(info, options, source, audio)
        except BaseException:
            self.abort()
            raise
        self.frames = 0

    def _setup(
        self,
        info: VideoInfo,
        options: EncodeOptions,
        source: av.container.InputContainer | None,
        audio: AudioMode,
    ) -> None:
        out = self.container
        fmt = out.format.name.split(",")[0]
        self.notes = []
        if self.gpu:
            options, choice = for_gpu(options, fmt)
            self.notes += [choice] if choice else []
        codec = find_encoder(options.codec or default_codec(fmt, options.lossless))
        self.codec = codec.name
        self.pix_fmt, note = choose_pix_fmt(info, codec, options.pix_fmt)
        self.notes += [note] if note else []
        settings = encoder_settings(codec.name, options)
        try:
            stream = out.add_stream(codec.name, rate=info.average_rate, options=settings)
        except ValueError:
            raise UsageError(
                f"the {fmt} container cannot hold {codec.name} video",
                "use .mkv, which holds almost any codec, or another --codec",
            ) from None
        self.stream = stream
        layout = PixelLayout.of(self.pix_fmt)
        assert layout is not None
        self.layout = layout
        self.colour, self.tags = output_colour(info, layout)
        cc = stream.codec_context
        stream.width, stream.height, stream.pix_fmt = info.width, info.height, self.pix_fmt
        self.time_base = stream.time_base = cc.time_base = info.time_base
        cc.color_range = self.tags.color_range
        cc.color_primaries = self.tags.color_primaries
        cc.color_trc = self.tags.color_trc
        cc.colorspace = self.tags.colorspace
        if info.sample_aspect_ratio:
            cc.sample_aspect_ratio = stream.sample_aspect_ratio = info.sample_aspect_ratio
        if info.rotation:
            stream.set_display_rotation(info.rotation)
        if cc.codec.name == "libsvtav1":
            os.environ.setdefault("SVT_LOG", "1")  # errors only; SVT-AV1 logs to stderr itself
        self.passthrough = None
        if source is not None:
            self.passthrough = Passthrough(source, out, audio)
            self.notes += self.passthrough.notes
            copy_tags(source, out, stream)
        try:
            with encoder_messages() as said:
                out.start_encoding()
        except av.FFmpegError as e:
            asked = _asked(options)
            if asked:  # the user's settings are the likeliest cause, not the container
                reason = said[-1].split("]: ", 1)[-1] if said else e.strerror
                raise UsageError(
                    f"{codec.name} refused the encoder settings {asked} ({reason})",
                    f"see `ffmpeg -h encoder={codec.name}` for the values it takes",
                ) from None
            raise UsageError(
                f"{codec.name} in {fmt} with {self.pix_fmt} could not be opened ({e.strerror})",
                "use .mkv, or another --codec or --pix-fmt",
            ) from None

    def write(self, frame: Frame) -> None:
        """Encode one frame; its planes must match `self.layout`."""
        video = av.VideoFrame(self.stream.width, self.stream.height, self.pix_fmt)
        for plane, src in zip(video.planes, frame.planes, strict=False):
            row = plane.line_size // src.dtype.itemsize
            dst = np.frombuffer(plane, src.dtype, count=row * plane.height)
            dst.reshape(plane.height, row)[:, : plane.width] = src
        video.pts = frame.pts
        video.time_base = self.time_base  # the input's; the muxer may rescale the stream's
        if frame.duration:
            video.duration = frame.duration
        video.color_range = self.tags.color_range
        video.colorspace = self.tags.colorspace
        self._mux(self.stream.encode(video))
        self.frames += 1

    def mux_side(self, packet: av.Packet) -> None:
        """Write a packet of an audio or subtitle stream (called from the writer's thread)."""
        if self.passthrough is not None:
            self.passthrough.mux(packet)

    def _mux(self, packets: list[av.Packet]) -> None:
        try:
            self.container.mux(packets)
        except OSError as e:
            raise VdenoiseError(f"cannot write {self.path.name} ({e.strerror or e})") from None

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        self._mux(self.stream.encode(None))
        if self.passthrough is not None:
            self.passthrough.flush()
        try:
            self.container.close()
        except OSError as e:
            raise VdenoiseError(f"cannot finish {self.path.name} ({e.strerror or e})") from None

    def abort(self) -> None:
        """Close without caring for the result (the caller removes the file)."""
        with contextlib.suppress(Exception):  # the file is being thrown away
            self.container.close()


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def encoder_messages() -> Iterator[list[str]]:
    """Lines an encoder library prints on stderr itself (x264 does, bypassing FFmpeg's log)
    inside the block: kept for our one-line error if the block fails, shown if it succeeds."""
    said: list[str] = []
    sys.stderr.flush()
    failed = False
    with _STDERR_LOCK, tempfile.TemporaryFile() as sink:  # fd 2 is the process's: one at a time
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield said
        except BaseException:
            failed = True
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            said += [line for line in sink.read().decode(errors="replace").splitlines() if line]
            if said and not failed:
                sys.stderr.write("\n".join(said) + "\n")


def _asked(options: EncodeOptions) -> str:
    """The encoder settings the user gave, as typed: '--crf -40, --encoder-opt preset=x'."""
    given = [f"--crf {options.crf:g}"] if options.crf is not None else []
    given += [f"--preset {options.preset}"] if options.preset else []
    given += [f"--encoder-opt {k}={v}" for k, v in options.extra.items()]
    return ", ".join(given)
