"""STBN: Spatiotemporal Blind-Spot Network (Chen et al., AAAI 2025, arXiv 2412.11820).

Our own implementation of the structure of the official code (ZKCCZ/STBN, `bdc_2_unify`), as
described in ../shared/reference/methods.md section 1.2:

- two recurrent blind-spot branches (forward, backward): 1x1 head, a centre-masked 3x3 conv,
  then only 1x1 and dilation-2 convs, so a branch never sees its own pixel of the current frame;
- a dilated fusion block, shared by both directions, merging each branch's output with the
  hidden state propagated from the neighbouring frame, aligned by nearest-neighbour warping
  along optical flow;
- SRFE: a 2x2 sub-block patch unshuffle (64 ch at H x W -> 256 ch at H/2 x W/2), dilation-2
  grouped residual blocks, and the inverse shuffle: a wider receptive field, still blind;
- a dilated head with 9 outputs (mean + Gaussian covariance factor), and at test time the
  closed-form posterior that brings the noisy centre pixel back (Laine et al. 2019).

Differences from the reference: flow from OpenCV DIS instead of PWC-Net (no download; see
`flow.py`), ReLUs between SRFE's tail convs (not stated in the notes), and long videos run as
chunks with warm-up frames instead of whole sequences with every hidden state kept in RAM.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from vdenoise.models.base import VideoDenoiser
from vdenoise.models.estimators import chosen_flow
from vdenoise.models.fallback import blend, ring_mean
from vdenoise.models.flow import DISFlow, FlowEstimator, PairCache, warp_bilinear, warp_nearest
from vdenoise.models.gaussian import calibrated, posterior_mean
from vdenoise.models.layers import CentreMaskedConv2d, DilatedResBlock, conv, pad_to_multiple

Flows = tuple[list[torch.Tensor | None], list[torch.Tensor | None]]


@dataclass(frozen=True)
class STBNConfig:
    channels: int = 64  # C: hidden state and branch width
    blocks: int = 5  # dilated residual blocks in each branch and in the fusion
    srfe_groups: int = 2
    srfe_blocks: int = 8  # per group
    head_blocks: int = 2
    warmup: int = 4  # frames of context on each side of a chunk
    chunk: int = 16  # frames produced per call
    carry: bool = False  # pass on a state that also sees its own frame (`Carry`)
    kernel: bool = False  # the mean as a predicted kernel over blind candidates (`kernel_mean`)
    reach: int = 1  # the kernel's candidates come from frames t-reach .. t+reach

    @property
    def taps(self) -> int:
        """Candidates of the kernel mean: the frame's ring, 3x3 of each aligned neighbour."""
        return len(RING) + 2 * 9 * self.reach


RING = [0, 1, 2, 3, 5, 6, 7, 8]  # the 3x3 neighbourhood without its centre
REFERENCE = STBNConfig(64, 5, 2, 8)  # the paper's network
# Measured against the paper's (0.5.0-0.6.0 validation): the carried state and kernel head (0.5.0),
# candidates from t-3..t+3 (0.6.0: 29.72/29.48 dB validation at sigma 30 at 214 steps/the end
# of 25 min, against 29.60/29.35 from t-2..t+2 and 28.92/28.88 from t-1..t+1).
OURS = {"carry": True, "kernel": True, "reach": 3}
PRESETS = {
    "full": replace(REFERENCE, **OURS),
    "medium": STBNConfig(48, 4, 1, 8, **OURS),
    "small": STBNConfig(32, 3, 1, 6, **OURS),
    "tiny": STBNConfig(16, 2, 1, 2, **OURS),
}


