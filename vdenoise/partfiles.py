"""Part-files: the hidden files and folders an output is written to before it is published, who
writes each, publishing one durably, and removing those whose writer is gone.

A part-file `.vdenoise-<8 hex of the output's name>-<8 hex>[suffix]` (or a run's folder of
segments) is claimed before it is made, by a record beside it named `<its name>.writer`: the
writer's host, pid, the start time of that process (a pid can be reused) and the run it belongs
to. A later run sweeps the folders it writes in: what a dead writer of this host claimed is
removed, with its record. A part-file without a record (a user's own file so named, or one left
before writers were recorded, 2026-12-04) and one whose writer lives, or lives elsewhere, stay.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

PREFIX = ".vdenoise-"
RECORD = ".writer"

RUN = secrets.token_hex(6)  # this command's run; its workers and Ray tasks join it


@dataclass(frozen=True)
class Writer:
    """Who writes a part-file."""

    host: str
    pid: int
    started: str  # when that process started, as its host tells it ("" when it cannot)
    run: str


def part_prefix(dst: Path) -> str:
    """The start of the hidden name of any part-file of `dst` (fixed length)."""
    return f"{PREFIX}{hashlib.sha1(dst.name.encode()).hexdigest()[:8]}-"


def join_run(run: str) -> None:
    """Claim part-files for `run` (a Ray task claims them for the command that sent it)."""
    global RUN
    RUN = run


def me() -> Writer:
    return Writer(socket.gethostname(), os.getpid(), process_start(os.getpid()) or "", RUN)


def record_of(part: Path) -> Path:
    return part.with_name(part.name + RECORD)


def claim(part: Path) -> None:
    """Record this process as the writer of `part` (before `part` is made)."""
    record_of(part).write_text(json.dumps(asdict(me())) + "\n", encoding="utf-8")


def release(part: Path) -> None:
    """Remove `part`'s record (after `part` is gone or published)."""
    record_of(part).unlink(missing_ok=True)


def writer_of(record: Path) -> Writer | None:
    """The writer a record names; None where it is not one of ours."""
    try:
        writer = Writer(**json.loads(record.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    texts = (writer.host, writer.started, writer.run)
    if type(writer.pid) is not int or not all(isinstance(t, str) for t in texts):
        return None
    return writer


def process_start(pid: int) -> str | None:
    """When process `pid` of this host started (None: no such process): on Linux its start
    in clock ticks since boot, with the boot's id; elsewhere as `ps` tells it."""
    if sys.platform.startswith("linux"):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        except OSError:
            return None
        fields = stat[stat.rindex(")") + 2 :].split()
        return None if fields[0] in "ZX" else f"{boot}:{fields[19]}"  # field 22, starttime
    try:
        said = subprocess.run(
            ["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return said.stdout.strip() or None


def alive(writer: Writer) -> bool:
    """Whether the writer may still be writing: always where it is on another host, or where
    this host does not tell when processes started."""
    if writer.host != socket.gethostname() or not _tells_starts():
        return True
    started = process_start(writer.pid)
    return started is not None and started == (writer.started or started)


@functools.cache
def _tells_starts() -> bool:
    return process_start(os.getpid()) is not None


def sweep(folders: Iterable[Path], ended_run: str | None = None) -> list[Path]:
    """Remove, from `folders`, the part-files of writers that are gone (and, on any host, those
    of `ended_run`, a run whose every task has ended); returns what was removed."""
    removed = []
    for folder in dict.fromkeys(folders):
        for record in sorted(folder.glob(f"{PREFIX}*{RECORD}")):
            writer = writer_of(record)
            if writer is None or (alive(writer) and writer.run != ended_run):
                continue
            part = record.with_name(record.name[: -len(RECORD)])
            try:
                if part.is_dir() and not part.is_symlink():
                    shutil.rmtree(part)
                    removed.append(part)
                elif part.exists() or part.is_symlink():
                    part.unlink()
                    removed.append(part)
                record.unlink(missing_ok=True)
            except OSError:  # a read-only folder, or another run removing it at once
                continue
    return removed


def swept_note(removed: list[Path]) -> str | None:
    """The one line a run says about what it removed."""
    if not removed:
        return None
    places = sorted({str(p.parent) for p in removed})
    return f"removed {len(removed)} part-file(s) that killed runs left in {', '.join(places)}"


# -- publishing ----------------------------------------------------------------------------------
def sync(path: Path) -> None:
    """Flush `path` (a file, or a folder and the files in it) to the disk."""
    if path.is_dir():
        for each in path.iterdir():
            if each.is_file():
                _fsync(each, strict=True)
    _fsync(path, strict=not path.is_dir())


def publish(part: Path, dst: Path) -> None:
    """Put the finished `part` in place as `dst`: its data on the disk before the rename, the
    rename on the disk after it, so a crash leaves the old `dst` or the whole new one."""
    sync(part)
    os.replace(part, dst)
    _fsync(dst.parent, strict=False)


def _fsync(path: Path, strict: bool) -> None:
    """fsync(2) one file or folder; a folder's failure is let pass (Windows cannot open one,
    some file systems cannot sync one), a file's is not (its data did not reach the disk)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if strict:
            raise
        return
    try:
        os.fsync(fd)
    except OSError:
        if strict:
            raise
    finally:
        os.close(fd)
