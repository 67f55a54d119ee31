"""End to end: the output is the input with the noise removed and nothing else changed."""

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from tests.clipmaker import (
    ClipSpec,
    audio_packets,
    decoded_pts,
    make_clip,
    our_rgb,
    psnr,
    raw_planes,
)
from tests.conftest import Identity, shared_clip
from vdenoise.errors import UsageError, VdenoiseError
from vdenoise.io.encoding import EncodeOptions
from vdenoise.pipeline import (
    denoise_video,
    staged_output,
)

FAST = EncodeOptions(preset="ultrafast")
VFR = [0, 1001, 3003, 4004, 7007, 8008, 9009, 13013, 14014, 15015, 16016]


def denoise(src: Path, dst: Path, **kwargs):
    kwargs.setdefault("encode", FAST)
    return denoise_video(src, dst, kwargs.pop("model", Identity()), **kwargs)


def stream_facts(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        first = next(c.decode(v))
        cc = v.codec_context
        return {
            "size": (first.width, first.height),
            "depth": max(comp.bits for comp in first.format.components),
            "tags": (cc.color_range, cc.color_primaries, cc.color_trc, cc.colorspace),
            "rotation": first.rotation,
            "sar": v.sample_aspect_ratio,
        }


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".vdenoise-" in p.name]


def test_variable_frame_rate_survives_exactly(tmp_path):
    src = make_clip(tmp_path / "vfr.mp4", ClipSpec(frames=len(VFR), pts=VFR))
    report = denoise(src, tmp_path / "out.mp4")
    assert decoded_pts(tmp_path / "out.mp4") == decoded_pts(src)
    assert report.frames == len(VFR)


def test_ten_bit_hdr_stays_ten_bit_with_its_tags(tmp_path):
    spec = ClipSpec(pix_fmt="yuv420p10le", colour=(1, 9, 16, 9))
    src = make_clip(tmp_path / "hdr.mkv", spec)
    report = denoise(src, tmp_path / "out.mkv")
    facts = stream_facts(tmp_path / "out.mkv")
    assert facts["depth"] == 10 and report.pix_fmt == "yuv420p10le"
    assert facts["tags"] == stream_facts(src)["tags"] == (1, 9, 16, 9)
    assert any("HDR" in n for n in report.notes)


def test_odd_size_is_kept(tmp_path):
    src = make_clip(tmp_path / "odd.mkv", ClipSpec(frames=4, width=641, height=481, codec="ffv1"))
    report = denoise(src, tmp_path / "out.mp4", encode=EncodeOptions(lossless=True))
    assert stream_facts(tmp_path / "out.mp4")["size"] == (641, 481)
    assert report.pix_fmt == "yuv444p"
    assert psnr(our_rgb(tmp_path / "out.mp4"), our_rgb(src)) > 45


def test_rotation_and_aspect_ratio_are_kept(tmp_path):
    spec = ClipSpec(rotation=90, sample_aspect_ratio=Fraction(4, 3))
    src = make_clip(tmp_path / "rot.mp4", spec)
    denoise(src, tmp_path / "out.mp4")
    facts = stream_facts(tmp_path / "out.mp4")
    assert facts["rotation"] == 90 and facts["sar"] == Fraction(4, 3)


@pytest.mark.parametrize(("codec", "suffix"), [("aac", ".mp4"), ("libopus", ".mkv")])
def test_audio_packets_are_copied_byte_for_byte(tmp_path, codec, suffix):
    src = make_clip(tmp_path / f"a{suffix}", ClipSpec(frames=15, audio=codec))
    denoise(src, tmp_path / "out.mp4")
    copied = audio_packets(tmp_path / "out.mp4")
    assert copied and copied == audio_packets(src)


def test_chapters_and_metadata_are_kept(tmp_path):
    src = make_clip(tmp_path / "film.mkv", ClipSpec(frames=6, title="Intro"))
    denoise(src, tmp_path / "out.mkv")
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert c.metadata["title"] == "Intro"
        assert [ch["metadata"]["title"] for ch in c.chapters()] == ["Intro"]


def test_audio_the_container_refuses_is_reencoded(tmp_path):
    src = make_clip(tmp_path / "alaw.mov", ClipSpec(frames=15, audio="pcm_alaw"))
    report = denoise(src, tmp_path / "out.mp4")
    with av.open(str(tmp_path / "out.mp4")) as c:
        audio = c.streams.audio[0]
        assert audio.codec_context.name == "aac"
        assert abs(float(audio.duration * audio.time_base) - 15 * 1001 / 30000 - 0.1) < 0.05
    assert any("re-encoded to aac" in n for n in report.notes)


