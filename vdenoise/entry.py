"""The `vdenoise` console script: signals first, then the command line.

SIGINT and SIGTERM are handled before anything heavy is imported, so an interrupt at any moment,
start-up included, ends the same way: the run's own cleanup, one line, exit code 130. A second
signal during that cleanup is ignored, so the cleanup always finishes.
"""

from __future__ import annotations

import signal
import sys

INTERRUPTED = 130


def _interrupt(signum: int, frame: object) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # the cleanup this starts must not be cut short
    record = sys.modules.get("vdenoise.signals")
    if record is not None:  # in case this exception is dropped (vdenoise/signals.py)
        record.received = True
    raise KeyboardInterrupt


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    try:
        from vdenoise import signals  # noqa: F401  (for the handler)
        from vdenoise.cli import app
        from vdenoise.cli import support as cli_support

        app(prog_name="vdenoise")
    except KeyboardInterrupt:  # during start-up
        _said_interrupted()
    except SystemExit as e:  # typer exits 130 without a word if parsing is interrupted
        if e.code == INTERRUPTED and not cli_support.reported:
            _said_interrupted()
        raise


def _said_interrupted() -> None:
    sys.stderr.write("error: interrupted\n")
    sys.exit(INTERRUPTED)


if __name__ == "__main__":
    main()
