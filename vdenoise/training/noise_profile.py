"""The noise of a clip, measured against F2R's anchor.

Stage 1 never sees the centre frame, so the residual `y - anchor` is the noise minus the
anchor's error, two independent terms; where the anchor is flat its error is small, and its
variance is what the anchor's own Gaussian predicts. From those residuals we fit a separable
model of the noise, Cov(n_c(x), n_d(x + o)) = K_cd rho(o): a colour covariance K (offset 0)
and a spatial correlation rho over offsets up to RADIUS, shared by the channels.

`fit` uses it three ways: the level its models are conditioned on (for correlated noise the
marginal std, which a patch-based estimate reads far too low; for signal-dependent noise the
frame's average, not the flat pixels'), the choice of F2R's stage-2 loss
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
FLAT_SHARE = 0.3  # the flattest share of the anchor's pixels the residuals are read from
WHITE_CORRELATION = 0.2  # mean rho of the 4 nearest neighbours below which noise is white
WHITE_COLOUR = 0.3  # largest |correlation| between two channels for white noise
MEASURE_SIZE = 384  # central crop the anchor is run on (pixels a side)
MEASURE_FRAMES = 5  # centre frames measured
BRIGHTNESS_BINS = 8  # signal-dependent noise: the level is averaged over this many bins
MIN_BIN_PIXELS = 64  # flat pixels a bin needs to be read


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


def residual_profile(
    residual: torch.Tensor, flat: torch.Tensor, error_covariance: torch.Tensor | None = None
) -> NoiseProfile:
    """The profile of residuals [N, 3, H, W] read where `flat` [N, 1, H, W] is true (away
    from the border), less the anchor's predicted error covariance [3, 3] there."""
    r = RADIUS
    residual = residual.double()
    mask = flat.clone()
    mask[..., :r, :] = mask[..., -r:, :] = False
    mask[..., :r] = mask[..., -r:] = False
    weight = mask.double()
    count = weight.sum().clamp_min(1)
    values = residual * weight
    colour = torch.einsum("nchw,ndhw->cd", values, residual) / count
    if error_covariance is not None:  # keep it a covariance: eigenvalues at least 10% of before
        values_, vectors = torch.linalg.eigh(colour - error_covariance.double())
        floor = 0.1 * torch.linalg.eigvalsh(colour).clamp_min(0)
        colour = (vectors * torch.maximum(values_, floor)) @ vectors.T
    spatial = torch.zeros(2 * r + 1, 2 * r + 1, dtype=torch.float64)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            shifted = residual.roll((-dy, -dx), (2, 3))
            spatial[dy + r, dx + r] = (values * shifted).sum() / count
    spatial = (spatial + spatial.flip(0, 1)) / 2
    rho = spatial / spatial[r, r]
    return NoiseProfile(colour.float(), rho.float())


def brightness_profile(
    residual: torch.Tensor, flat: torch.Tensor, brightness: torch.Tensor, error: torch.Tensor
) -> tuple[float, torch.Tensor | None]:
    """Signal-dependent noise: (the frame's average noise variance over its flat pixels', the
    variance per brightness bin relative to that average).

    Camera noise grows with brightness (shot noise), and the flattest, surest pixels are seldom
    spread over the brightness range like the frame's pixels are (often they are the dark
    ones), so their variance alone misreads the frame's. Here it is read on the flat pixels of
    each brightness bin (less the anchor's predicted error); the average weighs each bin by its
    share of all pixels, and a bin with too few flat pixels takes its nearest read neighbour's.
    Inputs [N, 3 or 1, H, W]: residual, flat mask, brightness in [0, 1], error variance.
    (1.0, None) when nothing can be read."""
    power = (residual.double().pow(2).mean(1, keepdim=True) - error.double()).clamp_min(0)
    bins = brightness_bins(brightness, BRIGHTNESS_BINS)
    read, shares = {}, {}
    for b in range(BRIGHTNESS_BINS):
        in_bin = bins == b
        shares[b] = float(in_bin.double().mean())
        if int((in_bin & flat).sum()) >= MIN_BIN_PIXELS:
            read[b] = float(power[in_bin & flat].mean())
    flat_power = float(power[flat].mean()) if bool(flat.any()) else 0.0
    if not read or flat_power <= 0.0:
        return 1.0, None
    per_bin = [read[min(read, key=lambda r: abs(r - b))] for b in range(BRIGHTNESS_BINS)]
    average = sum(shares[b] * per_bin[b] for b in range(BRIGHTNESS_BINS)) / sum(shares.values())
    if average <= 0.0:
        return 1.0, None
    relative = torch.tensor(per_bin, dtype=torch.float32) / average
    return average / flat_power, relative


def flattest(
    anchor: torch.Tensor, error: torch.Tensor | None = None, share: float = FLAT_SHARE
) -> torch.Tensor:
    """The `share` of pixels [N, 1, H, W] where the anchor [N, 3, H, W] varies least and,
    given its predicted error variance [N, 1, H, W], is surest."""
    score = local_std(anchor.float()) ** 2
    if error is not None:
        score = score + error
    return score <= torch.quantile(score.flatten()[:: max(1, score.numel() // 1_000_000)], share)


@torch.no_grad()
def measure(
    model: F2R, frames: torch.Tensor, level: float, share: float = FLAT_SHARE
) -> NoiseProfile:
    """The noise of frames [N, 3, H, W] (uint8, or float in [0, 1]; N >= 2k+1), read against
    the anchor that `model` computes when told the noise level `level` (0-255), on the
    `share` of its pixels that are flattest and surest."""
    k = model.config.neighbours
    h, w = frames.shape[-2:]
    top, left = max(0, (h - MEASURE_SIZE) // 2), max(0, (w - MEASURE_SIZE) // 2)
    clip = frames[: MEASURE_FRAMES + 2 * k, :, top : top + MEASURE_SIZE, left : left + MEASURE_SIZE]
    parameter = next(model.parameters())
    scale = 255.0 if clip.dtype == torch.uint8 else 1.0
    clip = clip.to(parameter.device, torch.float32) / scale
    sigma = torch.tensor([level / 255.0], device=clip.device)
    model.eval()
    stage1 = model.anchor(clip[None], sigma)[0].float()
    anchor, centre = stage1[:, :3], clip[k : clip.shape[0] - k]
    error = None
    pixel_error = torch.zeros_like(anchor[:, :1])
    if model.config.uncertainty:
        entries = covariance(stage1[:, 3:])  # xx, xy, xz, yy, yz, zz
        pixel_error = entries[:, [0, 3, 5]].mean(1, keepdim=True)
        flat = flattest(anchor, pixel_error, share)
        mean = (entries * flat).flatten(2).sum(2).sum(0) / flat.sum().clamp_min(1)
        index = torch.tensor([[0, 1, 2], [1, 3, 4], [2, 4, 5]])
        error = mean.cpu()[index]
    else:
        flat = flattest(anchor, share=share)
    residual = (centre - anchor).cpu()
    profile = residual_profile(residual, flat.cpu(), error)
    brightness = anchor.mean(1, keepdim=True).cpu()
    scale, relative = brightness_profile(residual, flat.cpu(), brightness, pixel_error.cpu())
    return NoiseProfile(profile.colour * scale, profile.correlation, relative)


def measure_clip(
    model: F2R, frames: torch.Tensor, hint: float, share: float = FLAT_SHARE
) -> NoiseProfile:
    """`measure`, then again with the anchor told the level the first pass found (a low hint
    makes the anchor trust its neighbours too much, and the level is read high)."""
    first = measure(model, frames, hint, share)
    return measure(model, frames, first.level, share)
