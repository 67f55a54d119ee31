import cv2
import numpy as np
import pytest
import torch

from tests.clipmaker import ClipSpec, make_clip
from vdenoise.errors import UsageError
from vdenoise.training.data import ClipSampler, find_sequences, load_sequences, read_sequence


def write_frames(folder, n=5, height=24, width=32):
    folder.mkdir()
    for i in range(n):
        image = np.full((height, width, 3), (10 * i, 100, 200), np.uint8)  # BGR on disk
        cv2.imwrite(str(folder / f"frame{i + 1}.png"), image)  # frame10 sorts after frame9
    return folder


def test_frame_folder_reads_in_natural_order_as_rgb(tmp_path):
    frames = read_sequence(write_frames(tmp_path / "seq", n=11))
    assert frames.shape == (11, 3, 24, 32) and frames.dtype == torch.uint8
    assert frames[:, 2, 0, 0].tolist() == [10 * i for i in range(11)]  # blue channel: order
    assert frames[0, 0, 0, 0] == 200  # red first


def test_video_file_reads_with_opencv(tmp_path):
    clip = make_clip(tmp_path / "a.mp4", ClipSpec(frames=7, width=64, height=48))
    frames = read_sequence(clip, max_frames=5)
    assert frames.shape == (5, 3, 48, 64)


def test_a_folder_of_sequences_lists_videos_and_frame_folders(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    write_frames(root / "b")
    make_clip(root / "a.mp4", ClipSpec(frames=3))
    (root / "notes.txt").write_text("not a sequence")
    assert [p.name for p in find_sequences(root)] == ["a.mp4", "b"]
    assert [s.shape[0] for s in load_sequences(root)] == [3, 5]


def test_missing_or_empty_sources_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        find_sequences(tmp_path / "nope")
    with pytest.raises(UsageError, match="no videos or frame folders"):
        find_sequences(tmp_path)


def test_clips_are_consecutive_frames_with_one_crop():
    n, h, w = 20, 40, 50
    ramp = torch.arange(h * w).view(1, h, w) % 251
    seq = torch.stack([(ramp + 0 * i).expand(3, h, w) for i in range(n)]).to(torch.uint8)
    seq[:, 0] = torch.arange(n, dtype=torch.uint8).view(n, 1, 1)  # red channel: frame index
    sampler = ClipSampler([seq], frames=5, crop=16, augment=True, seed=3)
    for _ in range(20):
        clip = sampler.sample(1)[0]
        assert clip.shape == (5, 3, 16, 16)
        index = (clip[:, 0, 0, 0] * 255).round()
        assert (index.diff().abs() == 1).all()  # consecutive (reflected at the ends, or reversed)
        assert torch.equal(clip[0, 1:], clip[-1, 1:])  # the same crop (and flips) in every frame


def test_crop_shrinks_to_the_smallest_sequence():
    seq = torch.zeros(3, 3, 20, 30, dtype=torch.uint8)
    assert ClipSampler([seq], frames=5, crop=96).sample(2).shape == (2, 5, 3, 20, 20)
