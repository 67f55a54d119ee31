"""F2R: Frames2Residual (Ji, Shi, Zhou, Fu, Cao; arXiv 2603.10417, March 2026).

No code of the paper is public; this follows its abstract and the design derived from it in
../shared/reference/methods.md section 3.2:

- stage 1, a *frame-wise blind* temporal estimator: it sees the k neighbouring frames on each
  side and never the centre frame, so its output (the anchor) is independent of the centre
  frame's noise and can be trained against the noisy centre itself (Noise2Noise). Built like
  FastDVDnet's two steps: one U-Net shared by both sides (each side's frames ordered from far
  to near, so the same weights serve the past and the reversed future), then a U-Net fusing
  both sides into the anchor and, optionally, a per-pixel covariance of its error;
- stage 2, a *non-blind* spatial refiner: it takes the anchor, the noisy centre frame, the
  noise level (and the anchor's variance) and predicts the residual the anchor lacks. With
  `posterior`, the residual is added to the Gaussian posterior mean of the clean frame given
  the anchor's prediction (mean and covariance) and the noisy frame (Laine et al. 2019, as in
  STBN): where the anchor is unsure (occlusion, fast motion) that falls back on the frame
  itself, and the refiner starts from it rather than from an anchor it must first undo. With
  `highpass` (earlier checkpoints) the residual is confined to high frequencies instead. With
  `fallback_posterior` (f2r-small since 0.17.0) stage 2 also reads the posterior given the
  anchor fallen back on the frame's own surrounding pixels (`fallback.py`) and mixes its
  output with it by a gate it predicts per pixel: the two err apart, most at low noise.

Sliding window, one pass per frame; windows are batched. Stage 1 aligns the neighbours to the
centre frame along optical flow (OpenCV DIS, computed outside autograd): the flow sees the
centre frame, so the anchor's independence of that frame's noise is measured, not assumed
(tests/models/test_f2r.py: its error's correlation with the centre frame's noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vdenoise.models.base import VideoDenoiser
from vdenoise.models.estimators import chosen_flow
from vdenoise.models.fallback import ring_mean, spatial_fallback
from vdenoise.models.flow import (
    DISFlow,
    FlowEstimator,
    PairCache,
    compose,
    warp_bilinear,
)
from vdenoise.models.gaussian import calibrated, covariance, posterior_mean
from vdenoise.models.layers import (
    CentreMaskedConv2d,
    DilatedResBlock,
    UNet,
    conv,
    gaussian_blur,
    space_to_depth,
)
from vdenoise.noise import relative_variance_at


@dataclass(frozen=True)
class F2RConfig:
    neighbours: int = 2  # k frames on each side of the centre
    width: int = 32  # stage-1 U-Net width
    refiner_width: int = 32
    uncertainty: bool = True  # stage 1 also predicts a Gaussian covariance of its error
    posterior: bool = True  # stage 2 refines the posterior mean given anchor and frame
    highpass: bool = False  # confine the stage-2 residual to high frequencies
    highpass_sigma: float = 2.0
    chunk: int = 8  # frames produced per call (windows batched together)
    kernel: int = 3  # K: the anchor averages K x K pixels of each neighbour, per-pixel weights
    align: bool = True  # stage 1 warps the neighbours onto the centre frame along optical flow
    centre_view: int = 0  # width of stage 1's blind-spot view of the centre frame (0: none)
    # Where the neighbours fail, the anchor falls back on each pixel's 8 surrounding pixels in
    # the centre frame, weighed by measured errors (`fallback.spatial_fallback`); stage 2 reads
    # that anchor and its weight beside the temporal anchor and its posterior
    spatial_fallback: bool = False
    # With `spatial_fallback`: stage 2 also reads the posterior mean given the fallen-back
    # anchor (the temporal anchor's covariance, calibrated on the input) and mixes its output
    # with it by a gate it predicts per pixel (`F2R._refine`)
    fallback_posterior: bool = False


# Checkpoints written before `posterior` existed refine the anchor itself; those written
# before `align` existed fuse unaligned neighbours.
LEGACY = {"posterior": False, "align": False}

# F2R's flow, from the centre frame to each neighbour: smoother than DIS's defaults (more
# blur, 3x the smoothness weight), because a flow that fits the centre frame's noise warps
# neighbours towards that noise. Measured with an untrained stage 1 (untrained: the flow's
# effect alone) on 5 frames of a 256x256 crop of davis-bmx-trees at sigma 30: the anchor's
# error correlated 0.011 with the centre frame's noise with DIS's defaults (blur 1), 0.005
# with these, for 0.4 dB less anchor PSNR; at half resolution 0.001, for 1.4 dB less.
FLOW_BLUR = 1.5
FLOW_SMOOTHNESS = 60.0
# And cheaper than DIS's medium preset: patches every 4 pixels, not 3, and 3 variational
# refinement iterations, not 5 (with the smoothness above, more smooth fast motion away):
# 1.51x the pairs/s at 640x480 (benchmarks/flow_speed.py --size 640x480). With the flows
# composed (F2R.compose_flows), f2r-small 0.11.0's output moved by -0.05 to 0.00 dB on the
# validation sequences as they are and by +0.10 with 3x their motion (its card, "vdenoise
# 0.13.0's flows").
FLOW_PATCH_STRIDE = 4
FLOW_REFINEMENT_ITERATIONS = 3


def dis_flow() -> DISFlow:
    """F2R's DIS setting (above)."""
    return DISFlow(
        smooth=FLOW_BLUR,
        smoothness=FLOW_SMOOTHNESS,
        patch_stride=FLOW_PATCH_STRIDE,
        refinement_iterations=FLOW_REFINEMENT_ITERATIONS,
    )


