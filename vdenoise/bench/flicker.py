"""Flicker: how much a video's error changes from one frame to the next, motion compensated.

For clean frames C, an output O and W, the warp of frame t-1 onto frame t along the optical
flow measured on the clean frames (OpenCV DIS, bilinear):

    flicker = 255 * sqrt( mean over t, visible pixels, channels of (d_t(O) - d_t(C))^2 )
    d_t(V)  = V_t - W(V_{t-1})

on the 0-255 scale, lower is better. `d_t` is the warping error E_warp of Lai et al., "Learning
Blind Video Temporal Consistency" (ECCV 2018): consecutive frames compared after compensating
the motion measured on the original video, occluded pixels masked. Subtracting the clean frames' own
`d_t`, as tOF and tLP (Chu et al., "Learning Temporal Coherence via Self-Supervision for
GAN-based Video Generation", ACM TOG 2020) compare an output's temporal change with the ground
truth's, removes what the flow cannot explain in the clean video (lighting, flow error).
Since W is linear, the figure is the RMS of e_t - W(e_{t-1}) for the error e = O - C: error that
moves with the picture (a blur, a lost texture) does not count, error that changes from frame to
frame does. Independent per-frame noise of std s scores about 1.1-1.4 s (bilinear warping
averages part of the previous frame's noise away), the same noise carried along with the
content about 0.

Visible pixels: those whose source lies inside frame t-1 and whose forward and backward flows
agree, |f + b(p + f)|^2 <= 0.01 (|f|^2 + |b(p + f)|^2) + 0.5 (Sundaram, Brox and Keutzer, ECCV
2010; the occlusion test of Ruder et al. 2016 that Lai et al. use).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vdenoise.models.flow import DISFlow, warp_bilinear

FLICKER_DEFINITION = (
    "255 x RMS over consecutive frames, channels and visible pixels of "
    "(O_t - W(O_{t-1})) - (C_t - W(C_{t-1})), W warping along the DIS flow of the clean frames "
    "C, occlusions masked by forward-backward consistency (warping error of Lai et al., ECCV "
    "2018, relative to the clean video's); output clipped to [0, 1]; lower is better"
)
BATCH = 8  # frame pairs warped at once (bounds memory on long sequences)


@dataclass(frozen=True)
class Motion:
    """The clean frames' motion from each frame to the next: `flow[t]` carries frame t onto
    frame t+1 (frame t+1 at p shows frame t at p + flow), `visible[t]` where that holds."""

    flow: torch.Tensor  # [N-1, 2, H, W]
    visible: torch.Tensor  # [N-1, 1, H, W], bool


def visible(forward: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """Pixels of the later frame seen in the earlier one: inside the frame, and the flows agree
    (Sundaram et al. 2010). `forward` as in `Motion.flow`, `backward` the other way."""
    back, inside = warp_bilinear(backward, forward)  # b(p + f(p))
    mismatch = (forward + back).square().sum(1, keepdim=True)
    scale = forward.square().sum(1, keepdim=True) + back.square().sum(1, keepdim=True)
    return (mismatch <= 0.01 * scale + 0.5) & (inside > 0)


def clean_motion(clean: torch.Tensor) -> Motion | None:
    """The motion of clean frames [N, 3, H, W] in [0, 1]; None for a single frame."""
    if len(clean) < 2:
        return None
    dis = DISFlow()
    forward = dis(clean[1:], clean[:-1])
    backward = dis(clean[:-1], clean[1:])
    return Motion(forward, visible(forward, backward))


def flicker(output: torch.Tensor, clean: torch.Tensor, motion: Motion | None) -> float | None:
    """The flicker of `output` [N, 3, H, W] (clipped to [0, 1]) against `clean`, 0-255 scale;
    None without two frames or without a visible pixel."""
    if motion is None:
        return None
    total, count = 0.0, 0.0
    for start in range(0, len(clean) - 1, BATCH):
        end = min(start + BATCH, len(clean) - 1)
        error = (output[start : end + 1].float().clamp(0, 1) - clean[start : end + 1]).float()
        warped, _ = warp_bilinear(error[:-1], motion.flow[start:end])
        mask = motion.visible[start:end].float()
        total += float(((error[1:] - warped).square() * mask).sum())
        count += float(mask.sum()) * error.shape[1]
    return 255.0 * math.sqrt(total / count) if count else None
