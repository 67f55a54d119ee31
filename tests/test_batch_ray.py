"""`vdenoise batch --cluster` on a local Ray cluster started by the tests (127.0.0.1)."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.clipmaker import (
    ClipSpec,
    audio_packets,
    decoded_pts,
    largest_difference,
    make_clip,
    raw_planes,
)
from vdenoise.cli import app

ray = pytest.importorskip("ray")
runner = CliRunner()


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def batch(*args):
    return runner.invoke(app, ["batch", *map(str, args)])


def same_frames(a: Path, b: Path) -> bool:
    first, second = raw_planes(a), raw_planes(b)
    if len(first) != len(second):
        return False
    pairs = [(x, y) for p, q in zip(first, second, strict=True) for x, y in zip(p, q, strict=True)]
    return all(np.array_equal(x, y) for x, y in pairs)


def test_the_cluster_gives_the_same_outputs(cluster, tmp_path, checkpoints):
    clips = tmp_path / "clips"
    clips.mkdir()
    for i in range(3):
        make_clip(clips / f"{i}.mp4", ClipSpec(frames=4 + i, width=48, height=32))
    # lossless: the frames themselves compared (libx264 is not bit-reproducible run to run)
    common = ("--weights", checkpoints["f2r"][1], "--sigma", "10", "--codec", "ffv1")
    common += ("--container", "mkv")
    assert batch(clips, "-o", tmp_path / "here", *common).exit_code == 0
    result = batch(clips, "-o", tmp_path / "ray", *common, "--cluster", "auto")
    assert result.exit_code == 0, result.stderr
    for i in range(3):
        assert same_frames(tmp_path / "here" / f"{i}.mkv", tmp_path / "ray" / f"{i}.mkv")
    records = (tmp_path / "ray" / "vdenoise-manifest.jsonl").read_text().splitlines()
    assert sorted(json.loads(r)["frames"] for r in records) == [4, 5, 6]


def test_a_long_video_in_segments_on_the_cluster(cluster, tmp_path, checkpoints):
    spec = ClipSpec(frames=48, audio="aac", options={"crf": "12", "g": "12"})
    clip = make_clip(tmp_path / "long.mp4", spec)
    common = ("--weights", checkpoints["f2r"][1], "--sigma", "10", "--codec", "ffv1")
    whole, pieces = tmp_path / "whole.mkv", tmp_path / "pieces.mkv"
    assert runner.invoke(app, ["denoise", str(clip), str(whole), *common]).exit_code == 0
    # One segment per CPU of the cluster (two), one Ray task each.
    result = runner.invoke(app, ["denoise", str(clip), str(pieces), *common, "--cluster", "auto"])
    assert result.exit_code == 0, result.stderr
    assert largest_difference(whole, pieces) <= 1  # a rounding flip at most (thread counts)
    assert decoded_pts(pieces) == decoded_pts(whole)
    assert audio_packets(pieces) == audio_packets(clip)


def ray_task_pids() -> list[int]:
    """Ray names a worker process after the task it runs."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"ray::_ray_task" in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def test_a_task_whose_worker_is_killed_is_retried_and_leaves_nothing(
    cluster, tmp_path, checkpoints
):
    clip = make_clip(tmp_path / "long.mp4", ClipSpec(frames=60, width=160, height=120))
    out = tmp_path / "out"
    killed: list[int] = []

    def kill_the_first_attempt() -> None:
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            partials = list(out.glob(".vdenoise-*")) if out.exists() else []
            pids = ray_task_pids()
            if partials and pids:  # mid-file: its partial output is on disk
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_first_attempt)
    killer.start()
    result = batch(clip, "-o", out, "--weights", checkpoints["f2r"][1], "--sigma", "10",
                   "--cluster", "auto")  # fmt: skip
    killer.join()
    assert killed, "the worker was not caught mid-file"
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["long.mp4", "vdenoise-manifest.jsonl"]
    record = json.loads((out / "vdenoise-manifest.jsonl").read_text())
    assert record["status"] == "done" and record["frames"] == 60
    assert record["retries"] == 1  # the manifest tells the file took a second attempt
    assert len(decoded_pts(out / "long.mp4")) == 60
