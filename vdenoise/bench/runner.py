"""`vdenoise bench` as a library call: run the protocol, time it, describe everything."""

from __future__ import annotations

import platform
import tempfile
import time
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

import vdenoise
from vdenoise.bench.baselines import BASELINES, to_uint8
from vdenoise.bench.datasets import Dataset
from vdenoise.bench.flicker import FLICKER_DEFINITION
from vdenoise.bench.metrics import PSNR_DEFINITION, SSIM_DEFINITION
from vdenoise.bench.protocol import (
    BaselineMethod,
    BenchObserver,
    Condition,
    Method,
    ModelMethod,
    averages,
    peak_memory,
    run_protocol,
)
from vdenoise.device import describe, precision_name
from vdenoise.training.evaluate import corrupt

END_TO_END_FRAMES = 30  # frames of the first sequence encoded for the end-to-end timing


def baseline_methods(names: list[str]) -> list[Method]:
    from vdenoise.errors import UsageError

    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise UsageError(f"unknown baseline {unknown[0]!r}", f"choose from {', '.join(BASELINES)}")
    return [BaselineMethod(n, BASELINES[n].run, BASELINES[n].description) for n in names]


def end_to_end_fps(method: ModelMethod, dataset: Dataset, condition: Condition, seed: int) -> float:
    """Frames/s of `vdenoise denoise` (decode, denoise, encode) on the first sequence's first
    frames with this condition's noise, stored as H.264 (crf 18, yuv420p) like a camera file."""
    import av

    from vdenoise.pipeline import denoise_video

    clean = dataset.sequences[0].frames(END_TO_END_FRAMES).float() / 255.0
    noisy, sigma = corrupt(clean, condition.noise, seed, condition.eight_bit)
    frames = to_uint8(noisy)
    height, width = (d - d % 2 for d in frames.shape[1:3])
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "noisy.mp4"
        with av.open(str(source), "w") as container:
            stream = container.add_stream("libx264", rate=25, options={"crf": "18"})
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for i, rgb in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:height, :width]))
                frame.pts, frame.time_base = i, Fraction(1, 25)
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        began = time.perf_counter()
        report = denoise_video(
            source, Path(tmp) / "out.mp4", method.model, sigma=sigma,
            device=str(method.device), precision=precision_name(method.dtype),
        )  # fmt: skip
        return report.frames / (time.perf_counter() - began)


def benchmark(
    dataset: Dataset,
    methods: list[Method],
    settings: list[Condition],
    frames: int,
    seed: int,
    device: torch.device,
    dtype: torch.dtype,
    observer: BenchObserver | None = None,
    end_to_end: bool = True,
) -> dict[str, Any]:
    """Run the protocol and return the whole record (the `--json` document, less its schema)."""
    began = time.perf_counter()
    scores = run_protocol(dataset, methods, settings, frames, seed, observer)
    if end_to_end:
        for method in methods:
            if isinstance(method, ModelMethod):
                method.info["end_to_end_fps"] = end_to_end_fps(method, dataset, settings[0], seed)
    sizes = {}
    for s in dataset.sequences:
        first = s.frames(1)
        sizes[s.name] = list(first.shape[-2:])
    counts = {s.sequence: s.frames for s in scores}
    return {
        "vdenoise": vdenoise.__version__,
        "dataset": {
            "name": dataset.name,
            "label": dataset.label,
            "full": dataset.full,
            "root": str(dataset.root),
            "fingerprint": dataset.fingerprint(frames),
            "sequences": [
                {"name": s.name, "frames": counts.get(s.name), "height_width": sizes[s.name]}
                for s in dataset.sequences
            ],
        },
        "protocol": {
            "conditions": [c.label for c in settings],
            "noise": [str(c.noise) for c in settings],
            "seed": seed,
            "max_frames": frames,
            "noise_clipping": (
                "noise added to [0, 1] frames, then rounded and clipped to 8 bits (as users' "
                "files hold it), for every method"
                if any(c.eight_bit for c in settings)
                else "noise added to [0, 1] frames, not clipped or rounded; the classical "
                "baselines get it clipped and rounded to 8 bits (their input format)"
            ),
            "level_given": "the true noise std",
            "psnr": PSNR_DEFINITION,
            "ssim": SSIM_DEFINITION,
            "flicker": FLICKER_DEFINITION,
        },
        "machine": {
            "device": describe(device),
            "precision": precision_name(dtype),
            "platform": platform.platform(),
            "versions": f"python {platform.python_version()}, torch {torch.__version__}",
        },
        "methods": [m.describe() for m in methods],
        "scores": [asdict(s) for s in scores],
        "averages": averages(scores),
        "memory": peak_memory(device),
        "seconds": round(time.perf_counter() - began, 1),
    }