class BlindBranch(nn.Module):
    """One direction's blind-spot branch (the official `DBSNl` with one dilation)."""

    def __init__(self, c: int, blocks: int) -> None:
        super().__init__()
        self.head = conv(3 + c + 3, c, 1)
        self.masked = CentreMaskedConv2d(c, c, 3)
        body: list[nn.Module] = [conv(c, c, 1), nn.ReLU(), conv(c, c, 1), nn.ReLU()]
        body += [DilatedResBlock(c, 2) for _ in range(blocks)]
        self.body = nn.Sequential(*body, conv(c, c, 1), nn.ReLU())
        half = c // 2
        self.tail = nn.Sequential(
            conv(c, half, 1), nn.ReLU(), conv(half, half, 1), nn.ReLU(), conv(half, c, 1)
        )

    def forward(self, y: torch.Tensor, hidden: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.head(torch.cat([y, hidden, level], 1)))
        return self.tail(self.body(F.relu(self.masked(x))))


class Carry(nn.Module):
    """What a direction passes on to the next frame: its blind state at frame t plus what frame
    t itself says there, pixel included.

    The state that predicts frame t must not see y_t at its pixel, but the state sent on to
    t +/- 1 may: that frame's noise is independent of y_t. Without this, every frame's own
    pixel (and its whole even sub-lattice) stays out of everything propagated, so the pixel
    that the flow aligns best never reaches the neighbouring frames' predictions."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.mix = nn.Sequential(conv(c + 3, c, 3), nn.ReLU(), conv(c, c, 3))

    def forward(self, state: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return state + self.mix(torch.cat([state, y], 1))


def neighbourhoods(x: torch.Tensor) -> torch.Tensor:
    """The 3x3 neighbourhood of every pixel of [N, C, H, W], zeros outside: [N, 9, C, H, W]."""
    n, c, h, w = x.shape
    return F.unfold(x, 3, padding=1).view(n, c, 9, h, w).transpose(1, 2)


def reaching_flows(flows: Flows, t: int, reach: int) -> Iterator[tuple[torch.Tensor | None, int]]:
    """(flow from frame t to frame s, s) for s = t-1, t+1, t-2, t+2, ... up to `reach`: the
    steps of one direction's flows composed (None where a step is missing)."""
    for distance in range(1, reach + 1):
        for steps, sign in ((flows[0], -1), (flows[1], 1)):
            total: torch.Tensor | None = None
            for k in range(distance):  # frame t + sign*k -> t + sign*(k+1)
                index = t + sign * k
                step = steps[index] if 0 <= index < len(steps) else None
                if step is None:
                    total = None
                    break
                total = step if total is None else total + warp_bilinear(step, total)[0]
            yield total, t + sign * distance


# The posterior's prior, measured on the input (`calibrated`), may also widen where the blind
# mean is worse than it claims (propagation misled by fast motion), up to 100x its variance,
# in a 21-pixel window. stbn-tiny's output on 4 frames of the validation sequences at 1x-3x
# motion, 8-bit (2026-12-05): narrowing only, 31 px 34.56 / 28.57 / 25.23 dB at sigma
# 10 / 30 / 50; widening, 31 px 34.78 / 28.67 / 25.22, 21 px 34.87 / 28.64 / 25.22, 15 px
# 34.94 / 28.60 / 25.20 (davis-bmx-trees at 3x, sigma 10: 33.46 -> 33.97). Widening by all
# the window measured cost up to 0.28 dB at sigma 40 on the 25-frame bench, so only what
# exceeds twice the measurement's standard error widens (`calibrated`): bench 35.80 / 32.23 /
# 29.90 / 28.11 / 26.60 at sigma 10-50 against 35.57 / 32.06 / 29.83 / 28.11 / 26.61.
WIDEST = 100.0
CALIBRATION_WINDOW = 21
# The blind mean is blended (`fallback.blend`, the two errors' covariance measured too) with
# the kernel mean over the frame's own ring, from the same logits: what propagation cannot
# align falls back on the frame itself, at the cost of a second kernel mean.
FALLBACK_WINDOW = 15

