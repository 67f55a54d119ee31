"""Optical flow for training clips, computed once per dataset instead of once per step.

Every training step used to estimate the flows its clips need (F2R: four per window; STBN:
two per frame) from the noisy crops, so on a CPU most of a step was optical flow, and on a GPU
every step waited for the CPU. Here the flows between consecutive frames of each clean
sequence are computed once, on whole frames (so a crop sees the motion the whole frame shows),
kept at half resolution in fp16 (about 0.8 MB a frame at 854x480; the smooth DIS flow loses
little: `benchmarks/train_speed.py` measures the warp against direct flow), and saved in a
cache keyed by the data, the estimator and its settings. The flow between any two frames of a
clip is the trajectory through the consecutive flows, sampled at the crop's pixels, so clips
with frame steps above 1 (faster motion) need nothing more.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from vdenoise.models.flow import ByDevice, FlowEstimator, PairCache
from vdenoise.noise import NoiseModel, to_8bit

Progress = Callable[[int, int], None]


def default_folder() -> Path:
    """Where caches live: $VDENOISE_CACHE, else ~/.cache/vdenoise, then `flows/`."""
    root = os.environ.get("VDENOISE_CACHE") or Path.home() / ".cache" / "vdenoise"
    return Path(root) / "flows"


def effective(estimator: FlowEstimator, device: torch.device) -> FlowEstimator:
    """The estimator that computes the flows of frames on `device`: a memo of pairs
    (`PairCache`) changes no flow, and `ByDevice` picks one by the frames' device."""
    while True:
        if isinstance(estimator, PairCache):
            estimator = estimator.estimator
        elif isinstance(estimator, ByDevice):
            estimator = estimator.cpu if device.type == "cpu" else estimator.accelerator
        else:
            return estimator


def leaves(estimator: FlowEstimator) -> list[FlowEstimator]:
    """Every estimator that may compute a model's flows at inference: both of a `ByDevice`
    (DIS on CPUs, the torch flow on GPUs), once each, without the `PairCache` memo. A model
    trained on flows from all of them meets, wherever it runs, the flow it was trained on."""
    if isinstance(estimator, PairCache):
        return leaves(estimator.estimator)
    if isinstance(estimator, ByDevice):
        found = leaves(estimator.cpu) + leaves(estimator.accelerator)
        distinct: dict[str, FlowEstimator] = {}
        for each in found:
            distinct.setdefault(describe_estimator(each), each)
        return list(distinct.values())
    return [estimator]


def describe_estimator(estimator: FlowEstimator) -> str:
    """The estimator's class and settings (its repr, which states them), for the cache key."""
    if type(estimator).__repr__ is not object.__repr__:
        return repr(estimator)
    settings = {k: v for k, v in sorted(vars(estimator).items()) if not k.startswith("_")}
    return f"{type(estimator).__name__}{json.dumps(settings, default=str, sort_keys=True)}"


