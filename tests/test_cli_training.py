import os

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from tests.clipmaker import ClipSpec, make_clip
from tests.test_cli import one_line_error
from vdenoise.checkpoint import load_checkpoint, read_metadata
from vdenoise.cli import app
from vdenoise.models.f2r import default_flow
from vdenoise.training import run as run_module
from vdenoise.training.flow_cache import leaves
from vdenoise.training.trainer import Trainer, resume_path

runner = CliRunner()
SMALL = ["--preset", "tiny", "--batch", "2", "--crop", "32"]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def clip(tmp_path):
    return make_clip(tmp_path / "noisy.mp4", ClipSpec(frames=8, audio="aac"))


def test_fit_writes_a_checkpoint_and_denoises_with_it(tmp_path, clip):
    out = tmp_path / "fit.safetensors"
    video = tmp_path / "clean.mp4"
    result = run("fit", clip, "-o", out, "--steps", 4, *SMALL, "--sigma", 10, "--denoise", video)
    assert result.exit_code == 0, result.stderr
    assert video.stat().st_size > 0
    training = read_metadata(out)["training"]
    assert training["kind"] == "fit" and training["sigma"] == 10 and training["frames"] == 8
    assert training["refiner_loss"] == "measured"  # SURE for the measured noise
    assert len(training["noise_profile"]["correlation"]) == 7
    load_checkpoint(out)
    again = run("denoise", clip, tmp_path / "again.mp4", "--weights", out)
    assert again.exit_code == 0
    assert "noise level 10.0 (0-255), the level these weights were fitted to" in again.stderr
    assert training["noise_profile"]["relative_variance"] is not None
    assert "noise std by brightness, as fitted" in " ".join(again.stderr.split())


def test_fit_estimates_the_noise_level_and_names_its_default_output(tmp_path, clip, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("fit", clip, "--steps", 2, *SMALL, "--method", "stbn")
    assert result.exit_code == 0, result.stderr
    assert "noise level estimated" in result.stderr
    assert read_metadata(tmp_path / "noisy.stbn.safetensors")["method"] == "stbn"


def test_fit_refuses_to_clobber_a_checkpoint_or_a_video(tmp_path, clip):
    out = tmp_path / "fit.safetensors"
    out.write_bytes(b"precious")
    result = run("fit", clip, "-o", out, "--steps", 2, *SMALL)
    assert result.exit_code == 2 and "--resume" in one_line_error(result)
    assert out.read_bytes() == b"precious"
    existing = tmp_path / "existing.mp4"
    existing.write_bytes(b"keep")
    result = run("fit", clip, "-o", tmp_path / "new.safetensors", "--steps", 2, *SMALL,
                 "--denoise", existing)  # fmt: skip
    assert result.exit_code == 2 and not (tmp_path / "new.safetensors").exists()
    assert existing.read_bytes() == b"keep"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "0"], "budget"),
        (["--steps", "2", "--minutes", "1"], "not both"),
        (["--method", "nope"], "nope"),
        (["--steps", "2", "--joint", "1"], "--joint"),
        (["--steps", "2", "--joint", "0.3", "--refiner", "adaptive"], "--joint"),
    ],
)
def test_fit_bad_options_are_usage_errors(tmp_path, clip, args, message):
    result = run("fit", clip, "-o", tmp_path / "x.safetensors", *args)
    assert result.exit_code == 2
    assert message in one_line_error(result)


def test_fit_on_a_missing_file_is_one_line(tmp_path):
    result = run("fit", tmp_path / "missing.mp4", "--steps", 2)
    assert result.exit_code == 2 and "does not exist" in one_line_error(result)


