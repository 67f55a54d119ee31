"""`vdenoise probe`: what vdenoise reads from a file."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any

import typer

from vdenoise.cli.support import check_input, fail
from vdenoise.errors import VdenoiseError


def probe(
    input: Annotated[Path, typer.Argument(help="Video file or image folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show what vdenoise reads from a video: size, depth, colour, timing, streams."""
    try:
        from vdenoise.io import open_input

        check_input(input)
        reader = open_input(input)
        try:
            info = reader.info.describe()
        finally:
            reader.close()
    except VdenoiseError as e:
        fail(e, as_json)
    if as_json:
        print(json.dumps(info))
        return
    _print_info(info)


def _print_info(info: dict[str, Any]) -> None:
    tags = info["tags"]
    rate = info["average_rate"]
    lines = [
        f"{info['path']}: {info['container']}, {info['codec']}",
        f"  {info['width']}x{info['height']} {info['pix_fmt']} ({info['bits']}-bit), "
        f"colour {info['colour']}{' (guessed)' if info['colour_guessed'] else ''}",
        f"  tags: range {tags['range']}, primaries {tags['primaries']}, "
        f"transfer {tags['transfer']}, matrix {tags['matrix']}",
        f"  {info['frame_count'] or 'unknown number of'} frames, "
        + (f"{float(Fraction(rate)):.3f} fps average, " if rate else "")
        + f"time base {info['time_base']}, duration {info['duration'] or 0:.2f} s",
        f"  rotation {info['rotation']}°, sample aspect {info['sample_aspect_ratio'] or '1'}, "
        f"{info['audio_streams']} audio and {info['subtitle_streams']} subtitle stream(s)",
    ]
    print("\n".join(lines))
