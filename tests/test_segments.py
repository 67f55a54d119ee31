"""`vdenoise denoise --jobs/--segments`: one video cut at keyframes, denoised in pieces, joined."""

import json
import os
from fractions import Fraction

import av
import pytest
import torch
from typer.testing import CliRunner

from tests.clipmaker import ClipSpec, audio_packets, decoded_pts, largest_difference, make_clip
from vdenoise import pipeline
from vdenoise.cli import app
from vdenoise.errors import VdenoiseError
from vdenoise.io.reader import VideoReader
from vdenoise.segments import MIN_FRAMES, Timeline, plan, probe

runner = CliRunner()

# Lossless, so what is compared is the denoised frames themselves (libx264 encodes the pieces
# as their own groups of pictures: its bits differ, not the frames it was given).
LOSSLESS = ("--codec", "ffv1")


def denoise(*args):
    return runner.invoke(app, ["denoise", *map(str, args)])


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """60 frames at 29.97 fps, a keyframe every 12, AAC audio, a title and a chapter."""
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    spec = ClipSpec(frames=60, audio="aac", title="shoot", rotation=90)
    spec.options = {"crf": "12", "g": "12", "keyint_min": "12"}
    return make_clip(path, spec)


def test_probe_finds_every_frame_and_keyframe(long_clip):
    timeline = probe(long_clip)
    assert timeline.pts == [i * 1001 for i in range(60)]
    assert timeline.keyframes == [0, 12, 24, 36, 48]


def test_cuts_fall_on_keyframes_moved_onto_the_call_grid():
    timeline = Timeline(Fraction(1), Fraction(0), list(range(100)), [0, 30, 63, 90])
    parts = plan(timeline, 3, before=2, after=2, per_call=4)
    assert [p.frames[0] for p in parts] == [0, 28, 60]  # keyframes 30, 63 (near 33, 67), x4
    assert sum(p.span.count for p in parts) == 100
    assert [p.span.context for p in parts] == [0, 2, 2]
    assert parts[0].span.start is None and parts[-1].span.end is None
    assert parts[1].span.start == 25.5  # halfway to frame 26, its first frame of context
    assert parts[1].span.end == 61.5  # 32 frames in 8 calls, then 2 of context


def test_without_keyframes_near_the_cut_it_falls_anywhere_and_never_too_short():
    timeline = Timeline(Fraction(1), Fraction(0), list(range(100)), [0])
    assert [p.frames[0] for p in plan(timeline, 3, 2, 2, 4)] == [0, 32, 64]
    assert min(len(p.frames) for p in plan(timeline, 50, 2, 2, 4)) >= MIN_FRAMES


@pytest.mark.parametrize("method", ["f2r", "stbn"])
def test_segments_give_the_frames_of_one_piece(long_clip, tmp_path, checkpoints, method):
    common = ("--weights", checkpoints[method][1], "--sigma", "20", *LOSSLESS)
    whole, pieces = tmp_path / "whole.mkv", tmp_path / "pieces.mkv"
    threads = torch.get_num_threads()
    # As many torch threads as each of the 2 workers gets: sums in the same order, so the
    # same frames to the bit (with other counts, STBN's differ by a rounding flip).
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // 2))
    try:
        assert denoise(long_clip, whole, *common).exit_code == 0
    finally:
        torch.set_num_threads(threads)
    result = denoise(long_clip, pieces, *common, "--jobs", "2", "--segments", "3", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["frames"] == 60
    assert largest_difference(whole, pieces) == 0
    assert decoded_pts(pieces) == decoded_pts(whole)
    assert audio_packets(pieces) == audio_packets(long_clip)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no segment left


def test_an_mp4_keeps_every_timestamp_tag_and_the_audio(long_clip, tmp_path, checkpoints):
    out = tmp_path / "out.mp4"
    args = ("--weights", checkpoints["f2r"][1], "--sigma", "20", "--segments", "4")
    result = denoise(long_clip, out, *args)
    assert result.exit_code == 0, result.stderr
    assert decoded_pts(out) == decoded_pts(long_clip)
    assert audio_packets(out) == audio_packets(long_clip)
    with VideoReader(out) as reader:
        assert reader.info.rotation == 90
    with av.open(str(out)) as container:
        assert container.metadata["title"] == "shoot"
        assert [c["metadata"]["title"] for c in container.chapters()] == ["shoot"]
        keys = [p.pts for p in container.demux(video=0) if p.is_keyframe and p.size]
    assert keys == [0, 24 * 1001]  # two segments (cut at 24), each from its own keyframe


def test_one_piece_options_are_refused_in_one_line(long_clip, tmp_path, checkpoints):
    out = tmp_path / "out.mkv"
    result = denoise(long_clip, out, "--weights", checkpoints["f2r"][1], "-j", "2", "--end", "1")
    assert result.exit_code == 2
    assert "--start and --end apply to one-piece runs" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2 and not out.exists()


def test_a_failed_segment_leaves_no_output(long_clip, tmp_path, checkpoints, monkeypatch):
    real = pipeline.denoise_video

    def damaged_after_the_first(*args, span=None, **kwargs):
        if span is not None and span.context:
            raise VdenoiseError("long.mp4 is damaged: decoding failed at 1.00 s")
        return real(*args, span=span, **kwargs)

    monkeypatch.setattr(pipeline, "denoise_video", damaged_after_the_first)
    out = tmp_path / "out.mp4"
    args = ("--weights", checkpoints["f2r"][1], "--sigma", "20", "--segments", "2")
    result = denoise(long_clip, out, *args)
    assert result.exit_code == 1
    assert "a segment failed: long.mp4 is damaged" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # neither the output nor the segments' folder