UNTRUSTED = 1e4  # pixels: a flow that points this far leaves the frame, so it has no source
# px^2: the constant of the forward-backward check (`consistent`; Sundaram et al. use 0.5 on
# clean frames). Flows from noisy frames disagree more where propagation still helps: on 6
# frames at sigma 30 (8-bit), stbn-tiny's blind mean on davis-car-shadow was 28.14 dB
# unchecked, 27.48 / 27.60 / 27.78 / 27.94 with 0.5 / 2 / 8 / 32, and on davis-bmx-trees at 3x
# motion 26.50 unchecked, 27.32 / 27.32 / 27.31 / 27.26 (the same frames alone: 26.59).
CHECK_SLACK = 32.0


def checked_flows(flows: Flows) -> Flows:
    """The flows with every pixel that fails the forward-backward check sent out of the frame:
    there the recurrence passes nothing on (the warped state is zero, as for a pixel whose
    source left the frame) and the kernel mean takes no candidate from that frame, as the
    network was trained to do at the frame's borders; composed flows through such a pixel
    leave the frame too. Both directions are computed anyway (forward[t]: t -> t-1 is checked
    against backward[t-1]: t-1 -> t), so the check costs no flow.

    Fast motion, occlusions and cuts fail it: followed there, propagation made the blind mean
    worse than each frame alone (22.05 against 23.83 dB on a fast motorbike clip, 2026-12)."""
    forward, backward = list(flows[0]), list(flows[1])
    for t, flow in enumerate(flows[0]):
        reverse = flows[1][t - 1] if t > 0 else None
        if flow is not None and reverse is not None:
            forward[t] = consistent(flow, reverse)
    for t, flow in enumerate(flows[1]):
        reverse = flows[0][t + 1] if t + 1 < len(flows[0]) else None
        if flow is not None and reverse is not None:
            backward[t] = consistent(flow, reverse)
    return forward, backward


def consistent(flow: torch.Tensor, reverse: torch.Tensor) -> torch.Tensor:
    """`flow` [N, 2, H, W] where it agrees with `reverse` (the flow back), UNTRUSTED elsewhere.
    The test of Sundaram, Brox and Keutzer (ECCV 2010): |w + w'|^2 < 0.01 (|w|^2 + |w'|^2) +
    CHECK_SLACK, with w' the reverse flow read at the pixel w points to."""
    back = warp_bilinear(reverse.float(), flow.float())[0]
    error = (flow.float() + back).pow(2).sum(1, keepdim=True)
    allowed = 0.01 * (flow.float().pow(2).sum(1, keepdim=True) + back.pow(2).sum(1, keepdim=True))
    return flow.masked_fill(error > allowed + CHECK_SLACK, UNTRUSTED)


def kernel_mean(
    logits: torch.Tensor,
    clip: torch.Tensor,
    t: int,
    flows: Flows,
    temporal: bool = True,
    reach: int = 1,
) -> torch.Tensor:
    """`kernel_means`' first."""
    return kernel_means(logits, clip, t, flows, temporal, reach)[0]


