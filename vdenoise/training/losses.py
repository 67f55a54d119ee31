"""The self-supervised losses of each method. Every loss takes noisy clips only.

Every loss can take clips wider than what the networks train on (`margin`): the optical flow
sees the whole clip, the networks only its centre. Flow computed on a training crop alone
misses much of the motion it finds on the whole frame, so without the margin the networks
learn to distrust an alignment that at inference is good (measured on the validation
sequences at sigma 30, the nearest warp of the previous clean frame inside 64x64 crops: flow
from the crop alone 25.9 dB, from the crop with 64 px of context 30.7, from the whole frame
30.8, no motion compensation 21.1; inside 128x128 crops 28.0, 30.3, 30.3, 20.1).

- STBN: the Gaussian negative log-likelihood of its blind prediction (Laine et al. 2019), over
  every frame of the clip (../shared/reference/methods.md 1.6, 1.8).
- F2R stage 1: the anchor never sees the centre frame, so the noisy centre is a valid target
  (Noise2Noise): the NLL of the anchor's Gaussian, or the MSE without its covariance.
- F2R stage 2: the refiner sees the noisy centre, so it is trained with a loss that stays
  unbiased: SURE with a Monte-Carlo divergence (Ramani, Blu, Unser 2008) for Gaussian noise of
  known level; recorrupted-to-recorrupted (Pang et al. 2021) for known noise of any
  covariance; or spatially adaptive supervision (Li et al. 2023) for real, correlated noise.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vdenoise.models.f2r import F2R
from vdenoise.models.gaussian import negative_log_likelihood
from vdenoise.models.stbn import STBN
from vdenoise.training.local_view import LocalView, texture_weight
from vdenoise.training.noise_profile import NoiseProfile

SURE_EPSILON = 1e-3  # finite-difference step of the divergence, [0, 1] scale
R2R_ALPHA = 0.5  # Pang et al.'s recorruption strength


def inner(x: torch.Tensor, margin: int) -> torch.Tensor:
    """[..., H, W] without `margin` pixels on each side."""
    h, w = x.shape[-2:]
    return x[..., margin : h - margin, margin : w - margin] if margin else x


def flow_pairs(model: F2R | STBN, frames: int) -> list[tuple[int, int]]:
    """The flows (target, source frame of a clip of `frames`) that a model's loss uses, in the
    order the losses take them given (`flows` [B, P, 2, H, W], from `training.flow_cache`):
    F2R's from each window's centre to its neighbours (as `F2R.flows`), STBN's from each
    frame to the one before, then to the one after (as `STBN.estimate_flows`)."""
    if isinstance(model, F2R):
        k = model.config.neighbours
        return [
            (i + k, j)
            for i in range(frames - 2 * k)
            for j in [*range(i, i + k), *range(i + 2 * k, i + k, -1)]
        ]
    return [(t, t - 1) for t in range(1, frames)] + [(t, t + 1) for t in range(frames - 1)]


def stbn_nll(
    model: STBN,
    noisy: torch.Tensor,
    sigma: torch.Tensor,
    margin: int = 0,
    flows: torch.Tensor | None = None,
) -> torch.Tensor:
    """STBN's loss on clips [B, T, 3, H, W] with per-clip noise std sigma [B]; `flows` (as
    `flow_pairs` orders them) held fixed, or estimated from the noisy clips."""
    if flows is None:
        given = model.estimate_flows(noisy, warmup=0)
    else:
        t = noisy.shape[1]
        given = [None, *flows[:, : t - 1].unbind(1)], [*flows[:, t - 1 :].unbind(1), None]
    forward, backward = ([None if f is None else inner(f, margin) for f in fl] for fl in given)
    noisy = inner(noisy, margin)
    prediction = model.prior(noisy, sigma, (forward, backward), warmup=0)
    s = sigma.view(-1, 1, 1, 1, 1)
    return negative_log_likelihood(prediction[:, :, :3], prediction[:, :, 3:], noisy, s).mean()


def stage_one(
    model: F2R,
    noisy: torch.Tensor,
    sigma: torch.Tensor,
    margin: int = 0,
    flows: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """F2R's stage 1 on every window of the clips, flattened: (its output [N, 3 or 9, h, w],
    the noisy centre frames [N, 3, h, w], sigma per window [N], and stage 1 again for other
    centre frames, the neighbours and flows held); `flows` given (as `flow_pairs` orders
    them) or estimated on the whole clip."""
    before, after, centre = model.windows(noisy)
    if flows is None or not model.config.align:
        flows = model.flows(before, after, centre)
    else:
        flows = flows.unflatten(1, (-1, 2 * model.config.neighbours)).flatten(0, 1)
    before, after, centre = (inner(x, margin) for x in (before, after, centre))
    flows = None if flows is None else inner(flows, margin)
    sigma = sigma.repeat_interleave(centre.shape[0] // noisy.shape[0])
    h, w = centre.shape[-2:]
    level = sigma.view(-1, 1, 1, 1).expand(-1, 1, h, w).to(noisy.dtype)

    def run(frame: torch.Tensor) -> torch.Tensor:
        view = frame if model.config.centre_view else None  # seen through its blind spot only
        return model.estimator(before, after, level, flows, view)

    return run(centre), centre, sigma, run


def f2r_anchor_loss(
    model: F2R,
    noisy: torch.Tensor,
    sigma: torch.Tensor,
    margin: int = 0,
    flows: torch.Tensor | None = None,
) -> torch.Tensor:
    """Stage 1 against the noisy centre frames it never saw (at each pixel)."""
    stage1, centre, sigma, _ = stage_one(model, noisy, sigma, margin, flows)
    if not model.config.uncertainty:
        return F.mse_loss(stage1.float(), centre.float())
    s = sigma.view(-1, 1, 1, 1)
    spread = model.noise_spread(stage1)
    if spread is not None:  # noise that grows with brightness: the NLL knows the level per
        s = s * spread  # pixel, the covariance need not take it in
    return negative_log_likelihood(stage1[:, :3], stage1[:, 3:], centre, s).mean()


@dataclass
class RefinerBatch:
    """What stage 2 works from, with stage 1 held fixed: windows flattened to [N, ...]."""

    stage1: torch.Tensor  # [N, 3 or 9, H, W]: the anchor (and its covariance factor)
    centre: torch.Tensor
    sigma: torch.Tensor  # [N]
    spread: torch.Tensor | None = None  # [N, 1, H, W] per-pixel std / sigma (`F2R.noise_spread`)
    # Stage 1 for another centre frame, where it reads the centre (`F2RConfig.centre_view`):
    # then a nudged or recorrupted frame goes through both stages, as Stein's lemma needs.
    rerun: Callable[[torch.Tensor], torch.Tensor] | None = None

    @property
    def anchor(self) -> torch.Tensor:
        return self.stage1[:, :3]

    def level(self, scale: float = 1.0) -> torch.Tensor:
        """The level map stage 2 is given, as in `F2R.forward`."""
        h, w = self.centre.shape[-2:]
        level = (self.sigma * scale).view(-1, 1, 1, 1).expand(-1, 1, h, w)
        if self.spread is not None:
            level = level * self.spread
        return level.to(self.centre.dtype)


def refiner_batch(
    model: F2R,
    noisy: torch.Tensor,
    sigma: torch.Tensor,
    train_anchor: bool = False,
    margin: int = 0,
    flows: torch.Tensor | None = None,
) -> RefinerBatch:
    """Run stage 1 on every window of the clips: frozen, or (`train_anchor`, joint fine-tuning)
    with its gradient kept. Stage 2's losses stay valid either way: stage 1 never sees the
    centre frame, so its output is independent of that frame's noise."""
    grad = train_anchor and torch.is_grad_enabled()
    with torch.set_grad_enabled(grad):
        stage1, centre, sigma, run = stage_one(model, noisy, sigma, margin, flows)
    stage1 = stage1.float()

    def rerun(frame: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
            return run(frame).float()

    again = rerun if model.config.centre_view else None
    return RefinerBatch(stage1, centre, sigma, model.noise_spread(stage1), again)


def _refine(model: F2R, batch: RefinerBatch, noisy: torch.Tensor, scale: float = 1.0):
    stage1 = batch.stage1
    if batch.rerun is not None and noisy is not batch.centre:
        stage1 = batch.rerun(noisy)
    return model.refine(stage1.to(noisy.dtype), noisy, batch.level(scale)).float()


@contextlib.contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """fp32 arithmetic, without autocast and without TF32 convolutions: SURE's finite difference
    nudges the input by 1e-3, below the rounding step of bf16 (2^-8 near 1) and near TF32's
    (2^-10), which round most of it away; the estimate stays unbiased but gets three times
    noisier (tests/training/test_losses.py)."""
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.autocast(device.type, enabled=False):
            yield
    finally:
        torch.backends.cudnn.allow_tf32 = tf32


def f2r_sure(
    model: F2R, batch: RefinerBatch, noise: NoiseProfile | None = None, sigma_power: float = 0.0
) -> torch.Tensor:
    """Monte-Carlo SURE of the refined frames: an unbiased estimate of their MSE to the clean
    frames when the noise is Gaussian, white of std sigma or, given `noise`, of its measured
    covariance S. Stein's lemma for correlated noise: E|f - x|^2 = E[|f - y|^2 - tr S +
    2 tr(S J_f)], and tr(S J) = E[b^T J b] for probes b ~ N(0, S); S may also vary with
    brightness (signal-dependent noise: the anchor's brightness stands for the clean frame's).
    With `sigma_power` p each window's estimate weighs sigma^-p (over the batch's mean weight):
    at p 0 the noisiest windows, whose errors are largest, steer training most. Always in fp32."""
    with full_precision(batch.centre.device):
        return _sure(model, batch, noise, sigma_power)


def _sure(
    model: F2R, batch: RefinerBatch, noise: NoiseProfile | None, sigma_power: float
) -> torch.Tensor:
    y = batch.centre.float()
    out = _refine(model, batch, batch.centre)
    if noise is None:
        level = batch.sigma.float().view(-1, 1, 1, 1)
        probe = torch.randn_like(y) * level
        variance = batch.sigma.float() ** 2
    else:  # the measured covariance, scaled per pixel where the noise depends on brightness
        brightness = batch.anchor.float().mean(1, keepdim=True)
        probe = noise.sample(y, brightness)
        average = noise.colour.diagonal().mean().to(y.device)
        variance = average * noise.variance_map(brightness).flatten(1).mean(1)  # tr S / M
        level = variance.sqrt().view(-1, 1, 1, 1)
    unit = probe / level.clamp_min(1e-6)  # the step is SURE_EPSILON per unit of noise std
    nudged = _refine(model, batch, (y + SURE_EPSILON * unit).to(batch.centre.dtype))
    divergence = probe * (nudged - out) * (level / SURE_EPSILON)
    terms = (out - y) ** 2 - variance.view(-1, 1, 1, 1) + 2 * divergence
    kept = unclipped(y)  # Stein's lemma needs Gaussian noise: not where an 8-bit file clipped
    per_window = (terms * kept).flatten(1).sum(1) / kept.flatten(1).sum(1).clamp_min(1)
    weight = batch.sigma.float().clamp_min(1e-6) ** -sigma_power
    return (per_window * weight).sum() / weight.sum()


def unclipped(y: torch.Tensor) -> torch.Tensor:
    """1 where a value of noisy frames [N, C, H, W] in [0, 1] can hold Gaussian noise, 0 where
    it sits exactly at 0 or 1 (clipped, as in 8-bit files: noise added there is not seen);
    AWGN, not clipped, lands exactly there with probability zero."""
    return ((y != 0) & (y != 1)).float()


def f2r_r2r(model: F2R, batch: RefinerBatch, noise: NoiseProfile | None = None) -> torch.Tensor:
    """Recorrupted-to-recorrupted: input y + a z, target y - z / a, with z drawn from the
    noise's own distribution (`noise`, measured; white of std sigma without it). The two
    noises are then uncorrelated, so the target's noise averages out. The refiner is told the
    input's actual level, sigma sqrt(1 + a^2), so at test time plain y with sigma fits."""
    y = batch.centre.float()
    if noise is None:
        z = torch.randn_like(y) * batch.sigma.float().view(-1, 1, 1, 1)
    else:
        z = noise.sample(y, batch.anchor.float().mean(1, keepdim=True))
    out = _refine(
        model, batch, (y + R2R_ALPHA * z).to(batch.centre.dtype), math.hypot(1, R2R_ALPHA)
    )
    return F.mse_loss(out, y - z / R2R_ALPHA)


def local_view_loss(local: LocalView, batch: RefinerBatch) -> torch.Tensor:
    """The local view learns to imitate the blind view (the anchor) from the noisy frame."""
    return F.l1_loss(local(batch.centre, batch.level()).float(), batch.anchor)


def f2r_adaptive(model: F2R, batch: RefinerBatch, local: LocalView) -> torch.Tensor:
    """Spatially adaptive supervision: the anchor (blind to the whole centre frame, so to its
    correlated noise too) where the anchor is flat, the local view where it is textured."""
    with torch.no_grad():
        target = local(batch.centre, batch.level()).float()
    weight = texture_weight(batch.anchor)
    out = _refine(model, batch, batch.centre)
    flat = (1 - weight) * (out - batch.anchor).abs()
    return (flat + weight * (out - target).abs()).mean()
