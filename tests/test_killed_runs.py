"""`kill -9` of a run with worker processes, mid-way: its workers end within a second, and the
next run removes what it left (never a user's file) and makes every output whole."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.clipmaker import ClipSpec, decoded_pts, make_clip
from vdenoise.cli import app
from vdenoise.partfiles import PREFIX, RECORD, part_prefix

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads processes from /proc")

COMMAND = str(Path(sys.executable).with_name("vdenoise"))  # the console script, as users run it
runner = CliRunner()


def parent(pid: int) -> int | None:
    """The parent of process `pid`; None once it has ended (a zombie has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] in "ZX" else int(fields[1])


def family(pid: int) -> set[int]:
    """`pid`'s running descendants."""
    tree = {int(p.name): parent(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()}
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, up in tree.items() if up in frontier} - found
        found |= frontier
    return found


def parts(folder: Path) -> list[Path]:
    """The part-files being written under `folder` (those with a writer's record)."""
    records = folder.rglob(f"{PREFIX}*{RECORD}")
    return [p for r in records if (p := r.with_suffix("")).is_file()]


def kill_mid_way(args: list, folder: Path, workers: int) -> float:
    """Run vdenoise in `folder`, `kill -9` it once its workers write their outputs; returns
    the seconds until none of its processes was left."""
    process = subprocess.Popen([COMMAND, *map(str, args)], cwd=folder, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (parts(folder) and len(family(process.pid)) >= workers):
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "the workers never began"
        time.sleep(0.05)
    run = family(process.pid)
    process.kill()
    process.wait()
    process.stderr.close()
    killed = time.monotonic()
    while (left := [p for p in run if parent(p) is not None]) and time.monotonic() - killed < 10:
        time.sleep(0.02)
    assert not left, "processes of the killed run still running"
    return time.monotonic() - killed


def users_file(folder: Path, output: str) -> Path:
    """A user's own file named like a part-file of `output`, with no writer record."""
    path = folder / f"{part_prefix(folder / output)}c0ffee00.mp4"
    path.write_bytes(b"the user's own file")
    return path


def frames(path: Path) -> int:
    return len(decoded_pts(path))


def test_a_killed_batch_takes_its_workers_along_and_is_resumed(tmp_path, checkpoints):
    clips, out = tmp_path / "clips", tmp_path / "out"
    clips.mkdir()
    out.mkdir()
    counts = {"a.mp4": 30, "b.mp4": 31, "c.mp4": 32}
    for name, n in counts.items():
        make_clip(clips / name, ClipSpec(frames=n))
    mine = users_file(out, "a.mp4")
    common = ["-o", out, "--weights", checkpoints["f2r"][1], "--sigma", "10"]

    took = kill_mid_way(["batch", clips, *common, "--jobs", "2"], tmp_path, workers=2)
    assert took < 1.0
    left = len(list(out.glob(f"*{RECORD}")))  # the files the killed workers were writing
    assert left >= 1
    result = runner.invoke(app, ["batch", str(clips), *map(str, common), "--skip-existing"])
    assert result.exit_code == 0, result.stderr
    assert f"removed {left} part-file(s) that killed runs left in" in result.stderr
    assert {p.name: frames(p) for p in out.glob("[!.]*.mp4")} == counts
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [mine.name]
    assert mine.read_bytes() == b"the user's own file"


def test_a_killed_run_in_segments_takes_its_workers_along_and_its_folder_goes(
    tmp_path, checkpoints
):
    clip = make_clip(tmp_path / "long.mp4", ClipSpec(frames=64))
    out = tmp_path / "out"
    out.mkdir()
    mine = users_file(out, "o.mp4")
    common = ["--weights", checkpoints["f2r"][1], "--sigma", "10"]

    took = kill_mid_way(["denoise", clip, out / "o.mp4", *common, "--jobs", "2"], out, workers=2)
    assert took < 1.0
    assert [p for p in out.iterdir() if p.name.endswith("-segments")]  # the killed run's
    result = runner.invoke(app, ["denoise", str(clip), str(out / "o.mp4"), *map(str, common)])
    assert result.exit_code == 0, result.stderr
    assert "removed 1 part-file(s) that killed runs left in" in result.stderr
    assert frames(out / "o.mp4") == 64
    assert sorted(p.name for p in out.iterdir()) == sorted([mine.name, "o.mp4"])