def kernel_means(
    logits: torch.Tensor,
    clip: torch.Tensor,
    t: int,
    flows: Flows,
    temporal: bool = True,
    reach: int = 1,
    spatial: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Frame t's blind mean [B, 3, H, W]: a softmax-weighted average (weights from `logits`
    [B, taps, H, W]) of its eight neighbours and of the 3x3 neighbourhoods of frames t-1, t+1
    (up to t-reach, t+reach) aligned by nearest warping along the (composed) flows; candidates
    outside the frame or the clip get no weight.

    Returns (mean, ring-only mean): with `spatial` the second is the same kernel over the
    frame's own ring alone (its weights renormalised), from the same shifted copies; else None.

    The frame's own pixel is never a candidate. Starting from an average of its candidates,
    the network learns where to trust which; a mean predicted directly started at zero and
    learned far slower (0.5.0's training: 600 steps gave 19.6 dB against 28.8 at sigma 30)."""
    y = clip[:, t]
    ones = torch.ones_like(y[:, :1])
    # Each source's aligned frame (with a channel that says where it lies inside the frame)
    # is kept, not its 9 shifted copies: those are made one source at a time below, so the
    # 3 x taps maps of all candidates never exist at once (at 640x480, 0.5 GB less).
    sources: list[torch.Tensor | None] = [torch.cat([y, ones], 1)]
    for flow, source in reaching_flows(flows, t, reach):
        if flow is None or not temporal or not 0 <= source < clip.shape[1]:
            sources.append(None)
        else:
            sources.append(warp_nearest(torch.cat([clip[:, source], ones], 1), flow))
    inside = [
        y.new_zeros(y.shape[0], 9, *y.shape[2:]) if x is None else neighbourhoods(x[:, 3:])[:, :, 0]
        for x in sources
    ]
    inside[0] = inside[0][:, RING]
    valid = torch.cat(inside, 1) > 0.5
    weights = torch.softmax(logits.float().masked_fill(~valid, -1e4), 1).to(y.dtype)
    mean = torch.zeros_like(y)
    first = 0
    ring_mean: torch.Tensor | None = None
    for i, x in enumerate(sources):
        count = len(RING) if i == 0 else 9
        if x is not None:
            around = neighbourhoods(x[:, :3])
            around = around[:, RING] if i == 0 else around
            mean += torch.einsum("bkhw,bkchw->bchw", weights[:, first : first + count], around)
            if i == 0 and spatial:
                own = logits[:, : len(RING)].float().masked_fill(~valid[:, : len(RING)], -1e4)
                ring = torch.softmax(own, 1).to(y.dtype)
                ring_mean = torch.einsum("bkhw,bkchw->bchw", ring, around)
        first += count
    return mean, ring_mean


class DilatedStack(nn.Module):
    """1x1 in, dilation-2 residual blocks, 1x1 out (the official `D_dilate`)."""

    def __init__(self, cin: int, width: int, cout: int, blocks: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            conv(cin, width, 1, bias=False),
            *[DilatedResBlock(width, 2) for _ in range(blocks)],
            conv(width, cout, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def sub_block_unshuffle(x: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] (H, W multiples of 4) -> [N, 4C, H/2, W/2].

    Each 4x4 tile splits into four 2x2 sub-blocks; the sub-block index goes to channels, the
    tile index and the position inside the sub-block to space. Output row 2*t + r (channel
    (c, i, j)) comes from input row 4*t + 2*i + r: one step in the output moves an even number
    of input pixels, so dilation-2 convolutions here keep the blind spot.
    """
    n, c, h, w = x.shape
    x = x.view(n, c, h // 4, 2, 2, w // 4, 2, 2)  # (tile, sub-block, inside) per axis
    x = x.permute(0, 1, 3, 6, 2, 4, 5, 7)  # n, c, i, j, tile_y, in_y, tile_x, in_x
    return x.reshape(n, 4 * c, h // 2, w // 2)


def sub_block_shuffle(x: torch.Tensor) -> torch.Tensor:
    """Inverse of `sub_block_unshuffle`."""
    n, c4, h2, w2 = x.shape
    c = c4 // 4
    x = x.view(n, c, 2, 2, h2 // 2, 2, w2 // 2, 2)
    x = x.permute(0, 1, 4, 2, 5, 6, 3, 7)
    return x.reshape(n, c, 2 * h2, 2 * w2)


class SRFE(nn.Module):
    """Spatial receptive-field expansion on the sub-block-unshuffled features of both branches."""

    def __init__(self, c: int, groups: int, blocks: int) -> None:
        super().__init__()
        wide = 4 * c
        self.head = conv(2 * wide, wide, 3, dilation=2)
        self.groups = nn.ModuleList(
            nn.Sequential(*[DilatedResBlock(wide, 2, groups=2) for _ in range(blocks)])
            for _ in range(groups)
        )
        self.tail = nn.Sequential(
            conv(wide, wide, 3, dilation=2),
            nn.ReLU(),
            conv(wide, wide, 1),
            nn.ReLU(),
            conv(wide, wide, 1),
        )

    def forward(self, forward_state: torch.Tensor, backward_state: torch.Tensor) -> torch.Tensor:
        x = torch.cat([forward_state, backward_state], 1)
        x, (height, width) = pad_to_multiple(x, 4)
        x = F.relu(self.head(sub_block_unshuffle(x)))
        for group in self.groups:
            x = x + group(x)
        return sub_block_shuffle(self.tail(x))[..., :height, :width]


class STBN(VideoDenoiser):
    """Bidirectional recurrent blind-spot video denoiser with a Gaussian posterior."""

    def __init__(
        self, config: STBNConfig = STBNConfig(), flow: FlowEstimator | None = None
    ) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        # DIS on CPUs, PyramidFlow on accelerators (estimators.py); warm-up frames reuse flows
        self.flow: FlowEstimator = flow or PairCache(chosen_flow(DISFlow()))
        self.forward_branch = BlindBranch(c, config.blocks)
        self.backward_branch = BlindBranch(c, config.blocks)
        self.fusion = DilatedStack(2 * c, 2 * c, c, config.blocks)
        self.srfe = SRFE(c, config.srfe_groups, config.srfe_blocks)
        outputs = 6 + config.taps if config.kernel else 9  # (mean or kernel) + covariance factor
        self.head = DilatedStack(c, c, outputs, config.head_blocks)
        self.carry = Carry(c) if config.carry else None
        self.propagate = True  # False: each frame alone (the temporal path's ablation)
        self.check_flows = True  # no propagation where the flow fails its consistency check
        self.calibrate = True  # the prior's width measured on the input (`calibrated`)
        self.fall_back = True  # the blind mean blended with a spatial one where that is better
        self.frames_before = self.frames_after = config.warmup
        self.frames_per_call = config.chunk
        self.spatial_margin = 64
        # Forward states of the whole clip are kept (4C bytes a pixel a frame), plus one frame's
        # working set (about 100C bytes a pixel) spread over the clip.
        per_frame = 100.0 * c + (16.0 * config.taps if config.kernel else 0.0)  # + candidates
        self.bytes_per_pixel = 4.0 * c + per_frame / (2 * config.warmup + config.chunk)

    def _propagate(
        self,
        branch: BlindBranch,
        frames: torch.Tensor,
        level: torch.Tensor,
        order: range,
        flows: list[torch.Tensor | None],
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """One direction's recurrence: (t, hidden state) for t in `order`.

        `flows[t]` aligns the previous step's state to frame t (target t, source t -/+ 1).
        """
        passed: torch.Tensor | None = None  # what the previous step passes on
        for t in order:
            y = frames[:, t]
            if passed is None:  # first frame of the direction: nothing to fuse yet
                zeros = y.new_zeros(y.shape[0], self.config.channels, *y.shape[-2:])
                hidden = branch(y, zeros, level)
            elif not self.propagate:  # the same layers, nothing from other frames
                hidden = self.fusion(torch.cat([branch(y, zeros, level), zeros], 1))
            else:
                flow = flows[t]
                assert flow is not None
                aligned = warp_nearest(passed, flow)
                hidden = self.fusion(torch.cat([branch(y, aligned, level), aligned], 1))
            yield t, hidden
            passed = self.carry(hidden, y) if self.carry is not None else hidden

    def estimate_flows(self, clip: torch.Tensor, warmup: int | None = None) -> Flows:
        """The flows the recurrences use: forward[t] = t -> t-1 (t < last), backward[t] =
        t -> t+1 (t >= first); the others stay None."""
        b, t, _, h, w = clip.shape
        first, last = self._span(t, warmup)
        forward: list[torch.Tensor | None] = [None] * t
        backward: list[torch.Tensor | None] = [None] * t
        if last > 1:
            flow = self.flow(clip[:, 1:last].flatten(0, 1), clip[:, : last - 1].flatten(0, 1))
            forward[1:last] = flow.view(b, last - 1, 2, h, w).unbind(1)
        if t - 1 > first:
            flow = self.flow(clip[:, first:-1].flatten(0, 1), clip[:, first + 1 :].flatten(0, 1))
            backward[first : t - 1] = flow.view(b, t - 1 - first, 2, h, w).unbind(1)
        return forward, backward

    def _span(self, frames: int, warmup: int | None) -> tuple[int, int]:
        """[first, last) of the frames predicted from a clip of `frames` frames."""
        warmup = self.config.warmup if warmup is None else warmup
        return warmup, frames - warmup

    def prior(
        self,
        clip: torch.Tensor,
        sigma: torch.Tensor,
        flows: Flows | None = None,
        warmup: int | None = None,
        fall_back: bool = False,
    ) -> torch.Tensor:
        """The blind prediction [B, n, 9, H, W] (mean, covariance factor) of the centre frames.

        `flows` can be given to hold them fixed (training, blind-spot tests); by default they
        are estimated from the noisy clip. `warmup` frames at each end only feed the recurrence
        (default: the config's; training predicts every frame with 0). With `fall_back`
        (inference), the mean is blended (`fallback.blend`) with one from the frame alone: the
        kernel over its ring only, or the plain ring mean without a kernel head.
        """
        b, t, _, h, w = clip.shape
        first, last = self._span(t, warmup)
        level = sigma.view(b, 1, 1, 1).expand(b, 3, h, w).to(clip.dtype)
        if flows is None:
            flows = self.estimate_flows(clip, warmup)
        if self.check_flows:
            flows = checked_flows(flows)
        forward_flows, backward_flows = flows
        reach = self.config.reach
        forward = self._propagate(self.forward_branch, clip, level, range(last), forward_flows)
        forward_states = {index: state for index, state in forward if index >= first}
        outputs: dict[int, torch.Tensor] = {}
        backward = self._propagate(
            self.backward_branch, clip, level, range(t - 1, first - 1, -1), backward_flows
        )
        for index, state in backward:  # outputs as soon as both directions reach a frame
            if index < last:
                out = self.head(self.srfe(forward_states.pop(index), state))
                spatial = None
                if self.config.kernel:  # kernel logits after the factor: mean, factor
                    mean, spatial = kernel_means(
                        out[:, 6:], clip, index, flows, self.propagate, reach, fall_back
                    )
                    out = torch.cat([mean, out[:, :6]], 1)
                if fall_back:
                    y = clip[:, index]
                    spatial = ring_mean(y) if spatial is None else spatial
                    mean, _ = blend(
                        out[:, :3], spatial, y, level[:, :1], FALLBACK_WINDOW, correlated=True
                    )
                    out = torch.cat([mean, out[:, 3:]], 1)
                outputs[index] = out
        return torch.stack([outputs[i] for i in range(first, last)], 1)

    def stages(
        self, clip: torch.Tensor, sigma: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The blind mean, the posterior mean and the output (the posterior) of the centre
        frames, each [B, n, 3, H, W]."""
        prediction = self.prior(clip, sigma, fall_back=self.fall_back)
        centre = clip[:, self.frames_before : clip.shape[1] - self.frames_after]
        with torch.autocast(clip.device.type, enabled=False):
            mean, factor = prediction[:, :, :3], prediction[:, :, 3:]
            if self.calibrate:
                factor = calibrated(mean, factor, centre, sigma, WIDEST, CALIBRATION_WINDOW)
            out = posterior_mean(mean, factor, centre, sigma.view(-1, 1, 1, 1, 1))
        return prediction[:, :, :3], out, out

    def forward(self, clip: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self.stages(clip, sigma)[2]
