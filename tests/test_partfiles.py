"""Part-files: records of who writes them, and which a later run removes."""

import json
import os
import subprocess
import sys
from dataclasses import asdict, replace

import pytest

from vdenoise import partfiles
from vdenoise.errors import VdenoiseError
from vdenoise.pipeline import staged_output


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process of this host that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def left_by(part, writer, folder=False):
    """A part-file as a writer left it."""
    partfiles.record_of(part).write_text(json.dumps(asdict(writer)))
    part.mkdir() if folder else part.write_bytes(b"half a video")
    return part


def test_a_dead_writers_parts_go_a_live_ones_and_a_users_stay(tmp_path, dead_pid):
    me = partfiles.me()
    prefix = partfiles.part_prefix(tmp_path / "out.mp4")
    dead = replace(me, pid=dead_pid, started="0:1")
    gone = left_by(tmp_path / f"{prefix}00000001.mp4", dead)
    gone_folder = left_by(tmp_path / f"{prefix}00000002-segments", dead, folder=True)
    (gone_folder / "00000.mp4").write_bytes(b"a segment")
    mine = left_by(tmp_path / f"{prefix}00000003.mp4", me)
    elsewhere = left_by(tmp_path / f"{prefix}00000004.mp4", replace(dead, host="another-node"))
    reused = left_by(tmp_path / f"{prefix}00000005.mp4", replace(me, started="0:42"))
    users = tmp_path / f"{prefix}00000006.mp4"  # named like one, no record
    users.write_bytes(b"the user's own")
    (tmp_path / f"{prefix}00000007.mp4.writer").write_text("not a record")
    odd = {**asdict(dead), "pid": "1"}
    (tmp_path / f"{prefix}00000008.mp4").write_bytes(b"the user's too")
    (tmp_path / f"{prefix}00000008.mp4.writer").write_text(json.dumps(odd))

    removed = partfiles.sweep([tmp_path])
    assert sorted(removed) == sorted([gone, gone_folder, reused])  # a reused pid is not alive
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {
        mine.name, f"{mine.name}.writer", elsewhere.name, f"{elsewhere.name}.writer",
        users.name, f"{prefix}00000007.mp4.writer",
        f"{prefix}00000008.mp4", f"{prefix}00000008.mp4.writer",
    }  # fmt: skip
    assert "removed 3 part-file(s) that killed runs left in" in partfiles.swept_note(removed)
    assert partfiles.swept_note([]) is None

    # Once every task of a run has ended, its parts go on any host; others' stay.
    assert partfiles.sweep([tmp_path], ended_run="someone else's") == []
    assert partfiles.sweep([tmp_path], ended_run=dead.run) == [mine, elsewhere]


def test_a_staged_output_is_claimed_while_written_and_published_whole(tmp_path):
    dst = tmp_path / "out.mp4"
    with staged_output(dst, as_folder=False) as tmp:
        writer = partfiles.writer_of(partfiles.record_of(tmp))
        assert writer == partfiles.me() and writer.pid == os.getpid() and writer.started
        tmp.write_bytes(b"a whole video")
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]
    assert dst.read_bytes() == b"a whole video"
    with pytest.raises(VdenoiseError), staged_output(tmp_path / "b.mp4", as_folder=False):
        raise VdenoiseError("failed")
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # neither part nor record


def test_the_start_time_tells_a_live_process_from_a_dead_one(dead_pid):
    assert partfiles.process_start(os.getpid()) == partfiles.process_start(os.getpid())
    assert partfiles.process_start(dead_pid) is None
    assert partfiles.alive(partfiles.me())


def test_where_start_times_cannot_be_told_every_writer_counts_as_alive(monkeypatch, dead_pid):
    monkeypatch.setattr(partfiles, "process_start", lambda pid: None)
    partfiles._tells_starts.cache_clear()
    try:
        assert partfiles.alive(replace(partfiles.me(), pid=dead_pid))
    finally:
        partfiles._tells_starts.cache_clear()