def test_ctrl_c_saves_a_checkpoint_that_resume_continues(tmp_path, clip, monkeypatch):
    out = tmp_path / "fit.safetensors"
    step = Trainer._step
    calls = []

    def interrupted(self, phase):
        calls.append(phase.name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return step(self, phase)

    monkeypatch.setattr(Trainer, "_step", interrupted)
    result = run("fit", clip, "-o", out, "--steps", 6, *SMALL, "--sigma", 10)
    assert result.exit_code == 130
    assert "--resume" in one_line_error(result)
    load_checkpoint(out)
    assert resume_path(out).exists()
    result = run("fit", clip, "-o", out, "--steps", 6, *SMALL, "--sigma", 10, "--resume")
    assert result.exit_code == 0, result.stderr
    assert f"resuming the run saved in {out}" in result.stderr
    phases = read_metadata(out)["training"]["phases"]
    assert sum(p["steps"] for p in phases) == 6


def test_train_validates_on_held_out_sequences(tmp_path, clip):
    data = tmp_path / "data"
    data.mkdir()
    make_clip(data / "a.mp4", ClipSpec(frames=6))
    out = tmp_path / "release.safetensors"
    result = run("train", data, "-o", out, "--val", data, "--val-frames", 3, "--steps", 3, *SMALL)
    assert result.exit_code == 0, result.stderr
    training = read_metadata(out)["training"]
    assert training["kind"] == "train" and training["data"] == ["a.mp4"]
    assert training["settings"]["noise"] == "gaussian:5-55"
    assert training["validation_noise"] == "gaussian:30"
    assert training["validation"][-1]["psnr"] > 0


def test_train_on_faster_motion_with_flows_computed_once(tmp_path, monkeypatch):
    """--frame-steps and --flow-cache: the flows land in the cache (keyed by the data and
    the estimator), the settings record both, and validation also runs at 2x and 3x motion."""
    monkeypatch.setenv("VDENOISE_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    data.mkdir()
    make_clip(data / "a.mp4", ClipSpec(frames=9))
    out = tmp_path / "m.safetensors"
    args = ["--val", data, "--val-frames", 3, "--steps", 2, "--frame-steps", "1,3", *SMALL]
    monkeypatch.setenv("VDENOISE_FLOW", "auto")  # DIS on CPUs, the torch flow on GPUs
    result = run("train", data, "-o", out, "--flow-cache", "--noisy-flows", *args)
    assert result.exit_code == 0, result.stderr
    cached = list((tmp_path / "cache" / "flows").glob("*.safetensors"))
    assert len(cached) == 1  # the training device's estimator's
    again = ["--flow-cache", "--noisy-flows", "--all-flows", "--overwrite"]
    result = run("train", data, "-o", out, *again, *args)
    assert result.exit_code == 0, result.stderr
    cached = list((tmp_path / "cache" / "flows").glob("*.safetensors"))
    assert len(cached) == len(leaves(default_flow())) == 2  # one per estimator it may meet
    training = read_metadata(out)["training"]
    assert training["settings"]["flow_cache"] and training["settings"]["noisy_flows"]
    assert training["settings"]["frame_steps"] == [1, 3]
    assert {"psnr", "psnr x2", "psnr x3"} <= set(training["validation"][-1])
    result = run("train", data, "-o", tmp_path / "n.safetensors", "--noisy-flows", *args)
    assert result.exit_code == 2 and "--flow-cache" in one_line_error(result)
    bad = ["--frame-steps", "0,2", "--steps", 2, *SMALL]
    result = run("train", data, "-o", tmp_path / "n.safetensors", *bad)
    assert result.exit_code == 2 and "--frame-steps" in one_line_error(result)


def test_train_needs_a_budget_and_noise(tmp_path):
    result = run("train", tmp_path, "-o", tmp_path / "x.safetensors")
    assert result.exit_code == 2 and "budget" in one_line_error(result)
    result = run(
        "train", tmp_path, "-o", tmp_path / "x.safetensors", "--steps", 1, "--noise", "none"
    )
    assert result.exit_code == 2 and "--noise" in one_line_error(result)


def test_train_runs_where_pyav_is_missing(tmp_path):
    """GPU machines often lack PyAV: `python -m vdenoise train` must not need it."""
    import subprocess
    import sys
    from pathlib import Path

    frames = tmp_path / "clean"
    frames.mkdir()
    for i in range(6):
        cv2.imwrite(
            str(frames / f"{i}.png"), np.random.default_rng(i).integers(0, 255, (40, 48, 3))
        )
    (tmp_path / "av.py").write_text("raise ImportError('no PyAV here')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    command = [sys.executable, "-m", "vdenoise", "train", frames, "-o", tmp_path / "m.safetensors",
               "--steps", "2", *SMALL, "--device", "cpu"]  # fmt: skip
    done = subprocess.run(command, cwd=Path(__file__).parents[1], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    assert load_checkpoint(tmp_path / "m.safetensors") is not None


def test_fit_of_a_new_model_trains_both_stages_and_of_trained_f2r_weights_fine_tunes(
    tmp_path, clip
):
    start = tmp_path / "start.safetensors"
    assert run("fit", clip, "-o", start, "--steps", 2, *SMALL, "--sigma", 10).exit_code == 0
    settings = read_metadata(start)["training"]["settings"]
    assert settings["anchor_share"] > 0 and settings["lr"] == 3e-4  # a new model
    out = tmp_path / "fit.safetensors"
    result = run("fit", clip, "-o", out, "--from", start, "--steps", 2, "--batch", 2,
                 "--crop", 32, "--sigma", 10)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    settings = read_metadata(out)["training"]["settings"]
    assert settings["lr"] == 1e-4 and settings["anchor_share"] in run_module.ANCHOR_SHARE.values()
