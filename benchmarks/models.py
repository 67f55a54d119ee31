"""Model-only speed of every method and preset, with the multiply-accumulates per pixel.

Frames/s of the model alone (no decoding, colour conversion or encoding) on random frames at
960x540 and 640x480, in one call per chunk as the engine makes them; on CPU in fp32, on a GPU
in bf16. MAC/pixel counts every convolution, per output pixel, including STBN's warm-up
frames (its chunk of 16 frames carries 4 more on each side).

A model too slow for a size (one call would take over --max-call minutes) is timed at a
quarter of the width and height instead, and its frame rate scaled by the area; such cells
are marked "~" (projected, not measured at that size).

    python benchmarks/models.py [--device cpu|cuda] [--sizes 960x540,640x480] [--seconds 20]
        [--methods f2r,stbn] [--presets base,small]

Figures: docs/performance.md, "Model only" (params, MAC/pixel, frames/s).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine  # noqa: I001  (imports vdenoise before torch)

import torch
from torch import nn

from vdenoise.device import select_device, select_precision
from vdenoise.engine import prepare
from vdenoise.models import ARCHITECTURES, build


def macs_per_pixel(model: nn.Module, height: int = 64, width: int = 64) -> float:
    """Convolution multiply-accumulates per output pixel, counted on one chunk."""
    total = 0

    def count(module: nn.Conv2d, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1]
        total += output.numel() * (module.in_channels // module.groups) * k

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.Conv2d)]
    frames = model.frames_before + model.frames_per_call + model.frames_after
    with torch.no_grad():
        model(torch.rand(1, frames, 3, height, width), torch.tensor([0.1]))
    for hook in hooks:
        hook.remove()
    return total / (model.frames_per_call * height * width)


def frames_per_second(model, device, dtype, height, width, seconds) -> float:
    frames = model.frames_before + model.frames_per_call + model.frames_after
    clip = torch.rand(1, frames, 3, height, width, device=device)
    sigma = torch.tensor([20 / 255], device=device)
    autocast = (
        torch.autocast(device.type, dtype=dtype)
        if dtype != torch.float32
        else contextlib.nullcontext()
    )
    done, began = 0, None
    with torch.inference_mode(), autocast:
        while True:
            model(clip, sigma)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if began is None:  # the first call warms up
                began = time.perf_counter()
                continue
            done += model.frames_per_call
            elapsed = time.perf_counter() - began
            if elapsed > seconds:
                return done / elapsed


def rate_cell(model, device, dtype, height, width, seconds, max_call) -> str:
    """Measured fps, or '~fps' projected from a quarter-size run when a call is too slow."""
    small = frames_per_second(model, device, dtype, height // 4, width // 4, min(seconds, 5))
    projected = small / 16  # convolution time scales with the pixel count
    if model.frames_per_call / projected > 60 * max_call:
        return f"~{projected:.3f}"
    return f"{frames_per_second(model, device, dtype, height, width, seconds):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sizes", default="960x540,640x480")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--methods", default=",".join(ARCHITECTURES))
    parser.add_argument("--presets", help="only these presets (e.g. base,small; default: all)")
    parser.add_argument("--max-call", type=float, default=3.0, help="minutes (see above)")
    args = parser.parse_args()
    device = select_device(args.device)
    dtype = select_precision("auto", device)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    print(f"machine: {machine()}; device {device}, {dtype}")
    print(
        "| method | preset | params | MAC/pixel | "
        + " | ".join(f"fps {w}x{h}" for w, h in sizes)
        + " |"
    )
    print("|---|---|---|---|" + "---|" * len(sizes))
    for method in args.methods.split(","):
        for preset in ARCHITECTURES[method][2]:
            if args.presets and preset not in args.presets.split(","):
                continue
            model = build(method, preset).eval()
            params = sum(p.numel() for p in model.parameters())
            macs = macs_per_pixel(model)
            model = prepare(model, device)
            cells = " | ".join(
                rate_cell(model, device, dtype, h, w, args.seconds, args.max_call) for w, h in sizes
            )
            print(
                f"| {method} | {preset} | {params / 1e6:.2f} M | {macs / 1e3:.0f} K | {cells} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
