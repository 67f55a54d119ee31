import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import vdenoise.batch
from tests.clipmaker import ClipSpec, make_clip, raw_planes
from vdenoise.batch import Settings, load, plan, run_batch, shares_models
from vdenoise.cli import app
from vdenoise.errors import UsageError
from vdenoise.manifest import read as read_manifest

runner = CliRunner()


def batch(*args):
    return runner.invoke(app, ["batch", *map(str, args)])


@pytest.fixture
def shoot(tmp_path):
    """Three short clips, one in a sub-folder, as a shoot's card holds them."""
    folder = tmp_path / "card"
    (folder / "day2").mkdir(parents=True)
    for i, name in enumerate(["a.mp4", "b.mov", "day2/c.mp4"]):
        make_clip(folder / name, ClipSpec(frames=5 + i, width=48, height=32))
    (folder / "notes.txt").write_text("not a video")
    return folder


def manifest(folder):
    lines = (folder / "vdenoise-manifest.jsonl").read_text().splitlines()
    return {json.loads(line)["input"].split("card/")[-1]: json.loads(line) for line in lines}


def test_plan_mirrors_folders_and_renames_as_asked(shoot, tmp_path):
    out = tmp_path / "out"
    jobs = plan([str(shoot)], out, container="mkv", suffix="_dn")
    assert [j.output.relative_to(out).as_posix() for j in jobs] == [
        "a_dn.mkv",
        "b_dn.mkv",
        "day2/c_dn.mkv",
    ]
    assert [j.input.name for j in plan([str(shoot / "*.mp4")], out)] == ["a.mp4"]
    assert len(plan([str(shoot / "a.mp4"), str(shoot)], out)) == 3  # the same file once
    other = make_clip(tmp_path / "a.mp4", ClipSpec(frames=2))
    with pytest.raises(UsageError, match="would both be written"):
        plan([str(shoot / "a.mp4"), str(other)], out)
    with pytest.raises(UsageError, match="nothing matches"):
        plan([str(shoot / "*.avi")], out)


def same_frames(a, b):
    """The frame count of two videos whose decoded frames are identical (else fails)."""
    first, second = raw_planes(a), raw_planes(b)
    assert len(first) == len(second)
    for p, q in zip(first, second, strict=True):
        assert all(np.array_equal(x, y) for x, y in zip(p, q, strict=True))
    return len(first)


# Lossless, so what is compared is the denoised frames themselves: libx264 fed the same frames
# is not bit-reproducible from run to run in our threaded pipeline (1 encode in 5 differed).
LOSSLESS = ("--codec", "ffv1", "--container", "mkv")


def test_two_jobs_give_the_same_outputs_as_one_at_a_time(shoot, tmp_path, checkpoints):
    common = ("--weights", checkpoints["f2r"][1], "--sigma", "10", *LOSSLESS)
    one, two = tmp_path / "one", tmp_path / "two"
    assert batch(shoot, "-o", one, *common).exit_code == 0
    result = batch(shoot, "-o", two, *common, "--jobs", "2")
    assert result.exit_code == 0, result.stderr
    for name in ("a.mkv", "b.mkv", "day2/c.mkv"):
        assert (
            same_frames(one / name, two / name) == {"a.mkv": 5, "b.mkv": 6, "day2/c.mkv": 7}[name]
        )
    records = manifest(two)
    assert {r["status"] for r in records.values()} == {"done"}
    assert records["day2/c.mp4"]["frames"] == 7 and records["a.mp4"]["fps"] > 0


def test_a_damaged_file_fails_alone(shoot, tmp_path, checkpoints):
    (shoot / "broken.mp4").write_bytes(b"\x00" * 4000)
    out = tmp_path / "out"
    result = batch(shoot, "-o", out, "--weights", checkpoints["f2r"][1], "--sigma", "10")
    assert result.exit_code == 1
    records = manifest(out)
    assert records["broken.mp4"]["status"] == "failed"
    assert "not a readable video" in records["broken.mp4"]["error"]
    assert [records[n]["status"] for n in ("a.mp4", "b.mov", "day2/c.mp4")] == ["done"] * 3
    assert "1 failed" in result.stderr and "failed: " in result.stderr
    assert not (out / "broken.mp4").exists() and "Traceback" not in result.stderr


def test_skip_existing_resumes(shoot, tmp_path, checkpoints):
    out = tmp_path / "out"
    common = ("-o", out, "--weights", checkpoints["f2r"][1], "--sigma", "10")
    assert batch(shoot / "a.mp4", *common).exit_code == 0
    done = (out / "a.mp4").stat().st_mtime_ns
    result = batch(shoot, *common, "--skip-existing")
    assert result.exit_code == 0, result.stderr
    assert (out / "a.mp4").stat().st_mtime_ns == done
    lines = [json.loads(x) for x in (out / "vdenoise-manifest.jsonl").read_text().splitlines()]
    assert [r["status"] for r in lines] == ["done", "skipped", "done", "done"]
    assert batch(shoot, *common).exit_code == 1  # without it, existing outputs are refused