def default_flow() -> FlowEstimator:
    """F2R's DIS setting on CPUs, the torch `PyramidFlow` on accelerators, or as
    VDENOISE_FLOW says (`estimators.chosen_flow`). F2R wraps it in a `PairCache`, so that each
    pair of frames is matched once a video."""
    return chosen_flow(dis_flow())


CENTRE_PRIOR = 3.0  # initial logit of each frame's own pixel over its K x K neighbours


PRESETS = {
    "large": F2RConfig(width=64, refiner_width=64),
    "base": F2RConfig(width=32, refiner_width=32),
    "tiny": F2RConfig(width=16, refiner_width=16),
    # For CPUs: >= 2 frames/s at 640x480. 4 frames per call, not 8: end to end at 640x480 the
    # peak memory is 883 MiB, not 1,066 (benchmarks/end_to_end.py), at the same speed. Stage 2
    # of width 24, not 8: +0.05 dB at equal training time, for 25 ms a frame more (0.7.0).
    # With the spatial fallback (0.11.0): its anchor never below the frame at 1x-3x motion.
    # With the gate to the posterior given that anchor (0.17.0): +0.18 dB at sigma 10.
    "small": F2RConfig(
        width=8, refiner_width=24, chunk=4, spatial_fallback=True, fallback_posterior=True
    ),
}


