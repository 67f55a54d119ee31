"""What every command shares: reporting an expected failure in one line with an exit code."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from vdenoise.errors import VdenoiseError


def error_line(message: str) -> None:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)


def fail(
    error: VdenoiseError | KeyboardInterrupt,
    as_json: bool = False,
    interrupted: str = "interrupted; the partial output was removed",
) -> None:
    """Report an expected failure in one line (or one JSON document) and exit."""
    if isinstance(error, KeyboardInterrupt):
        message, hint, code = interrupted, None, 130
    else:
        message, hint, code = error.message, error.hint, error.exit_code
    if as_json:
        print(json.dumps({"ok": False, "error": message, "hint": hint, "exit_code": code}))
    error_line(message + (f" [dim]({hint})[/dim]" if hint else ""))
    raise typer.Exit(code)
