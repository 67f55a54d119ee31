"""The noise of a clip, measured against F2R's anchor.

Stage 1 never sees the centre frame, so the residual `y - anchor` is the noise minus the
anchor's error, two independent terms; where the anchor is flat its error is small, its
variance is what the anchor's own Gaussian predicts, and what that misses (motion the anchor
could not follow) is smooth over a few pixels. From those residuals we fit a separable
model of the noise, Cov(n_c(x), n_d(x + o)) = K_cd rho(o): a colour covariance K (offset 0)
and a spatial correlation rho over offsets up to RADIUS, shared by the channels.

`fit` uses it three ways: the level its models are conditioned on (for correlated noise the
marginal std, which a patch-based estimate reads far too low; for signal-dependent noise the
frame's average, not the surest pixels'), the choice of F2R's stage-2 loss
(SURE when the noise is white, recorrupted pairs otherwise), and the recorruptions themselves,
drawn with this covariance (Pang et al. 2021 need the recorruption to match the noise's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from vdenoise.models.f2r import F2R
from vdenoise.models.gaussian import covariance
from vdenoise.noise import brightness_bins, relative_variance_at
from vdenoise.training.local_view import local_std

RADIUS = 3  # offsets measured: a (2R+1)^2 correlation window
# The surest share of all pixels (least texture in the anchor, least predicted error) the
# noise's spatial and colour correlation is read on: where the anchor misses fast motion its
# error is smooth and reads as correlated noise (benchmarks/noise_profile.py, before the
# smooth error was taken out: Gaussian noise on davis-bmx-trees read a neighbour correlation
# of 0.35 on 30% of the pixels, 0.04 on 3%).
SHAPE_SHARE = 0.03
LEVEL_SHARE = 0.3  # the surest share of each brightness bin's pixels the level is read on
WHITE_CORRELATION = 0.2  # mean rho of the 4 nearest neighbours below which noise is white
WHITE_COLOUR = 0.3  # largest |correlation| between two channels for white noise
MEASURE_SIZE = 384  # central crop the anchor is run on (pixels a side)
MEASURE_FRAMES = 5  # centre frames measured
BRIGHTNESS_BINS = 8  # signal-dependent noise: the level is averaged over this many bins
MIN_BIN_PIXELS = 64  # pixels a bin's surest share needs to be read


@dataclass
class NoiseProfile:
    colour: torch.Tensor  # [3, 3] covariance at offset 0, [0, 1] scale: the frame's average
    correlation: torch.Tensor  # [2R+1, 2R+1] spatial correlation, 1 at the centre
    # [BRIGHTNESS_BINS] the variance in each brightness bin relative to the average (signal-
    # dependent noise, e.g. shot noise); None: the same everywhere
    relative_variance: torch.Tensor | None = None

    @property
    def level(self) -> float:
        """The marginal std on the 0-255 scale (mean over the channels' variances)."""
        return 255.0 * math.sqrt(max(float(self.colour.diagonal().mean()), 0.0))

    @property
    def neighbour_correlation(self) -> float:
        r = RADIUS
        rho = self.correlation
        return float((rho[r, r - 1] + rho[r, r + 1] + rho[r - 1, r] + rho[r + 1, r]) / 4)

    @property
    def channel_correlation(self) -> float:
        """The largest |correlation coefficient| between two channels."""
        std = self.colour.diagonal().clamp_min(1e-12).sqrt()
        coefficient = self.colour / (std[:, None] * std[None, :])
        return float((coefficient - torch.eye(3)).abs().max())

    @property
    def white(self) -> bool:
        """Independent from pixel to pixel and channel to channel (what SURE assumes)."""
        return (
            self.neighbour_correlation < WHITE_CORRELATION
            and self.channel_correlation < WHITE_COLOUR
        )

    def describe(self) -> str:
        kind = "white" if self.white else "correlated"
        text = (
            f"level {self.level:.1f} (0-255), {kind} (neighbour correlation "
            f"{self.neighbour_correlation:.2f}, between channels {self.channel_correlation:.2f})"
        )
        if self.relative_variance is not None:
            low, high = (float(v) for v in self.relative_variance.aminmax())
            text += f", variance x{low:.2f} to x{high:.2f} of its average across brightness"
        return text

    def variance_map(self, brightness: torch.Tensor) -> torch.Tensor:
        """The noise variance at each pixel relative to the average, for a brightness map in
        [0, 1] (any shape)."""
        if self.relative_variance is None:
            return torch.ones_like(brightness)
        return relative_variance_at(self.relative_variance, brightness)

    def kernel(self) -> torch.Tensor:
        """A filter h with h * h~ = rho (zero phase, from the square root of rho's spectrum),
        unit energy: white noise filtered by it has the measured spatial correlation."""
        size, r = 8 * RADIUS + 8, RADIUS
        grid = torch.zeros(size, size, dtype=torch.float64)
        grid[: 2 * r + 1, : 2 * r + 1] = self.correlation.double()
        grid = grid.roll((-r, -r), (0, 1))  # offset 0 at index 0
        amplitude = torch.fft.fft2(grid).real.clamp_min(0).sqrt()
        h = torch.fft.ifft2(amplitude).real.roll((r, r), (0, 1))[: 2 * r + 1, : 2 * r + 1]
        return (h / h.norm()).float()

    def sample(self, like: torch.Tensor, brightness: torch.Tensor | None = None) -> torch.Tensor:
        """Noise of this covariance, shaped like `like` [N, 3, H, W] and on its device; given
        the clean frames' brightness [N, 1, H, W], scaled to the variance there."""
        n, c, h, w = like.shape
        r = RADIUS
        white = torch.randn(n, c, h + 2 * r, w + 2 * r, device=like.device)
        kernel = self.kernel().to(white.device).expand(c, 1, -1, -1)
        shaped = F.conv2d(white, kernel, groups=c)
        eigenvalues, vectors = torch.linalg.eigh(self.colour.double())
        mix = (vectors * eigenvalues.clamp_min(0).sqrt()) @ vectors.T  # symmetric square root
        noise = torch.einsum("cd,ndhw->nchw", mix.float().to(white.device), shaped)
        if brightness is not None:
            noise = noise * self.variance_map(brightness).sqrt()
        return noise

    def as_dict(self) -> dict[str, Any]:
        relative = self.relative_variance
        return {
            "colour": self.colour.tolist(),
            "correlation": self.correlation.tolist(),
            "relative_variance": None if relative is None else relative.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NoiseProfile:
        relative = data.get("relative_variance")
        return cls(
            torch.tensor(data["colour"]),
            torch.tensor(data["correlation"]),
            None if relative is None else torch.tensor(relative),
        )


def residual_profile(residual: torch.Tensor, sure: torch.Tensor) -> NoiseProfile:
    """The profile of residuals [N, 3, H, W] read where `sure` [N, 1, H, W] is true (away
    from the border).

    Where the anchor misses motion its error is smooth: it adds nearly the same covariance at
    every offset of the window, and would read as correlated noise. The noise's correlation is
    taken to end within RADIUS pixels, so the covariance the residuals keep on the ring just
    beyond (offsets RADIUS + 1 away) is that smooth error's, and is taken out of every offset
    (`benchmarks/noise_profile.py`: Poisson-Gaussian noise, white, on davis-bmx-trees reads
    a neighbour correlation of 0.24 without this, 0.09 with it)."""
    r, far = RADIUS, RADIUS + 1
    residual = residual.double()
    mask = sure.clone()
    mask[..., :far, :] = mask[..., -far:, :] = False
    mask[..., :far] = mask[..., -far:] = False
    values = residual * mask.double()
    count = mask.sum().clamp_min(1)

    def cross(dy: int, dx: int) -> torch.Tensor:  # [3, 3] covariance at offset (dy, dx)
        return torch.einsum("nchw,ndhw->cd", values, residual.roll((-dy, -dx), (2, 3))) / count

    ring = [(dy, dx) for dy in range(-far, far + 1) for dx in range(-far, far + 1)]
    ring = [(dy, dx) for dy, dx in ring if max(abs(dy), abs(dx)) == far]
    smooth = sum(cross(dy, dx) for dy, dx in ring) / len(ring)
    smooth = (smooth + smooth.T) / 2
    total = cross(0, 0)
    # keep it a covariance: eigenvalues at least 10% of the residual's
    eigenvalues, vectors = torch.linalg.eigh(total - smooth)
    least = 0.1 * torch.linalg.eigvalsh(total).clamp_min(0)
    colour = (vectors * torch.maximum(eigenvalues, least)) @ vectors.T
    spatial = torch.zeros(2 * r + 1, 2 * r + 1, dtype=torch.float64)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            shifted = residual.roll((-dy, -dx), (2, 3))
            spatial[dy + r, dx + r] = (values * shifted).sum() / count - smooth.trace()
    spatial = (spatial + spatial.flip(0, 1)) / 2
    rho = spatial / colour.trace()
    rho[r, r] = 1.0
    return NoiseProfile(colour.float(), rho.float())


def brightness_profile(
    residual: torch.Tensor,
    score: torch.Tensor,
    brightness: torch.Tensor,
    error: torch.Tensor,
    share: float = LEVEL_SHARE,
) -> tuple[float | None, torch.Tensor | None]:
    """Signal-dependent noise: (the frame's average noise variance, the variance per
    brightness bin relative to that average).

    Camera noise grows with brightness (shot noise), and the surest pixels of a frame are
    seldom spread over its brightness range (often they are the dark ones), so the variance is
    read on the surest `share` of each brightness bin's pixels (lowest `score`), less the
    anchor's predicted error; the average weighs each bin by its share of all pixels, and a bin
    with too few pixels takes its nearest read neighbour's. Inputs [N, 3 or 1, H, W]: residual,
    score, brightness in [0, 1], error variance. (None, None) when nothing can be read."""
    power = (residual.double().pow(2).mean(1, keepdim=True) - error.double()).clamp_min(0)
    bins = brightness_bins(brightness, BRIGHTNESS_BINS)
    read, shares = {}, []
    for b in range(BRIGHTNESS_BINS):
        in_bin = bins == b
        shares.append(float(in_bin.double().mean()))
        if int(in_bin.sum()) * share >= MIN_BIN_PIXELS:
            read[b] = float(power[in_bin][surest(score[in_bin], share)].mean())
    if not read:
        return None, None
    per_bin = [read[min(read, key=lambda r: abs(r - b))] for b in range(BRIGHTNESS_BINS)]
    average = sum(s * v for s, v in zip(shares, per_bin, strict=True))
    if average <= 0.0:
        return None, None
    return average, torch.tensor(per_bin, dtype=torch.float32) / average


def surest(score: torch.Tensor, share: float) -> torch.Tensor:
    """The `share` of `score`'s entries (any shape) that are lowest."""
    sample = score.flatten()[:: max(1, score.numel() // 1_000_000)]
    return score <= torch.quantile(sample.float(), share)


def uncertainty(anchor: torch.Tensor, error: torch.Tensor | None = None) -> torch.Tensor:
    """How little the residual against the anchor [N, 3, H, W] tells of the noise, per pixel
    [N, 1, H, W]: the anchor's local variance (texture it may have missed) plus, given, its
    predicted error variance."""
    score = local_std(anchor.float()) ** 2
    return score if error is None else score + error


def measured_clip(frames: torch.Tensor, neighbours: int) -> torch.Tensor:
    """The part of frames [N, 3, H, W] `measure` runs the anchor on: a central crop of the
    first MEASURE_FRAMES centre frames and their neighbours."""
    h, w = frames.shape[-2:]
    top, left = max(0, (h - MEASURE_SIZE) // 2), max(0, (w - MEASURE_SIZE) // 2)
    end = MEASURE_FRAMES + 2 * neighbours
    return frames[:end, :, top : top + MEASURE_SIZE, left : left + MEASURE_SIZE]


@torch.no_grad()
def measure(
    model: F2R,
    frames: torch.Tensor,
    level: float,
    shape_share: float = SHAPE_SHARE,
    level_share: float = LEVEL_SHARE,
) -> NoiseProfile:
    """The noise of frames [N, 3, H, W] (uint8, or float in [0, 1]; N >= 2k+1), read against
    the anchor that `model` computes when told the noise level `level` (0-255): its spatial
    and colour correlation on the surest `shape_share` of all pixels, its level and how that
    grows with brightness on the surest `level_share` of each brightness bin's pixels."""
    k = model.config.neighbours
    clip = measured_clip(frames, k)
    parameter = next(model.parameters())
    scale = 255.0 if clip.dtype == torch.uint8 else 1.0
    clip = clip.to(parameter.device, torch.float32) / scale
    sigma = torch.tensor([level / 255.0], device=clip.device)
    model.eval()
    stage1 = model.anchor(clip[None], sigma)[0].float()
    anchor, centre = stage1[:, :3], clip[k : clip.shape[0] - k]
    pixel_error = torch.zeros_like(anchor[:, :1])
    if model.config.uncertainty:  # the mean of the diagonal of its predicted error covariance
        pixel_error = covariance(stage1[:, 3:])[:, [0, 3, 5]].mean(1, keepdim=True)
    score = uncertainty(anchor, pixel_error).cpu()
    residual = (centre - anchor).cpu()
    profile = residual_profile(residual, surest(score, shape_share))
    brightness = anchor.mean(1, keepdim=True).cpu()
    average, relative = brightness_profile(
        residual, score, brightness, pixel_error.cpu(), level_share
    )
    colour = profile.colour
    if average is not None:
        colour = colour * (average / float(colour.diagonal().mean().clamp_min(1e-12)))
    return NoiseProfile(colour, profile.correlation, relative)


def measure_clip(model: F2R, frames: torch.Tensor, hint: float, **shares: float) -> NoiseProfile:
    """`measure`, then again with the anchor told the level the first pass found (a low hint
    makes the anchor trust its neighbours too much, and the level is read high)."""
    first = measure(model, frames, hint, **shares)
    return measure(model, frames, first.level, **shares)