def test_skip_existing_redoes_the_file_whose_manifest_line_was_cut(shoot, tmp_path, checkpoints):
    out = tmp_path / "out"
    common = ("-o", out, "--weights", checkpoints["f2r"][1], "--sigma", "10")
    assert batch(shoot, *common).exit_code == 0
    record = out / "vdenoise-manifest.jsonl"
    lines = record.read_text().splitlines()
    record.write_text("\n".join(lines[:2]) + "\n" + lines[2][:60])  # c's line cut mid-way
    kept = {name: (out / name).stat().st_mtime_ns for name in ("a.mp4", "b.mov", "day2/c.mp4")}
    result = batch(shoot, *common, "--skip-existing")
    assert result.exit_code == 0, result.stderr
    now = {name: (out / name).stat().st_mtime_ns for name in kept}
    assert [now[n] == kept[n] for n in kept] == [True, True, False]  # c done again
    assert len(raw_planes(out / "day2/c.mp4")) == 7
    contents = read_manifest(record)  # the cut line set apart; c's new line whole
    assert [r["status"] for r in contents.records] == ["done", "done", "skipped", "skipped", "done"]
    assert contents.records[-1]["frames"] == 7 and contents.cut == [lines[2][:60]]


def test_files_in_flight_can_share_one_model(shoot, tmp_path, checkpoints, monkeypatch):
    settings = Settings(weights=str(checkpoints["f2r"][1]), options=lossless_options())
    jobs = plan([str(shoot)], tmp_path / "one", container="mkv")
    run_batch(jobs, settings, tmp_path / "one.jsonl")
    loads = []
    monkeypatch.setattr(vdenoise.batch, "load", lambda s: loads.append(s) or load(s))
    shared = plan([str(shoot)], tmp_path / "shared", container="mkv")
    outcomes = run_batch(shared, settings, tmp_path / "two.jsonl", workers=3, share_models=True)
    assert [o.status for o in outcomes] == ["done"] * 3 and len(loads) == 1
    for first, second in zip(jobs, shared, strict=True):
        assert same_frames(first.output, second.output) > 0


def test_an_interrupt_stops_the_files_in_flight_and_removes_their_partials(tmp_path, checkpoints):
    folder = tmp_path / "long"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        make_clip(folder / name, ClipSpec(frames=60 if name != "a.mp4" else 3, width=96))
    settings = Settings(weights=str(checkpoints["f2r"][1]), options={"sigma": 10.0})
    out = tmp_path / "out"

    def first_ends(outcome):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(
            plan([str(folder)], out), settings, tmp_path / "m.jsonl", workers=2,
            share_models=True, ended=first_ends,
        )  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4"]  # b, c stopped mid-file or not begun


def test_models_are_shared_on_accelerators_only(monkeypatch):
    assert not shares_models(Settings(options={"device": "cpu"}), None)
    assert not shares_models(Settings(), ["cpu"])
    monkeypatch.setattr(
        "vdenoise.device.select_device",
        lambda name: torch.device("cuda" if "cuda" in name else "cpu"),
    )
    assert shares_models(Settings(), ["cuda:0", "cuda:1"])
    assert not shares_models(Settings(), ["cuda:0", "cpu"])


def lossless_options():
    from vdenoise.io.encoding import EncodeOptions

    return {"sigma": 10.0, "encode": EncodeOptions(codec="ffv1")}


def test_a_task_is_done_only_once_its_whole_output_is_seen_here(tmp_path):
    from vdenoise.batch import Job, Outcome, _in_place

    job = Job(tmp_path / "a.mp4", tmp_path / "out.mp4")
    done = Outcome(str(job.input), str(job.output), "done", frames=5, retries=1)
    missing = _in_place(job, done, 1234, tries=1)
    assert missing.status == "failed" and missing.retries == 1
    assert "where this machine does not see it (found nothing)" in missing.error
    job.output.write_bytes(b"x" * 1000)
    assert "found 1000 bytes of 1234" in _in_place(job, done, 1234, tries=1).error
    assert _in_place(job, done, 1000) is done


def test_a_worker_stopped_while_it_starts_leaves_quietly():
    """A signal while a worker loads torch and the model (seconds, longer on a loaded machine)
    ends it with code 130 and nothing on stderr: the pool would print a traceback for an
    initializer that raises."""
    code = (
        "import os, vdenoise.batch as b\n"
        "def stopped(settings):\n"
        "    raise KeyboardInterrupt\n"
        "b.load = stopped\n"
        "b._start_worker(b.Settings(), 1, None, os.getppid(), 'run')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 130 and done.stderr == ""
