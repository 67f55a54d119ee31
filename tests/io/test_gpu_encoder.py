"""The encoder of runs on a GPU: its hardware H.264 encoder where one opens, else libx264 at a
preset that keeps pace. This machine has no NVENC, so the fallback runs for real here."""

import av

from tests.clipmaker import ClipSpec, make_clip
from vdenoise.io.encoding import FAST_PRESET, EncodeOptions, for_gpu, opens
from vdenoise.io.reader import VideoReader
from vdenoise.io.writer import VideoWriter


def test_an_encoder_that_does_not_open_falls_back_to_a_fast_libx264_in_one_line():
    options, note = for_gpu(EncodeOptions(), "mp4", hardware="no_such_encoder")
    assert options == EncodeOptions(codec="libx264", preset=FAST_PRESET)
    assert note is not None and "\n" not in note and "no_such_encoder" in note


def test_nvenc_is_chosen_only_where_it_opens():
    options = for_gpu(EncodeOptions(), "mp4")[0]
    assert options.codec == ("h264_nvenc" if opens("h264_nvenc") else "libx264")
    assert opens("libx264")


def test_the_users_choice_and_other_containers_are_left_alone():
    chosen = EncodeOptions(crf=20)
    assert for_gpu(chosen, "mp4") == (chosen, None)
    assert for_gpu(EncodeOptions(), "webm") == (EncodeOptions(), None)


def test_a_writer_for_gpu_frames_says_which_encoder_it_opened(tmp_path):
    src = make_clip(tmp_path / "in.mp4", ClipSpec(frames=3, width=64, height=48))
    with VideoReader(src) as reader:
        writer = VideoWriter(tmp_path / "out.mp4", reader.info, EncodeOptions(), gpu=True)
        for frame in reader:
            writer.write(frame)
        writer.close()
    with av.open(str(tmp_path / "out.mp4")) as out:
        assert out.streams.video[0].codec_context.name in ("h264", "h264_nvenc")
        assert out.streams.video[0].frames == 3
    assert any(writer.codec in note for note in writer.notes)