def cache_key(sequences: Sequence[torch.Tensor], estimator: FlowEstimator) -> str:
    """A digest of every frame's bytes and of the estimator's settings."""
    digest = hashlib.blake2b(describe_estimator(estimator).encode(), digest_size=16)
    for frames in sequences:
        digest.update(str(tuple(frames.shape)).encode())
        digest.update(frames.cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class FlowCache:
    """Consecutive flows of each sequence [N, 3, H, W] (uint8): `ahead[s][t]` from frame t to
    t+1 and `back[s][t]` from frame t+1 to t, [2, H/2, W/2] fp16 in full-resolution pixels, in
    FlowEstimator's convention (target(p) ~ source(p + flow(p)))."""

    def __init__(self, ahead: list[torch.Tensor], back: list[torch.Tensor]) -> None:
        self.ahead, self.back = ahead, back

    @classmethod
    def build(
        cls,
        sequences: Sequence[torch.Tensor],
        estimator: FlowEstimator,
        folder: Path | None = None,
        batch: int = 8,
        progress: Progress | None = None,
    ) -> FlowCache:
        """Load the cache for these sequences and estimator from `folder` (default:
        `default_folder()`), or compute and save it there."""
        folder = default_folder() if folder is None else Path(folder)
        estimator = effective(estimator, sequences[0].device if sequences else torch.device("cpu"))
        path = folder / f"{cache_key(sequences, estimator)}.safetensors"
        if path.exists():
            tensors = load_file(str(path))
            count = len(sequences)
            return cls(
                [tensors[f"ahead.{i}"] for i in range(count)],
                [tensors[f"back.{i}"] for i in range(count)],
            )
        total, done = sum(len(s) - 1 for s in sequences), 0
        ahead, back = [], []
        for frames in sequences:
            pairs = [], []
            for start in range(0, len(frames) - 1, batch):
                end = min(start + batch, len(frames) - 1)
                first = frames[start:end].float() / 255
                second = frames[start + 1 : end + 1].float() / 255
                both = estimator(torch.cat([first, second]), torch.cat([second, first]))
                pairs[0].append(_half(both[: end - start]))
                pairs[1].append(_half(both[end - start :]))
                done += end - start
                if progress:
                    progress(done, total)
            ahead.append(torch.cat(pairs[0]) if pairs[0] else frames.new_zeros(0, 2, 1, 1).half())
            back.append(torch.cat(pairs[1]) if pairs[1] else frames.new_zeros(0, 2, 1, 1).half())
        folder.mkdir(parents=True, exist_ok=True)
        named = {f"ahead.{i}": f for i, f in enumerate(ahead)}
        named |= {f"back.{i}": f for i, f in enumerate(back)}
        partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        save_file(named, str(partial))
        partial.replace(path)
        return cls(ahead, back)

    def to(self, device: torch.device) -> FlowCache:
        """The same flows on `device` (a GPU keeps them resident, as it keeps the frames)."""
        return FlowCache([f.to(device) for f in self.ahead], [f.to(device) for f in self.back])

    def flow(
        self, sequence: int, target: int, source: int, top: int, left: int, size: tuple[int, int]
    ) -> torch.Tensor:
        """The flow [2, h, w] from frame `target` to frame `source` of a sequence, at the
        pixels of the crop at (top, left) of `size`: each pixel followed through the
        consecutive flows between them."""
        h, w = size
        field = self.ahead[sequence]
        ys, xs = torch.meshgrid(
            torch.arange(top, top + h, dtype=torch.float32, device=field.device),
            torch.arange(left, left + w, dtype=torch.float32, device=field.device),
            indexing="ij",
        )
        start = torch.stack([xs, ys])
        position = start.clone()
        step = 1 if source > target else -1
        for t in range(target, source, step):
            flows = self.ahead[sequence][t] if step > 0 else self.back[sequence][t - 1]
            position = position + _sample(flows, position)
        return position - start


def noisy_copies(
    sequences: Sequence[torch.Tensor], noise: NoiseModel, seed: int
) -> list[torch.Tensor]:
    """Each sequence [N, 3, H, W] (uint8) with noise added (its own sigma drawn from `noise`,
    seeded) and rounded to 8 bits: flows estimated from them carry the errors that flows from
    users' noisy frames carry, which flows from the clean frames do not."""
    copies = []
    for index, frames in enumerate(sequences):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + index)
        noisy, _ = noise.apply(frames[None].cpu().float() / 255, generator)
        copies.append(to_8bit(noisy[0]).mul_(255).round_().to(torch.uint8).to(frames.device))
    return copies


def _half(flow: torch.Tensor) -> torch.Tensor:
    """[N, 2, H, W] -> [N, 2, ceil(H/2), ceil(W/2)] fp16 (2x2 means; the values stay in
    full-resolution pixels)."""
    return F.avg_pool2d(flow.float(), 2, ceil_mode=True).half().cpu().contiguous()


def _sample(field: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """A half-resolution flow field [2, h, w] read bilinearly at full-resolution positions
    [2, H, W] (x, y), the border repeated outside. Half-resolution sample j covers
    full-resolution pixels 2j and 2j + 1: its centre is at 2j + 0.5."""
    h, w = field.shape[-2:]
    u = (position[0] - 0.5) / 2 * (2 / max(w - 1, 1)) - 1
    v = (position[1] - 0.5) / 2 * (2 / max(h - 1, 1)) - 1
    grid = torch.stack([u, v], -1)[None]
    out = F.grid_sample(
        field[None].float(), grid, mode="bilinear", padding_mode="border", align_corners=True
    )
    return out[0]


def augment_flow(flow: torch.Tensor, ops: Sequence[str]) -> torch.Tensor:
    """The flow [..., 2, H, W] of a clip augmented by `ops` (in order: `flip_x`, `flip_y`,
    `transpose`), as the clip's frames are."""
    for op in ops:
        if op == "flip_x":
            flow = flow.flip(-1) * flow.new_tensor([-1.0, 1.0]).view(2, 1, 1)
        elif op == "flip_y":
            flow = flow.flip(-2) * flow.new_tensor([1.0, -1.0]).view(2, 1, 1)
        elif op == "transpose":
            flow = flow.transpose(-1, -2).flip(-3)
        else:
            raise ValueError(op)
    return flow
