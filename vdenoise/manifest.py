"""A batch's manifest: one JSON line per file, appended as each file ends.

Each line goes to the disk in one write of the whole line, fsynced, so a crash cuts at most the
line being written. A reader keeps the complete lines and hands back the cut ones: a cut line
may name a file whose record was lost (`names`). The next line after a cut one starts on a line
of its own, so one crash never spoils two records.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Contents:
    records: list[dict[str, Any]] = field(default_factory=list)  # the complete lines
    cut: list[str] = field(default_factory=list)  # lines a crash cut short


def append(path: Path, record: dict[str, Any]) -> None:
    """Add one record as one complete line, on the disk when this returns."""
    line = (json.dumps(record) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if _ends_mid_line(fd):
            line = b"\n" + line
        while line:
            line = line[os.write(fd, line) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _ends_mid_line(fd: int) -> bool:
    if os.fstat(fd).st_size == 0:
        return False
    os.lseek(fd, -1, os.SEEK_END)  # (an O_APPEND write goes to the end wherever this is)
    return os.read(fd, 1) != b"\n"


def read(path: Path) -> Contents:
    """The manifest's records (none where it does not exist)."""
    contents = Contents()
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return contents
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            contents.cut.append(line)
            continue
        if isinstance(record, dict):
            contents.records.append(record)
        else:
            contents.cut.append(line)
    return contents


def names(line: str, input: str, output: str) -> bool:
    """Whether a cut `line` may be the record of the file `input` -> `output` (its start is that
    file's; a line cut so early that it could be any file's names them all)."""
    head = json.dumps({"input": input, "output": output})[:-1]
    return head.startswith(line) or line.startswith(head)
