"""`vdenoise models`: the released weights, where they are and came from, fetching, checking."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vdenoise import weights
from vdenoise.cli.support import Command, Group, fail
from vdenoise.errors import UsageError, VdenoiseError

models_app = typer.Typer(
    cls=Group,
    help="Released weights: what is here, where it came from, fetching and checking it.",
    no_args_is_help=True,
)


def _release(name: str) -> weights.Release:
    release = weights.find_release(name)
    if release is None:
        known = ", ".join(r.name for r in weights.RELEASES) or "none released yet"
        raise UsageError(f"no release is named {name!r}", f"known: {known}")
    return release


@models_app.command("list", cls=Command)
def models_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The released checkpoints and whether each is on this machine."""
    rows = []
    for r in weights.RELEASES:
        found = weights.locate(r)
        rows.append(
            {
                "name": r.name,
                "method": r.method,
                "default_for": list(r.default_for),
                "where": found[1] if found else "not downloaded",
                "path": str(found[0]) if found else None,
                "hub": f"{r.repo_id}@{(r.revision or '')[:10]}" if r.repo_id else "bundled only",
                "license": r.license,
                "training_data": r.training_data,
            }
        )
    if as_json:
        print(json.dumps(rows))
    elif not rows:
        print(f"no weights have been released yet (bundled folder: {weights.bundled_dir()})")
    if rows and not as_json:
        print(f"{'NAME':24} {'METHOD':6} {'ON THIS MACHINE':15} {'HUB':22} DEFAULT ON")
    for row in [] if as_json else rows:
        default = "/".join(row["default_for"]) or "-"
        print(f"{row['name']:24} {row['method']:6} {row['where']:15} {row['hub']:22} {default}")


@models_app.command("download", cls=Command)
def models_download(
    name: Annotated[str, typer.Argument(help="Release name (see `vdenoise models list`).")],
) -> None:
    """Fetch a release from the Hugging Face Hub at its pinned commit (cached once)."""
    try:
        release = _release(name)
        path = weights.release_path(release)
        if weights.file_sha256(path) != release.sha256:
            raise VdenoiseError(f"{path} does not match the registered sha256")
    except VdenoiseError as e:
        fail(e, False)
    print(path)


@models_app.command("path", cls=Command)
def models_path(name: Annotated[str, typer.Argument(help="Release name.")]) -> None:
    """Where a release is on this machine (bundled or in the Hugging Face cache)."""
    try:
        found = weights.locate(_release(name))
        if found is None:
            raise VdenoiseError(
                f"{name} is not on this machine", f"vdenoise models download {name}"
            )
    except VdenoiseError as e:
        fail(e, False)
    print(found[0])


@models_app.command("verify", cls=Command)
def models_verify(
    target: Annotated[
        str | None, typer.Argument(help="Release name or checkpoint file (default: all).")
    ] = None,
) -> None:
    """Check sha256 of releases on this machine, or read a checkpoint file's metadata."""
    try:
        if target is not None and weights.find_release(target) is None:
            from vdenoise.checkpoint import read_metadata

            meta = read_metadata(Path(target))
            digest = weights.file_sha256(Path(target))
            print(f"{target}: {meta['method']} {meta['preset']}, sha256 {digest}")
            return
        failed = False
        for r in [_release(target)] if target else weights.RELEASES:
            found = weights.locate(r)
            status = "not downloaded"
            if found:
                ok = weights.file_sha256(found[0]) == r.sha256
                status = f"ok ({found[1]})" if ok else f"MISMATCH ({found[0]})"
                failed |= not ok
            print(f"{r.name}: {status}")
    except VdenoiseError as e:
        fail(e, False)
    if failed:
        raise typer.Exit(1)


@models_app.command("card", cls=Command)
def models_card(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint file.")],
    name: Annotated[str | None, typer.Option(help="Title (default: the file name).")] = None,
) -> None:
    """Print a checkpoint's model card (Markdown), from what its training recorded."""
    from vdenoise.model_card import render

    try:
        if not checkpoint.is_file():
            raise UsageError(f"{checkpoint} does not exist")
        typer.echo(render(checkpoint, name), nl=False)
    except VdenoiseError as e:
        fail(e, False)
