"""Stage 2's training data with stage 1 frozen: stage 1's outputs computed once, reused.

While F2R's stage 2 trains on its own, stage 1 is fixed, so its output on a noisy clip, and the
optical flow that output needs (on a CPU most of a step; with the torch flow nearly all of
it), would come out the same each time the clip came back. A bank holds, for clips drawn
once, the noisy centre frame, its sigma and stage 1's output, made exactly as each step would
make them (live flows from the noisy frames, from each estimator the model may meet at
inference in turn, or the cached flows); the refiner then draws its batches from the bank,
each turned by one of the square's eight symmetries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from vdenoise.training.losses import RefinerBatch

# Makes one bank batch: (stage 1's output [N, 3 or 9, h, w], noisy centre [N, 3, h, w], [N]).
Draw = Callable[[int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
Progress = Callable[[int, int], None]


@dataclass
class Stage1Bank:
    """`count` windows: stage 1's output (fp16: the anchor and its covariance factor), the
    noisy centre frame (fp32: SURE nudges it by 1e-3 of sigma) and sigma."""

    stage1: torch.Tensor
    centre: torch.Tensor
    sigma: torch.Tensor

    @classmethod
    def build(cls, draw: Draw, count: int, progress: Progress | None = None) -> Stage1Bank:
        """Call `draw(i)` (i = 0, 1, ...: which call it is) until `count` windows are held."""
        parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        held = 0
        while held < count:
            with torch.no_grad():
                stage1, centre, sigma = draw(len(parts))
            keep = min(len(centre), count - held)
            # copies: a window's centre is a view of its whole clip, margins included
            parts.append(
                (
                    stage1[:keep].to(torch.float16, copy=True),
                    centre[:keep].to(torch.float32, copy=True),
                    sigma[:keep].to(torch.float32, copy=True),
                )
            )
            held += keep
            if progress is not None:
                progress(held, count)
        stage1, centre, sigma = (torch.cat(p) for p in zip(*parts, strict=True))
        return cls(stage1, centre, sigma)

    def __len__(self) -> int:
        return len(self.centre)

    def draw(self, size: int, generator: torch.Generator) -> RefinerBatch:
        """`size` windows at random (without repeats within the batch), all turned by one
        symmetry of the square drawn at random, as stage 2's losses take them."""
        device = self.centre.device
        index = torch.randperm(len(self), generator=generator, device=generator.device)[:size]
        index = index.to(device)
        turn = int(torch.randint(8, (1,), generator=generator, device=generator.device))
        stage1, centre = (symmetry(x[index], turn) for x in (self.stage1, self.centre))
        return RefinerBatch(stage1.float(), centre, self.sigma[index])


def symmetry(x: torch.Tensor, turn: int) -> torch.Tensor:
    """One of the eight symmetries of the square (0: none) on [..., H, W]: a transpose
    (turn >= 4) then flips. The per-pixel colour covariance in stage 1's output is unchanged."""
    if turn >= 4:
        x = x.transpose(-1, -2)
    dims = [d for d, bit in ((-1, 1), (-2, 2)) if turn & bit]
    return x.flip(dims) if dims else x
