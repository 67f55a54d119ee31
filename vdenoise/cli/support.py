"""What every command shares: refusing bad input early, and reporting an expected failure in
one line with an exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from vdenoise.errors import UsageError, VdenoiseError


def _plain(params: list[Any]) -> list[Any]:
    """Flags show no type (typer's rich help would print `<bool>` after each)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class Command(TyperCommand):
    """A command whose help reads like the ecosystem's tools: `[OPTIONS] INPUT OUTPUT` in the
    usage line, no type after a flag."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = (param.metavar or param.name or "").upper()
                name += "..." if param.nargs != 1 else ""
                pieces.append(name if param.required else f"[{name}]")
        return pieces


class Group(TyperGroup):
    """A command group with the same help style as `Command`."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain(super().get_params(ctx))


def error_line(message: str, hint: str | None = None) -> None:
    """`error: message (hint)` on stderr; both are text, never markup (paths hold brackets)."""
    said = f"[red]error:[/red] {escape(message)}"
    said += f" [dim]({escape(hint)})[/dim]" if hint else ""
    Console(stderr=True).print(said, highlight=False, soft_wrap=True)


reported = False  # set once a failure was reported in its line


def fail(
    error: VdenoiseError | KeyboardInterrupt,
    as_json: bool = False,
    interrupted: str = "interrupted; the partial output was removed",
) -> None:
    """Report an expected failure in one line (or one JSON document) and exit."""
    global reported
    reported = True
    if isinstance(error, KeyboardInterrupt):
        message, hint, code = interrupted, None, 130
    else:
        message, hint, code = error.message, error.hint, error.exit_code
    if as_json:
        print(json.dumps({"ok": False, "error": message, "hint": hint, "exit_code": code}))
    error_line(message, hint)
    raise typer.Exit(code)


def check_input(path: Path, fps: float | None = None) -> None:
    """What can be refused about the input before any model loads."""
    from vdenoise.io import refuse_unseekable
    from vdenoise.io.frames import check_fps

    if not path.exists():
        raise UsageError(f"{path} does not exist")
    if path.is_dir():
        if fps is not None:
            check_fps(fps)
    else:
        refuse_unseekable(path)
