import json

import cv2
import pytest
from typer.testing import CliRunner

from tests.test_cli import one_line_error
from vdenoise.checkpoint import save_checkpoint
from vdenoise.cli import app
from vdenoise.models import build
from vdenoise.weights import file_sha256

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "tiny-f2r.safetensors"
    save_checkpoint(build("f2r", "tiny"), path, {"kind": "test"})
    return path


def test_bench_json_on_a_partial_set8(set8, checkpoint):
    baselines = "noisy,ffmpeg-atadenoise"
    result = run("bench", "--root", set8, "--weights", checkpoint, "--baselines", baselines,
                 "--sigma", "10,30", "--frames", 4, "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["schema_version"] == 1
    assert data["dataset"]["label"] == "set8 (4/8 sequences)" and not data["dataset"]["full"]
    assert [m["name"] for m in data["methods"]] == ["noisy", "tiny-f2r", "ffmpeg-atadenoise"]
    ours = data["methods"][1]
    assert ours["sha256"] == file_sha256(checkpoint)
    assert ours["model_fps"] > 0 and ours["end_to_end_fps"] > 0
    assert len(data["scores"]) == 4 * 2 * 3 and len(data["averages"]) == 2 * 3
    assert data["protocol"]["conditions"] == ["sigma 10", "sigma 30"]
    assert {s["frames"] for s in data["scores"]} == {4}
    assert all(a["flicker"] > 0 for a in data["averages"]) and data["protocol"]["flicker"]
    assert data["memory"]["peak_host_bytes"] > 0


def test_bench_writes_markdown_and_plot_and_prints_the_tables(set8, tmp_path):
    md, png = tmp_path / "bench.md", tmp_path / "bench.png"
    args = ["bench", "--root", set8, "--method", "none", "--baselines", "noisy", "--sigma", "20,40",
            "--frames", 2]  # fmt: skip
    result = run(*args, "--markdown", md, "--plot", png)
    assert result.exit_code == 0, result.stderr
    assert "| method | sigma 20 | sigma 40 |" in result.stdout
    assert md.read_text() == result.stdout
    assert cv2.imread(str(png)) is not None
    again = run(*args, "--markdown", md)
    assert "exists" in one_line_error(again) and again.exit_code != 0
    assert md.read_text() == result.stdout  # untouched


def test_bench_eight_bit_labels_its_conditions_and_plots(set8, tmp_path):
    png = tmp_path / "bench.png"
    args = ["bench", "--root", set8, "--method", "none", "--baselines", "noisy", "--sigma", "30",
            "--frames", 2, "--eight-bit", "--plot", png]  # fmt: skip
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    assert "| method | sigma 30, 8-bit |" in result.stdout
    assert cv2.imread(str(png)) is not None


def test_bench_method_none_runs_the_baselines_alone(set8):
    args = ["--method", "none", "--baselines", "noisy", "--sigma", "20", "--frames", 1, "--json"]
    result = run("bench", "--root", set8, *args)
    assert result.exit_code == 0, result.stderr
    assert [m["name"] for m in json.loads(result.stdout)["methods"]] == ["noisy"]


def test_bench_without_data_says_where_to_get_it(monkeypatch):
    monkeypatch.delenv("VDENOISE_DATA", raising=False)
    result = run("bench", "--dataset", "set8")
    assert result.exit_code == 2
    assert "--root" in one_line_error(result) and "FastDVDnet" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sigma", "ten"], "--sigma"),
        (["--sigma", "300"], "0-255"),
        (["--noise", "pink:3"], "noise"),
        (["--baselines", "vbm4d"], "unknown baseline"),
        (["--dataset", "kodak"], "unknown dataset"),
    ],
)
def test_bench_refuses_bad_options_in_one_line(set8, args, message):
    result = run("bench", "--root", set8, *args)
    assert result.exit_code != 0
    assert message in one_line_error(result)
