import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.clipmaker import ClipSpec, decoded_pts, make_clip
from tests.conftest import Identity
from tests.test_cli import one_line_error
from vdenoise.cli import app
from vdenoise.preview import PREVIEW_SECONDS, preview_path, preview_range

runner = CliRunner()


@pytest.fixture(autouse=True)
def identity_weights(monkeypatch):
    monkeypatch.setattr("vdenoise.checkpoint.load_model", lambda *args: (Identity(), "identity"))


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def clip(tmp_path):
    """6 s at 29.97 fps with audio."""
    return make_clip(tmp_path / "in.mp4", ClipSpec(frames=180, width=32, height=32, audio="aac"))


def test_preview_writes_only_the_comparison_and_says_the_projected_time(clip, tmp_path):
    result = run("denoise", clip, tmp_path / "out.mp4", "--preview", "--sigma", "10")
    assert result.exit_code == 0, result.stderr
    preview = tmp_path / "out.preview.mp4"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", preview.name]
    lines = result.stdout.splitlines()
    said = re.fullmatch(r"preview: (.*) \(1.5-4.5 s, (\d+) frames denoised at .* fps\)", lines[0])
    assert said and said[1] == str(preview), lines[0]
    assert lines[1].startswith("the whole run would take about ") and "for 180 frames" in lines[1]
    frames = int(said[2])
    assert 89 <= frames <= 90  # 3 s at 29.97 fps
    pts, source = decoded_pts(preview), decoded_pts(clip)
    first = next(i for i, t in enumerate(source) if t >= 1.5)
    assert pts == [t - source[first] for t in source[first : first + frames]]  # as --start


def test_preview_json_and_refusals(clip, tmp_path):
    result = run("denoise", clip, tmp_path / "out.mkv", "--preview", "--sigma", "10", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["preview"] == str(tmp_path / "out.preview.mkv")  # the output's container
    assert report["total_frames"] == 180 and report["projected_seconds"] > 0
    again = run("denoise", clip, tmp_path / "out.mkv", "--preview", "--sigma", "10")
    assert again.exit_code == 2 and "already exists" in one_line_error(again)
    jobs = run("denoise", clip, tmp_path / "o.mp4", "--preview", "--jobs", "2")
    assert jobs.exit_code == 2 and "one process" in one_line_error(jobs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.preview.mkv"]


def test_the_preview_range_is_the_middle_of_the_chosen_part():
    assert preview_range(10.0, None, None) == (5 - PREVIEW_SECONDS / 2, 5 + PREVIEW_SECONDS / 2)
    assert preview_range(3.4, None, None) == (0.0, 3.4)  # hardly longer: all of it
    assert preview_range(100.0, 20.0, 30.0) == (23.5, 26.5)
    assert preview_path(Path("a/b.mp4")).as_posix() == "a/b.preview.mp4"