class TemporalEstimator(nn.Module):
    """Stage 1: the anchor of a frame from its neighbours only.

    With `align`, each neighbour is first warped onto the centre frame along optical flow
    (given: `F2R.flows`), and the networks are also told, per neighbour, how far it departs
    from the other aligned neighbours and where its source left the frame: what they need to
    learn where the alignment can be trusted (occlusion, flow failure on fast motion).
    The fusion U-Net then predicts, per pixel, weights over a K x K neighbourhood in each of
    the 2k (aligned) neighbouring frames (a kernel-prediction network: Mildenhall et al.,
    "Burst Denoising with Kernel Prediction Networks", CVPR 2018) plus a small correction.
    Averaging frames is then what the network does from the start (uniform weights,
    favouring each frame's own pixel), and training learns where to trust which frame; the
    K x K kernel follows what motion the flow leaves (about a pixel).
    """

    def __init__(self, config: F2RConfig) -> None:
        super().__init__()
        k, w, size = config.neighbours, config.width, config.kernel
        self.size = size
        self.align = config.align
        self.taps = 2 * k * size * size
        self.side = UNet((5 if config.align else 3) * k + 1, w, w)
        self.fuse = UNet(2 * w + 1, self.taps + (9 if config.uncertainty else 3), w)
        self.fuse.quiet_output()
        prior = torch.zeros(2 * k, size * size)
        prior[:, size * size // 2] = CENTRE_PRIOR
        self.register_buffer("prior", prior.view(1, -1, 1, 1), persistent=False)
        self.centre_view = BlindCentreView(config.centre_view) if config.centre_view else None
        if self.centre_view is not None:
            outputs = self.taps + (9 if config.uncertainty else 3)
            self.gate = CentreGate(outputs, config.centre_view, 2 * k, outputs - self.taps - 3)

    def forward(
        self,
        before: torch.Tensor,
        after: torch.Tensor,
        level: torch.Tensor,
        flows: torch.Tensor | None = None,
        centre: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """before, after: [N, k, 3, H, W], each ordered from far to near; level: [N, 1, H, W];
        flows (with `align`): [N, 2k, 2, H, W] from the centre frame to each of before, after;
        centre (with `centre_view`): [N, 3, H, W], seen only through its blind spot.

        Returns [N, 3 or 9, H, W]: the anchor (and its covariance factor)."""
        n, k = before.shape[:2]
        frames = torch.cat([before, after], 1)
        if self.align:
            assert flows is not None, "an aligning stage 1 needs the flows to its neighbours"
            frames, trust = aligned(frames, flows)
            sides = (
                torch.cat([frames[:, :k].flatten(1, 2), trust[:, : 2 * k]], 1),
                torch.cat([frames[:, k:].flatten(1, 2), trust[:, 2 * k :]], 1),
            )
        else:
            sides = before.flatten(1, 2), after.flatten(1, 2)
        if torch.is_grad_enabled() or level.device.type != "cpu":  # both sides in one batch
            features = self.side(torch.cat([torch.cat(sides), level.repeat(2, 1, 1, 1)], 1))
            halves = features[:n], features[n:]
        else:  # inference on a CPU: one side at a time, for memory
            halves = tuple(self.side(torch.cat([side, level], 1)) for side in sides)
        out = self.fuse(torch.cat([*halves, level], 1))
        # At fp32 inference nothing else reads `out`'s logits: the prior added in place there,
        # and torch's softmax beside them (1.62x the in-place one below at 640x480,
        # benchmarks/kernel_speed.py), at the same peak memory.
        reuse = not torch.is_grad_enabled() and out.dtype == torch.float32
        reuse = reuse and self.centre_view is None
        if reuse:
            logits = out[:, : self.taps].add_(self.prior)
        else:
            logits = out[:, : self.taps].float() + self.prior
        view = None
        if self.centre_view is not None:
            assert centre is not None, "stage 1's centre view needs the centre frame"
            features, estimate = self.centre_view(centre, level)
            frame_logits, view_logit, cov = self.gate(out, features, estimate, frames, level)
            size2 = self.size * self.size
            logits = (logits.unflatten(1, (-1, size2)) + frame_logits.unsqueeze(2)).flatten(1, 2)
            logits = torch.cat([logits, view_logit.float()], 1)
            out = torch.cat([out[:, : self.taps + 3], out[:, self.taps + 3 :] + cov], 1)
            view = estimate
        if torch.is_grad_enabled() or reuse:
            weights = torch.softmax(logits, 1)
        else:  # in place: one map of 2k K^2 channels less at the peak
            weights = logits.sub_(logits.amax(1, keepdim=True)).exp_()
            weights.div_(weights.sum(1, keepdim=True))
        average = self._weighted(frames, weights[:, : self.taps])
        if view is not None:
            average = average + weights[:, self.taps :] * view.float()
        average = average.to(out.dtype)
        return torch.cat([average + out[:, self.taps : self.taps + 3], out[:, self.taps + 3 :]], 1)

    def _weighted(self, frames: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Sum over frames [N, F, 3, H, W] and K x K offsets of weights [N, F*K*K, H, W]: one
        shifted multiply-add per (frame, offset), without materialising the K*K patches."""
        n, f, c, h, w = frames.shape
        r = self.size // 2
        x = frames.flatten(0, 1).float()
        if r:
            x = F.pad(x, (r, r, r, r), mode="reflect" if min(h, w) > r else "replicate")
        x = x.view(n, f, c, h + 2 * r, w + 2 * r)
        weights = weights.view(n, f, self.size * self.size, 1, h, w)
        total = torch.zeros(n, c, h, w, dtype=x.dtype, device=x.device)
        for i in range(f):
            for j in range(self.size * self.size):
                dy, dx = divmod(j, self.size)
                total.addcmul_(x[:, i, :, dy : dy + h, dx : dx + w], weights[:, i, j])
        return total


class BlindCentreView(nn.Module):
    """Stage 1's view of the centre frame, blind to each pixel's own 2x2 block: its fallback
    where no neighbour aligns (fast motion, occlusion, scene cuts).

    At half resolution (each 2x2 block to channels, padded by replication so a block never
    holds a copy of another's pixel), a centre-masked 3x3 convolution, then only 1x1 and
    dilation-2 convolutions: a half-resolution position never sees itself (D-BSN, Wu et al.
    2020; as STBN's branches), so the features and the estimate at a pixel are independent of
    the noise in its block. Returns features [N, width, H, W] and a spatial estimate of the
    frame [N, 3, H, W], both constant over each block. Whatever reads them must do so pixel by
    pixel (a spatial filter would bring a block's noise back from its neighbours' views)."""

    def __init__(self, width: int, blocks: int = 2) -> None:
        super().__init__()
        self.head = CentreMaskedConv2d(4 * 3 + 1, width, 3)
        body: list[nn.Module] = [DilatedResBlock(width, 2) for _ in range(blocks)]
        self.body = nn.Sequential(*body, conv(width, width, 1), nn.ReLU())
        self.estimate = conv(width, 3, 1)

    def forward(
        self, centre: torch.Tensor, level: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = centre.shape[-2:]
        x = F.pad(centre, (0, w % 2, 0, h % 2), mode="replicate")
        small = space_to_depth(x)
        features = self.body(F.relu(self.head(torch.cat([small, level[..., ::2, ::2]], 1))))
        estimate = self.estimate(features) + ring_mean(small.unflatten(1, (3, 4)).mean(2))

        def full(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, scale_factor=2.0, mode="nearest")[..., :h, :w]

        return full(features), full(estimate)


class CentreGate(nn.Module):
    """Per pixel (1x1 convolutions only, which keeps the centre view's blind spot): from the
    fusion's outputs, the centre view and how far each aligned neighbour departs from the
    view's estimate, a logit added to each neighbour's taps, the view's own logit and a
    correction of the covariance factor. Starts nearly silent: the neighbours as before, the
    view weighted about 1 % (VIEW_PRIOR)."""

    def __init__(self, fused: int, width: int, neighbours: int, factor: int) -> None:
        super().__init__()
        inputs = fused + width + 3 + neighbours + 1
        self.factor = factor
        self.net = nn.Sequential(
            conv(inputs, 2 * width, 1), nn.ReLU(), conv(2 * width, neighbours + 1 + factor, 1)
        )
        last = self.net[-1]
        with torch.no_grad():
            last.weight.zero_()
            last.bias.zero_()
            last.bias[neighbours] = VIEW_PRIOR

    def forward(
        self,
        fused: torch.Tensor,
        features: torch.Tensor,
        estimate: torch.Tensor,
        frames: torch.Tensor,
        level: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns per-neighbour logits [N, 2k, H, W], the view's logit [N, 1, H, W] and the
        covariance factor's correction [N, 6 or 0, H, W]."""
        departure = (frames - estimate.unsqueeze(1)).abs().mean(2)
        x = torch.cat([fused, features, estimate, departure, level], 1)
        out = self.net(x)
        f = frames.shape[1]
        return out[:, :f], out[:, f : f + 1], out[:, f + 1 :]


# Initial logit of the centre view, against the taps' (0, each frame's own pixel CENTRE_PRIOR):
# about 1 % of the weight. Lower starts learn too slowly (the logit's gradient scales with
# its weight): at -6 (0.002 %), 189 steps of the anchor's loss left the anchor unchanged.
VIEW_PRIOR = 0.0


def aligned(frames: torch.Tensor, flows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Neighbours [N, F, 3, H, W] warped along flows [N, F, 2, H, W], and per neighbour two
    trust maps [N, 2F, H, W] (ordered per frame: mismatch, inside): the mean absolute
    difference to the average of the aligned neighbours, and whether its source lies inside
    the frame. Neither reads the centre frame (only the flows were computed from it)."""
    n, f = frames.shape[:2]
    warped, inside = warp_bilinear(frames.flatten(0, 1), flows.flatten(0, 1).float())
    warped, inside = warped.unflatten(0, (n, f)), inside.unflatten(0, (n, f))
    mismatch = (warped - warped.mean(1, keepdim=True)).abs().mean(2, keepdim=True)
    trust = torch.cat([mismatch, inside], 2).flatten(1, 2)
    return warped, trust


def uses_posterior(config: F2RConfig) -> bool:
    return config.posterior and config.uncertainty  # the posterior needs the covariance


# Where a gate joins a trained stage 2 (`SpatialRefiner.set_gate`): f2r-small 0.16.0's output
# mixed with the posterior given its fallen-back anchor, on the first 6 frames of the
# validation sequences (8-bit): 35.94 / 36.12 / 36.11 dB at sigma 10 for the shares 0 / 0.25 /
# 0.5, 30.66 / 30.73 / 30.56 at sigma 30. Adam moves a new weight by about its rate a step, so
# a gate grown from 0 at 5e-5 reached 0.012 in 900 steps.
GATE_START = 0.25


class SpatialRefiner(nn.Module):
    """Stage 2: the residual between its base (the posterior mean, or the anchor in earlier
    checkpoints) and the clean centre frame."""

    def __init__(self, config: F2RConfig) -> None:
        super().__init__()
        self.config = config
        extra = (3 if config.uncertainty else 0) + (3 if uses_posterior(config) else 0)
        extra += 4 if config.spatial_fallback else 0  # the fallen-back anchor, its weight
        self.gated = config.spatial_fallback and config.fallback_posterior
        extra += 3 if self.gated else 0  # the posterior given the fallen-back anchor
        self.net = UNet(3 + 3 + 1 + extra, 4 if self.gated else 3, config.refiner_width)
        self.net.quiet_output()

    def gate_rows(self) -> list[tuple[nn.Parameter, slice]]:
        """Where the gate's own weights are: the last layer's rows of its 4th output (a 2x2
        block's 4 channels, last); none without a gate."""
        if not self.gated:
            return []
        last = self.net.dec0[-2]
        return [(last.weight, slice(12, None)), (last.bias, slice(12, None))]

    def set_gate(self, value: float) -> None:
        """The gate at `value` everywhere, whatever the inputs (its last layer's weights zero):
        after `UNet.load_grown` from a stage 2 without one, 0 leaves the output the grown
        one's, and GATE_START starts from the mix measured best."""
        (weight, rows), (bias, _) = self.gate_rows()
        with torch.no_grad():
            weight[rows].zero_()
            bias[rows].fill_(value)

    def forward(
        self,
        anchor: torch.Tensor,
        noisy: torch.Tensor,
        level: torch.Tensor,
        variance: torch.Tensor | None,
        base: torch.Tensor | None = None,
        fallback: torch.Tensor | None = None,
        second: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`fallback` (with `spatial_fallback`): the fallen-back anchor and its weight, [N, 4,
        H, W]; `second` (with `fallback_posterior`): the posterior given that anchor, [N, 3, H,
        W]; each read after the inputs of earlier checkpoints (`UNet.load_grown`). Returns the
        residual [N, 3, H, W] and, with `fallback_posterior`, the gate after it [N, 1, H, W]."""
        inputs = [anchor, noisy, level]
        if variance is not None:
            inputs.append(torch.log(variance + 1e-6))
        if base is not None:
            inputs.append(base)
        if fallback is not None:
            inputs.append(fallback)
        if second is not None:
            inputs.append(second)
        residual = self.net(torch.cat(inputs, 1))
        if self.config.highpass:
            residual = residual - gaussian_blur(residual, self.config.highpass_sigma)
        return residual


class F2R(VideoDenoiser):
    """Frames2Residual: a frame-wise blind anchor, then a non-blind residual refiner."""

    def __init__(self, config: F2RConfig = F2RConfig(), flow: FlowEstimator | None = None) -> None:
        super().__init__()
        self.config = config
        self.flow: FlowEstimator = flow or PairCache(default_flow())
        # The flows to t+-2 composed from consecutive ones, each pair matched once (the
        # PairCache): 2 flows a frame, not 4, and a trajectory follows fast motion better than
        # one match across two frames (the figures at FLOW_PATCH_STRIDE).
        self.compose_flows = True
        self.estimator = TemporalEstimator(config)
        self.refiner = SpatialRefiner(config)
        self.frames_before = self.frames_after = config.neighbours
        self.frames_per_call = config.chunk
        self.independent_windows = True
        self.spatial_margin = 48
        # Signal-dependent noise (set by `fit` from the clip's measured noise): the variance in
        # equal brightness bins relative to the frame's average; None: the same everywhere.
        self.relative_variance: torch.Tensor | None = None
        # Stage 2 starts from the posterior with the anchor's covariance measured on the input
        # (`calibrated`; stage 2 still sees the variance as predicted). Without retraining,
        # f2r-small on the validation sequences (10 frames, 256x320): 34.91 -> 35.11 dB at
        # sigma 10, 29.87 -> 29.97 at 30, 27.00 -> 27.00 at 50.
        self.calibrate = True
        taps = 2 * config.neighbours * config.kernel**2
        aligned = 48.0 * config.neighbours if config.align else 0.0  # warped frames, flows
        self.bytes_per_pixel = (
            24.0 * max(config.width, config.refiner_width) + 24.0 * taps + aligned
        )

    def windows(
        self, clip: torch.Tensor, first: int = 0, count: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Split [B, T, 3, H, W] into its n windows (or `count` of them from `first`), batched:
        (before, after, centre).

        before, after: [B*n, k, 3, H, W], each side ordered from far to near; centre: [B*n, 3,
        H, W]."""
        k = self.config.neighbours
        n = clip.shape[1] - 2 * k if count is None else count
        span = range(first, first + n)
        before = torch.stack([clip[:, i : i + k] for i in span], 1).flatten(0, 1)
        after = torch.stack([clip[:, i + k + 1 : i + 2 * k + 1].flip(1) for i in span], 1)
        centre = clip[:, k + first : k + first + n].flatten(0, 1)
        return before, after.flatten(0, 1), centre

    def flows(
        self, before: torch.Tensor, after: torch.Tensor, centre: torch.Tensor
    ) -> torch.Tensor | None:
        """Flows [N, 2k, 2, H, W] from each centre frame to its neighbours (before, then
        after, as the windows order them); None where stage 1 does not align. Outside
        autograd: a constant to the networks."""
        if not self.config.align:
            return None
        n, k = before.shape[:2]
        if not self.compose_flows:
            neighbours = torch.cat([before, after], 1).flatten(0, 1)
            targets = centre.unsqueeze(1).expand(-1, 2 * k, -1, -1, -1).flatten(0, 1)
            with torch.no_grad():
                flow = self.flow(targets.float(), neighbours.float())
            return flow.unflatten(0, (n, 2 * k))
        # With `compose_flows`, each side's chain from the centre outwards (centre, nearest,
        # ..., farthest): only consecutive frames are matched, the farther flows composed, so
        # that windows sharing frames share steps (`PairCache`): 2 flows a frame, not 2k.
        chains = [torch.cat([centre[:, None], side.flip(1)], 1) for side in (before, after)]
        targets = torch.cat([chain[:, :-1] for chain in chains], 1).flatten(0, 1)
        sources = torch.cat([chain[:, 1:] for chain in chains], 1).flatten(0, 1)
        with torch.no_grad():
            steps = self.flow(targets.float(), sources.float()).unflatten(0, (n, 2, k))
            sides = []
            for side in steps.unbind(1):
                outward = [side[:, 0]]
                for j in range(1, k):
                    outward.append(compose(outward[-1], side[:, j]))
                sides.append(torch.stack(outward[::-1], 1))  # far to near, as the windows
        return torch.cat(sides, 1)

    def stage_one(
        self, before: torch.Tensor, after: torch.Tensor, centre: torch.Tensor, level: torch.Tensor
    ) -> torch.Tensor:
        """Stage 1 on windows: the centre frames are read only by the optical flow (and, with
        `centre_view`, through a blind spot over each pixel's own 2x2 block)."""
        view = centre if self.config.centre_view else None
        return self.estimator(before, after, level, self.flows(before, after, centre), view)

    def anchor(self, clip: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Stage 1 for every centre frame (with `spatial_fallback`, its anchor fallen back
        where its neighbours fail; the covariance stays the temporal anchor's): [B, n, 3 or 9,
        H, W]."""
        before, after, centre = self.windows(clip)
        n = before.shape[0] // clip.shape[0]
        level = self._level(sigma, n, clip)
        stage1 = self.stage_one(before, after, centre, level)
        fallback = self._fall_back(stage1, centre, level)
        if fallback is not None:
            stage1 = torch.cat([fallback[:, :3], stage1[:, 3:]], 1)
        return stage1.unflatten(0, (clip.shape[0], n))

    def _fall_back(
        self, stage1: torch.Tensor, noisy: torch.Tensor, level: torch.Tensor
    ) -> torch.Tensor | None:
        """With `spatial_fallback`: the anchor fallen back on the centre frames' surrounding
        pixels where that measures better, and the temporal anchor's weight in it, [N, 4, H,
        W]; None without."""
        if not self.config.spatial_fallback:
            return None
        anchor, weight = spatial_fallback(stage1[:, :3], noisy, level)
        return torch.cat([anchor, weight.to(anchor.dtype)], 1)

    def _level(self, sigma: torch.Tensor, n: int, clip: torch.Tensor) -> torch.Tensor:
        h, w = clip.shape[-2:]
        return sigma.repeat_interleave(n).view(-1, 1, 1, 1).expand(-1, 1, h, w).to(clip.dtype)

    def noise_spread(self, stage1: torch.Tensor) -> torch.Tensor | None:
        """The noise std at each pixel relative to the frame's average [N, 1, H, W], where the
        noise grows with brightness (shot noise), read at the anchor's brightness (independent
        of the centre frame's noise); None where the noise is the same everywhere."""
        if self.relative_variance is None:
            return None
        brightness = stage1[:, :3].detach().float().mean(1, keepdim=True)
        return relative_variance_at(self.relative_variance, brightness).sqrt()

    def refine(
        self, stage1: torch.Tensor, noisy: torch.Tensor, level: torch.Tensor
    ) -> torch.Tensor:
        """Stage 2: the clean frames [N, 3, H, W] from stage 1's output [N, 3 or 9, H, W], the
        noisy centre frames and the noise level map [N, 1, H, W]."""
        return self._refine(stage1, noisy, level)[2]

    def _refine(
        self, stage1: torch.Tensor, noisy: torch.Tensor, level: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """The anchor (with `spatial_fallback`, the fallen-back one), stage 2's base (the
        posterior mean of the temporal anchor; None where there is none) and output."""
        fallback = self._fall_back(stage1, noisy, level)
        anchor = stage1[:, :3]
        variance = base = second = None
        if self.config.uncertainty:
            factor = stage1[:, 3:].float()
            variance = covariance(factor)[:, [0, 3, 5]].to(anchor.dtype)
            if uses_posterior(self.config):
                base = self._posterior(anchor, factor, noisy, level)
                if fallback is not None and self.config.fallback_posterior:
                    second = self._posterior(fallback[:, :3], factor, noisy, level)
        residual = self.refiner(anchor, noisy, level, variance, base, fallback, second)
        out = (anchor if base is None else base) + residual[:, :3]
        if second is not None:  # stage 2's gate mixes its output with the second posterior
            out = out + residual[:, 3:] * (second - out)
        return (anchor if fallback is None else fallback[:, :3]), base, out

    def _posterior(
        self, prior: torch.Tensor, factor: torch.Tensor, noisy: torch.Tensor, level: torch.Tensor
    ) -> torch.Tensor:
        """The posterior mean given a prior mean and the covariance factor (with `calibrate`,
        the factor scaled to the prior's error measured on the input), in fp32."""
        with torch.autocast(noisy.device.type, enabled=False):
            if self.calibrate:
                factor = calibrated(prior, factor, noisy, level)
            return posterior_mean(prior, factor, noisy, level).to(prior.dtype)

    def stages(
        self, clip: torch.Tensor, sigma: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """What each stage makes of the centre frames, each [B, n, 3, H, W]: the anchor, the
        posterior mean stage 2 starts from (None without one) and the output.

        Inference on a CPU runs one window at a time: the batch buys no speed there, and each
        window holds about 1 KB per pixel of activations (300 MB at 640x480)."""
        b, n = clip.shape[0], clip.shape[1] - 2 * self.config.neighbours
        if clip.device.type != "cpu" or torch.is_grad_enabled():
            level = self._level(sigma, n, clip)
            anchor, base, out = self._window_stages(*self.windows(clip), level)
            per_clip = (b, n)
            base = None if base is None else base.unflatten(0, per_clip)
            return anchor.unflatten(0, per_clip), base, out.unflatten(0, per_clip)
        level = self._level(sigma, 1, clip)
        parts = [self._window_stages(*self.windows(clip, i, 1), level) for i in range(n)]
        anchor, base, out = (
            None if part[0] is None else torch.stack(part, 1) for part in zip(*parts, strict=True)
        )
        assert anchor is not None and out is not None
        return anchor, base, out

    def _window_stages(
        self, before: torch.Tensor, after: torch.Tensor, centre: torch.Tensor, level: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        stage1 = self.stage_one(before, after, centre, level)
        spread = self.noise_spread(stage1)
        if spread is not None:
            level = level * spread.to(level.dtype)
        return self._refine(stage1, centre, level)

    def forward(self, clip: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self.stages(clip, sigma)[2]