def test_audio_can_be_dropped(tmp_path):
    src = make_clip(tmp_path / "a.mp4", ClipSpec(frames=6, audio="aac"))
    denoise(src, tmp_path / "out.mp4", audio="none")
    assert audio_packets(tmp_path / "out.mp4") == []


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])  # FFV1; x264 at qp 0
def test_identity_is_lossless_with_lossless(tmp_path, suffix):
    src = make_clip(tmp_path / "in.mp4", ClipSpec(frames=8))
    denoise(src, tmp_path / f"out{suffix}", encode=EncodeOptions(lossless=True))
    assert psnr(our_rgb(tmp_path / f"out{suffix}"), our_rgb(src)) > 45
    for ours, theirs in zip(raw_planes(tmp_path / f"out{suffix}"), raw_planes(src), strict=True):
        assert all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))


def test_default_quality_is_high(tmp_path):
    """x264 crf 18 on a tiny, saturated test pattern: ~37 dB; a colour bug gives < 25."""
    src = make_clip(tmp_path / "in.mp4", ClipSpec(frames=8))
    denoise(src, tmp_path / "out.mp4", encode=EncodeOptions())
    assert psnr(our_rgb(tmp_path / "out.mp4"), our_rgb(src)) > 35


def test_time_range_is_cut_and_starts_at_zero(tmp_path):
    src = make_clip(tmp_path / "in.mp4", ClipSpec(frames=30, audio="aac"))
    report = denoise(src, tmp_path / "out.mp4", start=0.3, end=0.6)
    pts = decoded_pts(tmp_path / "out.mp4")
    assert report.frames == len(pts) == 9 and pts[0] == 0
    with av.open(str(tmp_path / "out.mp4")) as c:
        audio = c.streams.audio[0]
        assert 0.25 < float(audio.duration * audio.time_base) < 0.35


def test_image_sequences_in_and_out(tmp_path):
    src = make_clip(tmp_path / "in.mp4", ClipSpec(frames=5, pix_fmt="yuv420p10le"))
    denoise(src, tmp_path / "frames", encode=EncodeOptions())
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert names == [f"{i:06d}.png" for i in range(1, 6)]
    image = cv2.imread(str(tmp_path / "frames" / names[0]), cv2.IMREAD_UNCHANGED)
    assert image.dtype == np.uint16 and image.shape == (48, 64, 3)
    report = denoise(tmp_path / "frames", tmp_path / "back.mp4", fps=12)
    assert report.frames == 5
    assert decoded_pts(tmp_path / "back.mp4")[1] == Fraction(1, 12)


def test_encoder_options_for_image_output_are_refused(tmp_path):
    src = make_clip(tmp_path / "in.mp4", ClipSpec(frames=2))
    with pytest.raises(UsageError, match="image sequences"):
        denoise(src, tmp_path / "frames", encode=EncodeOptions(crf=10))
    assert leftovers(tmp_path) == [] and not (tmp_path / "frames").exists()


def test_existing_output_is_refused_and_left_alone(tmp_path):
    src = make_clip(tmp_path / "in.mp4", ClipSpec(frames=4))
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(UsageError, match="already exists"):
        denoise(src, out)
    assert out.read_bytes() == b"precious"
    denoise(src, out, overwrite=True)
    assert len(decoded_pts(out)) == 4


def test_output_equal_to_input_is_refused(tmp_path):
    src = make_clip(tmp_path / "in.mp4", ClipSpec(frames=4))
    with pytest.raises(UsageError, match="overwrite the input"):
        denoise(src, tmp_path / "." / "in.mp4", overwrite=True)


