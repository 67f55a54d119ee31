"""Audio and subtitle streams carried from the input file to the output, untouched if possible.

Packets are copied as they are; only where the output container refuses a codec (PCM in MP4,
AAC in WebM) is the audio re-encoded, to AAC or, for WebM, Opus. Whether a container takes a
codec is found by writing a header into memory first, nunif's trick (ecosystem notes, §2.4).
"""

from __future__ import annotations

import io
from fractions import Fraction
from typing import Literal

import av

from vdenoise.errors import UsageError

AudioMode = Literal["copy", "aac", "none"]


def accepts(container_format: str, template: av.stream.Stream | None, codec: str = "") -> bool:
    """Whether a container of this format takes a copy of `template` (or a `codec` encoder)."""
    try:
        with av.open(io.BytesIO(), "w", format=container_format) as probe:
            if template is not None:
                probe.add_stream_from_template(template)
            else:
                probe.add_stream(codec, rate=48000)
            probe.start_encoding()
        return True
    except (av.FFmpegError, ValueError, TypeError):
        return False


class AudioEncoder:
    """Decodes packets of one audio stream and encodes them again (AAC or Opus)."""

    def __init__(self, source: av.AudioStream, out: av.container.OutputContainer, codec: str):
        cc = source.codec_context
        rate = 48000 if codec == "libopus" else cc.sample_rate
        layout = cc.layout.name if cc.layout and cc.layout.nb_channels <= 8 else "stereo"
        self.decoder = cc
        self.stream = out.add_stream(codec, rate=rate, layout=layout)
        self.stream.time_base = Fraction(1, rate)
        self.stream.metadata.update(source.metadata)
        fmt = "fltp" if codec == "aac" else "flt"
        self.resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate)
        self.fifo = av.AudioFifo()
        self.rate = rate
        self.next_pts: int | None = None  # in samples; starts at the first frame's time

    def push(self, out: av.container.OutputContainer, packet: av.Packet | None) -> None:
        for frame in self.decoder.decode(packet):
            if self.next_pts is None and frame.pts is not None:
                self.next_pts = round(frame.pts * frame.time_base * self.rate)
            for resampled in self.resampler.resample(frame):
                resampled.pts = None
                self.fifo.write(resampled)
        self._drain(out, final=False)

    def flush(self, out: av.container.OutputContainer) -> None:
        self.push(out, None)
        for resampled in self.resampler.resample(None):
            resampled.pts = None
            self.fifo.write(resampled)
        self._drain(out, final=True)
        out.mux(self.stream.encode(None))

    def _drain(self, out: av.container.OutputContainer, final: bool) -> None:
        size = self.stream.codec_context.frame_size or 1024
        while self.fifo.samples >= size or (final and self.fifo.samples):
            frame = self.fifo.read(min(size, self.fifo.samples))
            frame.pts = self.next_pts or 0
            frame.time_base = self.stream.time_base
            self.next_pts = frame.pts + frame.samples
            out.mux(self.stream.encode(frame))


class Passthrough:
    """The side streams of one input, mapped onto an output container."""

    def __init__(
        self,
        source: av.container.InputContainer,
        out: av.container.OutputContainer,
        audio: AudioMode,
    ) -> None:
        self.out = out
        self.copies: dict[int, av.stream.Stream] = {}
        self.encoders: dict[int, AudioEncoder] = {}
        self.notes: list[str] = []
        fmt = out.format.name.split(",")[0]
        fallback = "aac" if accepts(fmt, None, "aac") else "libopus"
        if audio == "aac" and fallback != "aac":
            raise UsageError(f"the {fmt} container cannot hold AAC audio", "use --audio copy")
        for stream in source.streams.audio:
            if audio == "none":
                continue
            if audio == "copy" and accepts(fmt, stream):
                self._copy(stream)
            else:
                self.encoders[stream.index] = AudioEncoder(stream, out, fallback)
                if audio == "copy":
                    self.notes.append(
                        f"audio #{stream.index} ({stream.codec_context.name}) re-encoded to "
                        f"{fallback.removeprefix('lib')}: {fmt} cannot hold it"
                    )
        if audio == "none" and source.streams.audio:
            self.notes.append("audio left out (--audio none)")
        for stream in source.streams.subtitles:
            if accepts(fmt, stream):
                self._copy(stream)
            else:
                self.notes.append(f"subtitles #{stream.index} left out: {fmt} cannot hold them")
        others = [s for s in source.streams if s.type in ("data", "attachment")]
        if others:
            self.notes.append(f"{len(others)} data/attachment stream(s) left out")

    def _copy(self, stream: av.stream.Stream) -> None:
        target = self.out.add_stream_from_template(stream)
        target.metadata.update(stream.metadata)
        target.disposition = stream.disposition
        self.copies[stream.index] = target

    @property
    def stream_indices(self) -> set[int]:
        return set(self.copies) | set(self.encoders)

    def mux(self, packet: av.Packet) -> None:
        """Write one packet of a side stream (copied or re-encoded)."""
        index = packet.stream.index
        if index in self.copies:
            packet.stream = self.copies[index]
            self.out.mux(packet)
        elif index in self.encoders:
            self.encoders[index].push(self.out, packet)

    def flush(self) -> None:
        for encoder in self.encoders.values():
            encoder.flush(self.out)
