import json
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from tests.clipmaker import ClipSpec, audio_packets, decoded_pts, make_clip, our_rgb
from tests.test_cli import one_line_error
from vdenoise.cli import app
from vdenoise.compare import Source, compare_video

runner = CliRunner()
RED, BLUE = (200, 30, 30), (30, 30, 200)


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def solid_clip(path, colour, frames=12, rate=30, size=(64, 48), patch=None):
    """A clip of one colour (with a white square at `patch` = (x, y, side)), H.264 4:4:4."""
    width, height = size
    picture = np.zeros((height, width, 3), np.uint8) + np.array(colour, np.uint8)
    if patch:
        x, y, side = patch
        picture[y : y + side, x : x + side] = 255
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate, options={"qp": "0"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(picture, "rgb24").reformat(format="yuv444p")
            frame.pts, frame.time_base = i, Fraction(1, rate)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def test_side_by_side_keeps_the_originals_frames_timestamps_and_audio(tmp_path):
    original = make_clip(tmp_path / "original.mp4", ClipSpec(frames=12, audio="aac"))
    processed = make_clip(tmp_path / "processed.mp4", ClipSpec(frames=12))
    out = tmp_path / "cmp.mp4"
    report = compare_video([Source(original, "a"), Source(processed, "b")], out)
    assert report.frames == 12 and (report.width, report.height) == (128, 48)
    assert decoded_pts(out) == decoded_pts(original)
    assert audio_packets(out) == audio_packets(original)


def test_known_pixels_land_in_their_half_and_the_labels_on_top(tmp_path):
    red = solid_clip(tmp_path / "red.mp4", RED)
    blue = solid_clip(tmp_path / "blue.mp4", BLUE)
    out = tmp_path / "cmp.mkv"
    result = run("compare", red, blue, "-o", out, "--label", "noisy", "--label", "clean")
    assert result.exit_code == 0, result.stderr
    frames = our_rgb(out)
    assert frames.shape == (12, 48, 128, 3)
    below = frames[:, 30:]  # under the labels
    assert np.abs(below[:, :, :64] - RED).max() < 3 and np.abs(below[:, :, 64:] - BLUE).max() < 3
    assert frames[0, 2:20, 2:60].max() > 240  # white label text at the top left of each half
    assert frames[0, 2:20, 66:124].max() > 240


def test_split_screen_keeps_the_size_with_a_wipe_line(tmp_path):
    red = solid_clip(tmp_path / "red.mp4", RED)
    blue = solid_clip(tmp_path / "blue.mp4", BLUE)
    out = tmp_path / "split.mp4"
    assert run("compare", red, blue, "-o", out, "--split").exit_code == 0
    frames = our_rgb(out)
    assert frames.shape == (12, 48, 64, 3)
    assert np.abs(frames[:, 30:, :24] - RED).max() < 8  # lossy (crf 18): away from the edge
    assert np.abs(frames[:, 30:, 40:] - BLUE).max() < 8
    assert (frames[:, 30:, 31:33] > 200).all()  # the white wipe line between the halves


def test_other_frame_rates_are_matched_by_time(tmp_path):
    original = solid_clip(tmp_path / "a.mp4", RED, frames=12, rate=30)
    half_rate = solid_clip(tmp_path / "b.mp4", BLUE, frames=6, rate=15)
    out = tmp_path / "cmp.mp4"
    assert compare_video([Source(original, "a"), Source(half_rate, "b")], out).frames == 12
    assert decoded_pts(out) == decoded_pts(original)


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (dict(size=(32, 48)), "is 32x48 and red.mp4 64x48"),
        (dict(frames=6), "has 6 frames and red.mp4 12"),
        (dict(frames=6, rate=10), "runs on past"),  # 0.6 s against 0.4 s, another rate
    ],
)
def test_mismatched_inputs_are_refused_in_one_line_and_nothing_is_written(tmp_path, other, message):
    red = solid_clip(tmp_path / "red.mp4", RED)
    blue = solid_clip(tmp_path / "blue.mp4", BLUE, **other)
    result = run("compare", red, blue, "-o", tmp_path / "out.mp4")
    assert result.exit_code == 2
    assert message in one_line_error(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blue.mp4", "red.mp4"]


def test_one_input_or_an_existing_output_is_refused(tmp_path):
    red = solid_clip(tmp_path / "red.mp4", RED)
    result = run("compare", red, "-o", tmp_path / "out.mp4")
    assert result.exit_code == 2 and "at least one processed" in one_line_error(result)
    result = run("compare", red, red, "-o", red)
    assert result.exit_code == 2 and "overwrite the input" in one_line_error(result)


def test_stills_show_the_frames_and_the_stated_crops_where_versions_differ(tmp_path):
    plain = solid_clip(tmp_path / "plain.mp4", RED, size=(96, 72))
    patched = solid_clip(tmp_path / "patched.mp4", RED, size=(96, 72), patch=(60, 40, 6))
    out = tmp_path / "still.png"
    result = run("compare", plain, patched, "-o", out, "--at", "0.2", "--zoom", "4", "--json")
    assert result.exit_code == 0, result.stderr
    (still,) = json.loads(result.stdout)["stills"]
    assert still["path"] == str(out) and still["zoom"] == 4
    first = still["regions"][0]
    assert (first["width"], first["height"]) == ((96 - 2) // 8, 72 // 8)  # under 1/(2 zoom)
    x, y = first["x"], first["y"]
    assert x <= 60 and x + first["width"] >= 66 and y <= 40 and y + first["height"] >= 46
    image = cv2.imread(str(out))[..., ::-1].astype(int)
    assert image.shape[0] == 72 + 2 + 9 * 4  # the frames, then one row of crops
    assert np.abs(image[60:70, 2:50] - RED).max() < 4  # the original, under its label
    tile_y, tile_w, tile_h = 72 + 2, 11 * 4, 9 * 4  # the first crop row, below the frames
    crop = image[tile_y : tile_y + tile_h, tile_w + 2 : 2 * tile_w + 2]  # patched, region 1
    frame = our_rgb(patched)[6]  # the frame at 0.2 s
    expected = np.repeat(np.repeat(frame[y : y + 9, x : x + 11], 4, 0), 4, 1)  # nearest
    assert np.abs(crop[20:] - expected[20:]).max() < 4  # under the crop's label


def test_several_times_give_one_png_each_or_none(tmp_path):
    a = solid_clip(tmp_path / "a.mp4", RED)
    b = solid_clip(tmp_path / "b.mp4", BLUE)
    result = run("compare", a, b, "-o", tmp_path / "c.png", "--at", "0.1", "--at", "0:00.3")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "c-0.1s.png").exists() and (tmp_path / "c-0.3s.png").exists()
    result = run("compare", a, b, "-o", tmp_path / "d.png", "--at", "0.1", "--at", "5")
    assert result.exit_code == 2 and "past the end" in one_line_error(result)
    assert not list(tmp_path.glob("d*"))