class FailsAt(Identity):
    """Raises `error` when asked for frame `at`."""

    def __init__(self, at: int, error: BaseException) -> None:
        super().__init__(1, 1, 1)
        self.at, self.error, self.calls = at, error, 0

    def forward(self, clip: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls > self.at:
            raise self.error
        return super().forward(clip, sigma)


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failure_midway_leaves_no_output(tmp_path, error):
    src = make_clip(tmp_path / "in.mp4", ClipSpec(frames=20))
    old = tmp_path / "old.mp4"
    old.write_bytes(b"previous result")
    with pytest.raises(type(error)):
        denoise(src, old, model=FailsAt(10, error), overwrite=True)
    assert old.read_bytes() == b"previous result"
    with pytest.raises(type(error)):
        denoise(src, tmp_path / "new.mp4", model=FailsAt(10, error))
    assert not (tmp_path / "new.mp4").exists()
    assert leftovers(tmp_path) == []


def test_codec_the_container_refuses_is_a_usage_error(tmp_path):
    src = make_clip(tmp_path / "in.mp4", ClipSpec(frames=4))
    with pytest.raises(UsageError, match="webm"):
        denoise(src, tmp_path / "out.webm", encode=EncodeOptions(codec="libx264"))
    assert leftovers(tmp_path) == []


def test_damaged_input_fails_cleanly(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00" * 5000)
    with pytest.raises(VdenoiseError, match="not a readable video"):
        denoise(fake, tmp_path / "out.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.mp4"]


# -- real footage -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "suffix", "end"),
    [
        ("cup.mp4", ".mp4", None),  # AAC, tagged BT.601
        ("box.mp4", ".mp4", None),  # MP3 in MP4, decode-order timestamps
        ("tree.avi", ".mkv", None),  # Cinepak RGB, 68 of 444 frame slots used
        ("realshort.mp4", ".mp4", None),
        ("cockatoo.mp4", ".mp4", 3.0),  # 4:4:4, 720p
        ("vtest.avi", ".mkv", 8.0),  # MS-MPEG4, no audio
    ],
)
def test_real_clips_keep_frames_timing_audio_and_colour(tmp_path, name, suffix, end):
    src = shared_clip(name)
    out = tmp_path / f"out{suffix}"
    report = denoise(src, out, end=end)
    expected = sorted(decoded_pts(src))
    if end is not None:
        expected = [t for t in expected if t < end]
    assert report.frames == len(expected)
    got = decoded_pts(out)
    if suffix == ".mkv":  # Matroska stores milliseconds
        assert all(abs(a - b) <= Fraction(1, 1000) for a, b in zip(got, expected, strict=True))
    else:
        assert got == expected
    if end is None and audio_packets(src):
        assert audio_packets(out) == audio_packets(src)
    source, result = stream_facts(src), stream_facts(out)
    assert result["size"] == source["size"] and result["depth"] == source["depth"]
    if not name.endswith(".avi"):
        assert result["tags"] == source["tags"]


class Recorder:
    def __init__(self) -> None:
        self.notes, self.total, self.done = [], None, 0

    def note(self, message: str) -> None:
        self.notes.append(message)

    def start(self, total: int | None, began: float) -> None:
        self.total = total

    def advance(self, frames: int) -> None:
        self.done += frames


def test_progress_is_reported_with_a_total(tmp_path):
    src = make_clip(tmp_path / "in.mp4", ClipSpec(frames=30))
    whole, part = Recorder(), Recorder()
    denoise(src, tmp_path / "a.mp4", observer=whole)
    denoise(src, tmp_path / "b.mp4", observer=part, start=0.3, end=0.6)
    assert whole.total == whole.done == 30
    assert part.done == 9 and abs(part.total - part.done) <= 1  # estimated from the duration
    assert any("cpu" in n for n in whole.notes)


def test_errors_name_the_output_not_its_hidden_temporary_file(tmp_path):
    dst = tmp_path / ("long-" * 49 + ".mp4")  # 250 characters: the temporary name still fits
    with pytest.raises(VdenoiseError) as caught, staged_output(dst, as_folder=False) as tmp:
        assert len(tmp.name) < 32 and tmp.parent == tmp_path
        raise VdenoiseError(f"cannot write {tmp} (No space left on device)")
    assert str(dst) in caught.value.message and tmp.name not in caught.value.message
    assert list(tmp_path.iterdir()) == []


def test_no_output_appears_after_an_interrupt_python_dropped(tmp_path, monkeypatch):
    """A KeyboardInterrupt raised inside a destructor is printed and dropped by Python; the
    signal is remembered (`vdenoise.signals`), and the output is still not put in place."""
    from vdenoise import signals
    from vdenoise.pipeline import staged_output

    monkeypatch.setattr(signals, "received", True)
    target = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt), staged_output(target, False) as tmp:
        tmp.write_bytes(b"a whole output")
    assert list(tmp_path.iterdir()) == []
