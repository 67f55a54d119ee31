import itertools
from fractions import Fraction

import av
import numpy as np
import pytest

from tests.clipmaker import ClipSpec, decoded_pts, make_clip
from tests.conftest import shared_clip
from vdenoise.errors import VdenoiseError
from vdenoise.io import open_input, read_rgb
from vdenoise.io.reader import VideoReader

VFR = [0, 1001, 3003, 4004, 7007, 8008, 9009, 13013, 14014, 15015]


def test_frames_and_timestamps_stream_in_order(tmp_path):
    path = make_clip(tmp_path / "vfr.mp4", ClipSpec(frames=len(VFR), pts=VFR))
    with VideoReader(path) as reader:
        frames = list(reader)
        info = reader.info
    assert [f.pts for f in frames] == VFR
    assert info.time_base == Fraction(1, 30000)
    assert (info.width, info.height, info.pix_fmt, info.bits) == (64, 48, "yuv420p", 8)
    assert [p.shape for p in frames[0].planes] == [(48, 64), (24, 32), (24, 32)]
    assert info.frame_count == len(VFR)


def test_ten_bit_rotation_and_aspect_are_read(tmp_path):
    spec = ClipSpec(
        pix_fmt="yuv420p10le",
        rotation=90,
        sample_aspect_ratio=Fraction(4, 3),
        colour=(1, 9, 16, 9),
    )
    with VideoReader(make_clip(tmp_path / "hdr.mkv", spec)) as reader:
        info = reader.info
        first = next(iter(reader))
    assert info.bits == 10 and first.planes[0].dtype == np.uint16
    assert info.rotation == 90 and info.sample_aspect_ratio == Fraction(4, 3)
    assert info.tags.is_hdr and info.colour.matrix == 9 and not info.colour.full_range


def test_odd_size_is_read_whole(tmp_path):
    spec = ClipSpec(width=41, height=31, codec="ffv1", options={})
    with VideoReader(make_clip(tmp_path / "odd.mkv", spec)) as reader:
        frame = next(iter(reader))
    assert frame.planes[0].shape == (31, 41) and frame.planes[1].shape == (16, 21)


def test_trimming_keeps_the_range_and_starts_at_zero(tmp_path):
    path = make_clip(tmp_path / "cfr.mp4", ClipSpec(frames=30))
    with VideoReader(path, start=0.3, end=0.6) as reader:
        pts = [f.pts for f in reader]
    first = 9 * 1001  # first frame at or after 0.3 s
    expected = [i * 1001 - first for i in range(9, 30) if i * 1001 / 30000 < 0.6]
    assert pts == expected and pts[0] == 0


def test_decode_order_timestamps_are_put_in_presentation_order():
    """box.mp4 stores B-frames without composition offsets (pts = dts)."""
    path = shared_clip("box.mp4")
    raw = sorted(decoded_pts(path))
    with VideoReader(path) as reader:
        ours = [f.pts * reader.info.time_base for f in reader]
    assert ours == raw  # the same instants, each frame at its sorted time
    assert all(b > a for a, b in itertools.pairwise(ours))


def test_rgb_codec_goes_through_a_packed_layout():
    with VideoReader(shared_clip("tree.avi")) as reader:
        frame = next(iter(reader))
        assert reader.info.layout.pix_fmt == "rgb24" and reader.info.is_rgb_source
    assert frame.planes[0].shape == (240, 320, 3)


def test_text_file_is_not_a_video(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n" * 50)
    with pytest.raises(VdenoiseError, match="not a readable video"):
        VideoReader(fake)


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "tone.m4a"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=48000)
        frame = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), "fltp", "stereo")
        frame.sample_rate, frame.pts = 48000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(VdenoiseError, match="no video stream"):
        VideoReader(path)


def _truncated(tmp_path):
    path = make_clip(tmp_path / "cut.mp4", ClipSpec(frames=40, options={"crf": "0"}))
    faststart = tmp_path / "fast.mp4"  # index first, as cameras write it: a cut keeps it
    with (
        av.open(str(path)) as src,
        av.open(str(faststart), "w", options={"movflags": "+faststart"}) as out,
    ):
        video = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(video=0):
            if packet.size:
                packet.stream = video
                out.mux(packet)
    data = faststart.read_bytes()
    faststart.write_bytes(data[: int(len(data) * 0.6)])
    return faststart


def test_truncated_file_is_reported_as_damaged(tmp_path):
    path = _truncated(tmp_path)
    with pytest.raises(VdenoiseError, match="damaged"), VideoReader(path) as reader:
        list(reader)


def test_truncated_file_decodes_what_it_can_when_asked(tmp_path):
    with VideoReader(_truncated(tmp_path), ignore_errors=True) as reader:
        frames = list(reader)
        assert reader.decode_errors >= 1
    assert 5 < len(frames) < 40


def test_image_folder_reads_8_and_16_bit(tmp_path):
    import cv2

    for name, dtype in (("eight", np.uint8), ("sixteen", np.uint16)):
        folder = tmp_path / name
        folder.mkdir()
        top = np.iinfo(dtype).max
        for i in (10, 2, 1):  # natural order: 1, 2, 10
            image = np.full((6, 8, 3), i * (top // 20), dtype)
            cv2.imwrite(str(folder / f"f{i}.png"), image)
        reader = open_input(folder, fps=24)
        frames = list(reader)
        assert reader.info.bits == (16 if dtype == np.uint16 else 8)
        assert [int(f.planes[0][0, 0, 0]) for f in frames] == [
            1 * (top // 20),
            2 * (top // 20),
            10 * (top // 20),
        ]
        assert reader.info.time_base == Fraction(1, 24)


def test_rgb_frames_keep_the_source_precision(tmp_path):
    eight = next(read_rgb(make_clip(tmp_path / "8.mp4", ClipSpec(frames=2))))
    ten = next(read_rgb(make_clip(tmp_path / "10.mkv", ClipSpec(frames=2, pix_fmt="yuv420p10le"))))
    assert eight.dtype == np.uint8 and eight.shape == (48, 64, 3)
    assert ten.dtype == np.uint16 and ten.shape == (48, 64, 3)
    assert np.abs(ten.astype(float) / 257 - eight).mean() < 3  # same picture, same scale
