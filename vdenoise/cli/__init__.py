"""The `vdenoise` command. Thin: parse, call the library, map failures to exit codes. One
module a command or command group; this one puts them together.

Exit codes: 0 success, 1 runtime error, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

from typing import Annotated

import typer

from vdenoise.cli import batch, bench, compare, denoise, models, probe, training
from vdenoise.cli.support import Command, Group
from vdenoise.version import __version__

# Heavy modules (torch, PyAV) are imported inside the commands that use them, so `--help`,
# `--version`, `probe` and `models list` start in a fraction of a second.

app = typer.Typer(
    cls=Group,
    name="vdenoise",
    help="Self-supervised video denoising that leaves everything but the noise unchanged.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)


app.command(cls=Command)(denoise.denoise)
app.command(cls=Command)(probe.probe)
app.add_typer(models.models_app, name="models")
app.command(cls=Command)(batch.batch)
app.command(cls=Command)(training.fit)
app.command(cls=Command)(training.train)
app.command(cls=Command)(bench.bench)
app.command(cls=Command)(compare.compare)


def version_callback(value: bool) -> None:
    if value:
        print(f"vdenoise {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=version_callback, is_eager=True, help="Show the version."
        ),
    ] = False,
) -> None:
    """vdenoise: F2R and STBN self-supervised video denoising."""
