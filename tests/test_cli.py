import json
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from tests.clipmaker import ClipSpec, decoded_pts, make_clip
from tests.conftest import Identity, shared_clip
from vdenoise import weights
from vdenoise.checkpoint import load_model, save_checkpoint
from vdenoise.cli import app
from vdenoise.models import build

runner = CliRunner()


@pytest.fixture
def clip(tmp_path):
    return make_clip(tmp_path / "in.mp4", ClipSpec(frames=6, audio="aac"))


@pytest.fixture(autouse=True)
def identity_weights(monkeypatch):
    """Most tests here are about the command, not the model: denoise with an identity."""
    monkeypatch.setattr("vdenoise.checkpoint.load_model", lambda *args: (Identity(), "identity"))


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result) -> str:
    """The error, said in exactly one line, after any notes; never a traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: "), result.stderr
    assert sum(line.startswith("error") for line in lines) == 1
    assert "Traceback" not in result.stderr + result.stdout
    return lines[-1]


def test_denoise_writes_the_output_and_a_summary(clip, tmp_path):
    result = run("denoise", clip, tmp_path / "out.mp4")
    assert result.exit_code == 0, result.stderr
    assert "✓ 6 frames" in result.stderr and result.stdout == ""
    assert decoded_pts(tmp_path / "out.mp4") == decoded_pts(clip)


def test_json_is_one_document_on_stdout(clip, tmp_path):
    result = run("denoise", clip, tmp_path / "o.mkv", "--json", "-q")
    assert result.exit_code == 0 and result.stderr == ""
    report = json.loads(result.stdout)
    assert report["ok"] and report["frames"] == 6 and report["pix_fmt"] == "yuv420p"


def test_json_failure_is_one_document_too(tmp_path):
    result = run("denoise", tmp_path / "nope.mp4", tmp_path / "o.mp4", "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "ok": False,
        "error": f"{tmp_path / 'nope.mp4'} does not exist",
        "hint": None,
        "exit_code": 2,
    }


def test_missing_input_is_a_usage_error(tmp_path):
    result = run("denoise", tmp_path / "nope.mp4", tmp_path / "o.mp4")
    assert result.exit_code == 2
    assert "does not exist" in one_line_error(result)


def test_text_file_named_mp4_is_a_runtime_error(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_text("hello\n" * 100)
    result = run("denoise", fake, tmp_path / "o.mp4")
    assert result.exit_code == 1
    assert "not a readable video" in one_line_error(result)
    assert not (tmp_path / "o.mp4").exists()


def test_missing_output_folder_is_a_usage_error(clip, tmp_path):
    result = run("denoise", clip, tmp_path / "no" / "o.mp4")
    assert result.exit_code == 2 and "does not exist" in one_line_error(result)


def test_existing_output_needs_overwrite(clip, tmp_path):
    (tmp_path / "o.mp4").write_bytes(b"keep")
    result = run("denoise", clip, tmp_path / "o.mp4")
    assert result.exit_code == 2 and "--overwrite" in one_line_error(result)
    assert run("denoise", clip, tmp_path / "o.mp4", "-y").exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "1:xx"], "is not a time"),
        (["--tile", "big"], "--tile"),
        (["--fps", "25"], "image-sequence"),
        (["--encoder-opt", "novalue"], "KEY=VALUE"),
        (["--codec", "ffv1", "--crf", "10"], "--crf"),
        (["--device", "tpu"], "unknown device"),
    ],
)
def test_bad_options_are_usage_errors(clip, tmp_path, args, message):
    result = run("denoise", clip, tmp_path / "o.mkv", *args)
    assert result.exit_code == 2
    assert message in one_line_error(result)


class Interrupts(Identity):
    def forward(self, clip, sigma):
        raise KeyboardInterrupt


def test_ctrl_c_exits_130_and_removes_the_partial_output(clip, tmp_path, monkeypatch):
    monkeypatch.setattr(
        "vdenoise.checkpoint.load_model", lambda *args: (Interrupts(), "interrupts")
    )
    result = run("denoise", clip, tmp_path / "o.mp4")
    assert result.exit_code == 130 and "interrupted" in one_line_error(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_probe_reports_the_stream(clip):
    result = run("probe", clip)
    assert result.exit_code == 0 and "64x48 yuv420p (8-bit)" in result.stdout
    info = json.loads(run("probe", clip, "--json").stdout)
    assert info["frame_count"] == 6 and info["audio_streams"] == 1


def test_the_installed_command_runs(clip):
    """The real entry point in a separate process: exit codes reach the shell."""
    ok = subprocess.run(
        [sys.executable, "-m", "vdenoise", "probe", str(clip)], capture_output=True, text=True
    )
    assert ok.returncode == 0 and "64x48" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "vdenoise", "probe", str(clip) + ".missing"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error:")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Checkpoints of both methods as a user would have them (random weights, tiny presets)."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    return {m: save_tiny(m, folder / f"{m}.safetensors") for m in ("f2r", "stbn")}


def save_tiny(method, path):
    save_checkpoint(build(method, "tiny"), path)
    return path


@pytest.mark.parametrize("method", ["f2r", "stbn"])
def test_real_clip_end_to_end_with_a_checkpoint(saved, tmp_path, monkeypatch, method):
    monkeypatch.setattr("vdenoise.checkpoint.load_model", load_model)
    src = shared_clip("realshort.mp4")
    out = tmp_path / "out.mp4"
    result = run("denoise", src, out, "--weights", saved[method], "--end", "0.6", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    expected = [t for t in sorted(decoded_pts(src)) if t < 0.6]
    assert report["frames"] == len(expected) and decoded_pts(out) == expected
    assert report["sigma_estimated"] and report["sigma"] >= 0
    assert f"weights: {saved[method]}" in result.stderr


def test_no_released_weights_is_said_clearly(clip, tmp_path, monkeypatch):
    monkeypatch.setattr("vdenoise.checkpoint.load_model", load_model)
    monkeypatch.setattr(weights, "RELEASES", ())
    result = run("denoise", clip, tmp_path / "o.mp4", "--method", "stbn")
    assert result.exit_code == 1 and "no trained stbn weights" in one_line_error(result)
    result = run("denoise", clip, tmp_path / "o.mp4", "--method", "nope")
    assert result.exit_code == 2 and "unknown method" in one_line_error(result)


def test_models_commands(saved, monkeypatch):
    monkeypatch.setattr(weights, "RELEASES", ())
    assert "no weights have been released yet" in run("models", "list").stdout
    result = run("models", "verify", saved["stbn"])
    assert result.exit_code == 0 and "stbn tiny, sha256 " in result.stdout
    result = run("models", "path", "nothing")
    assert result.exit_code == 2 and "no release is named" in one_line_error(result)
    result = run("models", "card", saved["stbn"], "--name", "stbn-test")
    assert result.exit_code == 0 and result.stdout.startswith("# stbn-test\n")
    assert weights.file_sha256(saved["stbn"]) in result.stdout
    result = run("models", "card", "missing.safetensors")
    assert result.exit_code == 2 and "does not exist" in one_line_error(result)
