"""Encoder choices: codec, quality settings and the output pixel format."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from fractions import Fraction

import av

from vdenoise.errors import UsageError
from vdenoise.io.colour import PixelLayout
from vdenoise.io.media import VideoInfo

CODEC_ALIASES = {
    "h264": "libx264",
    "x264": "libx264",
    "hevc": "libx265",
    "h265": "libx265",
    "x265": "libx265",
    "av1": "libsvtav1",
    "svtav1": "libsvtav1",
    "vp9": "libvpx-vp9",
    "prores": "prores_ks",
}
# "Visually lossless" constant-quality defaults (x264's folklore 18; x265 and AV1 scales differ).
DEFAULT_CRF = {"libx264": 18, "libx265": 20, "libsvtav1": 24, "libvpx-vp9": 24}
DEFAULT_PRESET = {"libx264": "medium", "libx265": "medium", "libsvtav1": "6"}
_ALWAYS_LOSSLESS = {"ffv1", "utvideo", "png", "rawvideo", "libx264rgb"}


@dataclass
class EncodeOptions:
    """What the user asked of the video encoder; None means 'the sensible default'."""

    codec: str | None = None
    crf: float | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    lossless: bool = False
    extra: dict[str, str] = field(default_factory=dict)  # --encoder-opt KEY=VALUE


def default_codec(container: str, lossless: bool) -> str:
    """The codec for a container when the user names none."""
    if container == "webm":
        return "libvpx-vp9"
    if lossless and container in ("matroska", "avi"):
        return "ffv1"
    return "libx264"


def find_encoder(name: str) -> av.Codec:
    name = CODEC_ALIASES.get(name, name)
    try:
        codec = av.Codec(name, "w")
    except (av.FFmpegError, ValueError):
        raise UsageError(
            f"unknown video encoder '{name}'",
            "try libx264, libx265, libsvtav1, libvpx-vp9, ffv1 or prores_ks",
        ) from None
    if codec.type != "video":
        raise UsageError(f"'{name}' is not a video encoder")
    return codec


def encoder_settings(codec: str, opts: EncodeOptions) -> dict[str, str]:
    """FFmpeg options for the encoder from --crf/--preset/--lossless/--encoder-opt."""
    settings: dict[str, str] = {}
    quiet = {"libx265": ("x265-params", "log-level=error")}
    if opts.crf is not None and (opts.lossless or codec not in DEFAULT_CRF):
        why = "--lossless is set" if opts.lossless else f"{codec} has no constant-quality mode"
        raise UsageError(f"--crf does not apply: {why}")
    if opts.lossless:
        if codec == "libx264":
            settings["qp"] = "0"
        elif codec == "libx265":
            quiet["libx265"] = ("x265-params", "lossless=1:log-level=error")
        elif codec == "libvpx-vp9":
            settings["lossless"] = "1"
        elif codec not in _ALWAYS_LOSSLESS:
            raise UsageError(
                f"{codec} has no lossless mode", "use --codec ffv1 (.mkv) or libx264 with it"
            )
    elif codec in DEFAULT_CRF:
        crf = opts.crf if opts.crf is not None else DEFAULT_CRF[codec]
        settings["crf"] = f"{crf:g}"
        if codec == "libvpx-vp9":
            settings["b"] = "0"  # pure constant quality, no bitrate cap
    if opts.preset is not None or codec in DEFAULT_PRESET:
        key = {"libvpx-vp9": "cpu-used", "prores_ks": "profile"}.get(codec, "preset")
        if codec in _ALWAYS_LOSSLESS:
            raise UsageError(f"--preset does not apply to {codec}")
        settings[key] = opts.preset or DEFAULT_PRESET[codec]
    if codec in quiet:
        key, value = quiet[codec]
        settings[key] = value
    if codec == "ffv1":
        settings.update({"level": "3", "slicecrc": "1"})
    settings.update(opts.extra)
    return settings


_COMMON_FORMATS = ("yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "yuv444p10le")


def _native_layouts(codec: av.Codec) -> list[PixelLayout]:
    names = [f.name for f in codec.video_formats or ()] or list(_COMMON_FORMATS)
    layouts = [PixelLayout.of(n) for n in names]
    return [x for x in layouts if x is not None and x.kind != "rgb" and not x.alpha]


def choose_pix_fmt(
    info: VideoInfo, codec: av.Codec, requested: str | None
) -> tuple[str, str | None]:
    """The output pixel format and, when it differs in kind from the source's, why.

    Prefers the source's own form: same bit depth, same chroma subsampling, Y'CbCr for Y'CbCr
    sources. An odd frame size cannot be 4:2:0, so it falls back to 4:4:4, keeping the size.
    """
    w, h = info.width, info.height
    candidates = _native_layouts(codec)
    if requested is not None:
        layout = PixelLayout.of(requested)
        accepted = [f.name for f in codec.video_formats or ()]
        if accepted and requested not in accepted:
            raise UsageError(
                f"{codec.name} cannot encode {requested}", f"it accepts {', '.join(accepted)}"
            )
        if layout is None or layout.kind == "rgb" or layout.alpha:
            raise UsageError(
                f"vdenoise cannot write {requested}",
                "choose a planar Y'CbCr or GBR format such as yuv420p, yuv420p10le or yuv444p",
            )
        if not layout.fits(w, h):
            raise UsageError(
                f"{requested} needs even dimensions, and the video is {w}x{h}",
                "use a 4:4:4 format such as yuv444p",
            )
        return requested, None
    fitting = [c for c in candidates if c.fits(w, h)]
    if not fitting:
        raise UsageError(
            f"{codec.name} cannot store a {w}x{h} video",
            "odd sizes need 4:4:4; use --codec libx264, libx265 or ffv1",
        )
    src = info.layout
    rgb_source = src.kind != "yuv"
    want_shift = (1, 1) if rgb_source else src.chroma_shift

    def cost(c: PixelLayout) -> tuple[int, int, int, int]:
        kind = 0 if (c.kind == "yuv") != rgb_source else 1
        depth = c.bits - info.bits if c.bits >= info.bits else 100 + info.bits - c.bits
        sx, sy = c.chroma_shift
        wx, wy = want_shift
        finer = (wx - sx) + (wy - sy)
        chroma = finer if finer >= 0 else 10 - finer
        return kind, depth, chroma, int(c.pix_fmt.startswith("yuvj"))

    best = min(fitting, key=cost)
    note = None
    if best.bits < info.bits:
        note = f"{codec.name} cannot store {info.bits}-bit video; writing {best.pix_fmt}"
    elif not rgb_source and best.chroma_shift != src.chroma_shift:
        why = f"the video is {w}x{h}, odd" if not src.fits(w, h) else f"{codec.name} lacks it"
        note = f"writing {best.pix_fmt} instead of {src.pix_fmt} ({why})"
    return best.pix_fmt, note


HARDWARE_H264 = "h264_nvenc"
# NVENC's constant quality near x264's crf 18 (FFmpeg's h264_nvenc options).
HARDWARE_SETTINGS = {"preset": "p4", "tune": "hq", "rc": "vbr", "cq": "19", "b": "0"}
# libx264 when no hardware encoder opens: on 16 cores at 960x540, veryfast encodes 295
# frames/s and medium 163 (measured on an H200 machine, 2026-12): veryfast keeps pace.
FAST_PRESET = "veryfast"


@functools.cache
def opens(name: str) -> bool:
    """Whether the encoder `name` opens on this machine (NVENC needs a GPU that has one:
    FFmpeg may list it where no such GPU is)."""
    try:
        context = av.CodecContext.create(name, "w")
        context.width, context.height, context.pix_fmt = 256, 144, "yuv420p"
        context.time_base, context.framerate = Fraction(1, 25), Fraction(25)
        context.open()
    except Exception:  # any failure to open means: not here
        return False
    return True


def for_gpu(
    options: EncodeOptions, container: str, hardware: str = HARDWARE_H264
) -> tuple[EncodeOptions, str | None]:
    """The encoder of a run on a GPU, where the user chose none and the container's default
    is libx264: the GPU's H.264 encoder if one opens, else libx264 at a preset that keeps
    pace (medium would cap the run); and the one-line note that says which."""
    if options != EncodeOptions() or default_codec(container, False) != "libx264":
        return options, None
    if opens(hardware):
        chosen = EncodeOptions(codec=hardware, extra=dict(HARDWARE_SETTINGS))
        return chosen, f"encoding with {hardware}, the GPU's encoder"
    chosen = EncodeOptions(codec="libx264", preset=FAST_PRESET)
    return chosen, f"no hardware encoder ({hardware} did not open): libx264 {FAST_PRESET}"
