"""The manifest: whole lines only, read back after a crash cut one."""

import json

from vdenoise import manifest


def test_a_line_cut_by_a_crash_is_set_apart_and_spoils_no_other(tmp_path):
    path = tmp_path / "m.jsonl"
    first = {"input": "in/a.mp4", "output": "out/a.mp4", "status": "done"}
    manifest.append(path, first)
    whole = json.dumps({"input": "in/b.mp4", "output": "out/b.mp4", "status": "done"})
    with open(path, "a") as f:  # a crash in the middle of the next line
        f.write(whole[:30])
    second = {"input": "in/c.mp4", "output": "out/c.mp4", "status": "failed"}
    manifest.append(path, second)  # starts on a line of its own
    contents = manifest.read(path)
    assert contents.records == [first, second]
    assert contents.cut == [whole[:30]]
    assert manifest.names(whole[:30], "in/b.mp4", "out/b.mp4")
    assert not manifest.names(whole[:30], "in/a.mp4", "out/a.mp4")
    assert manifest.names('{"inp', "in/a.mp4", "out/a.mp4")  # too short to tell: any file
    assert manifest.read(tmp_path / "none.jsonl").records == []
