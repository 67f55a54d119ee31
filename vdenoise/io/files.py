"""What vdenoise reads: regular files only (the readers and the command line share this)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from vdenoise.errors import UsageError, VdenoiseError


def refuse_unseekable(path: Path) -> None:
    """A pipe, device or socket would block or end midway: only regular files are read."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise VdenoiseError(f"{path} does not exist") from None
    except OSError as e:
        raise VdenoiseError(f"{path} cannot be read ({e.strerror})") from None
    if not stat.S_ISREG(mode):
        raise UsageError(
            f"{path} is not a regular file (a pipe, device or socket)",
            "vdenoise reads video files it can seek in; save the stream to a file first",
        )
