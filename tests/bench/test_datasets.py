import cv2
import pytest

from tests.conftest import shared_clip
from tests.datasets import frame_folder
from vdenoise.bench.datasets import SET8, open_dataset
from vdenoise.errors import UsageError


def test_set8_in_the_gopro_derfs_layout_is_found_and_labelled_partial(set8):
    data = open_dataset("set8", set8)
    assert [s.name for s in data.sequences] == ["motorbike", "rafting", "sunflower", "tractor"]
    assert not data.full
    assert data.label == "set8 (4/8 sequences)"


def test_the_full_set8_in_its_own_folder_is_labelled_plainly(tmp_path, box_frames):
    for name in SET8:
        frame_folder(tmp_path / "Set8" / name, box_frames[:3])
    data = open_dataset("set8", tmp_path)
    assert data.full and data.label == "set8" and len(data.sequences) == 8


def test_davis_layout_and_frames_sorted_by_number_not_text(tmp_path, box_frames):
    folder = tmp_path / "DAVIS" / "JPEGImages" / "480p" / "bike"
    folder.mkdir(parents=True)
    for number in (0, 1, 2, 10):  # unpadded: text order would put 10 before 2
        cv2.imwrite(str(folder / f"{number}.png"), box_frames[number])
    data = open_dataset("davis", tmp_path)
    assert data.label == "davis (1/30 sequences)"
    loaded = data.sequences[0].frames()
    assert loaded.shape[0] == 4
    expected = box_frames[10][..., ::-1].copy()  # RGB
    assert (loaded[3].permute(1, 2, 0).numpy() == expected).all()


def test_frames_are_capped_at_85_by_default_and_on_request(tmp_path, box_frames):
    frame_folder(tmp_path / "seq", box_frames * 8)  # 96 frames
    data = open_dataset("folder", tmp_path)
    assert data.full and data.sequences[0].frames().shape[0] == 85
    assert data.sequences[0].frames(5).shape[0] == 5


def test_a_folder_of_clean_videos_is_a_dataset(tmp_path):
    (tmp_path / "clip.mp4").symlink_to(shared_clip("realshort.mp4"))
    data = open_dataset("folder", tmp_path)
    assert [s.name for s in data.sequences] == ["clip"]
    assert data.sequences[0].frames(3).shape == (3, 3, 240, 320)


def test_missing_root_says_where_the_dataset_is_published(monkeypatch):
    monkeypatch.delenv("VDENOISE_DATA", raising=False)
    with pytest.raises(UsageError) as error:
        open_dataset("davis", None)
    assert "davischallenge.org" in error.value.hint


def test_root_from_the_environment(monkeypatch, set8):
    monkeypatch.setenv("VDENOISE_DATA", str(set8))
    assert len(open_dataset("set8", None).sequences) == 4


def test_a_root_without_the_dataset_is_an_error_not_an_empty_result(tmp_path):
    with pytest.raises(UsageError, match="no set8 sequences"):
        open_dataset("set8", tmp_path)


def test_fingerprint_changes_with_the_files(set8):
    before = open_dataset("set8", set8).fingerprint()
    (set8 / "GoPro" / "motorbike" / "00000.png").unlink()
    assert open_dataset("set8", set8).fingerprint() != before
