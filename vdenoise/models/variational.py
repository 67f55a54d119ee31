"""Variational refinement of an optical flow field, in torch, batched: the last step of DIS.

DIS (Kroeger et al., ECCV 2016, section 3.2) ends each scale by minimising, from its flow, the
energy of Brox et al. (ECCV 2004): brightness constancy (weight delta) and gradient constancy
(gamma) under a robust penalty, normalised by the image gradient, plus the flow's smoothness
(alpha, the same penalty), linearised at the flow the source was warped along. Fixed-point
iterations re-weight the penalties; each solves its linear system by red-black successive
over-relaxation (SOR). The constants (zeta 0.1, epsilon 0.001, omega 1.6, 5 SOR iterations,
delta 5, gamma 10) and the discretisation (derivatives by [-1, 0, 1] with the border repeated,
one smoothness weight per pixel on its edges to the right and down) are OpenCV's
(`cv::VariationalRefinement`, read for them); tests/models/test_variational.py checks the
result against OpenCV's on a real pair of frames.

Here the red and black pixels are masks over whole maps, so one batch of pairs is one sequence
of elementwise kernels: what a GPU wants, where OpenCV's runs on the CPU a pair at a time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vdenoise.models.flow import warp_bilinear

ZETA_SQUARED = 0.01  # normalises the data terms by the squared image gradient plus this
EPSILON_SQUARED = 1e-6  # the robust penalty: sqrt(s^2 + epsilon^2)
OMEGA = 1.6  # SOR's relaxation factor
SOR_ITERATIONS = 5


def refine_flow(
    target: torch.Tensor,
    source: torch.Tensor,
    flow: torch.Tensor,
    iterations: int = 5,
    alpha: float = 20.0,
    delta: float = 5.0,
    gamma: float = 10.0,
) -> torch.Tensor:
    """The flow [N, 2, H, W] (target(p) ~ source(p + flow(p))) refined by `iterations`
    fixed-point iterations; target, source: luma [N, 1, H, W] on 0..255, the scale the
    constants assume. float32 throughout."""
    warped = warp_bilinear(source, flow)[0]
    mean, iz = 0.5 * (target + warped), warped - target
    ix, iy = _dx(mean), _dy(mean)
    ixz, iyz = _dx(iz), _dy(iz)
    ixx, ixy, iyy = _dx(ix), _dy(ix), _dy(iy)
    norm = ix * ix + iy * iy + ZETA_SQUARED
    norm_x = ixx * ixx + ixy * ixy + ZETA_SQUARED
    norm_y = iyy * iyy + ixy * ixy + ZETA_SQUARED
    g11 = ixx * ixx / norm_x + ixy * ixy / norm_y
    g12 = ixx * ixy / norm_x + ixy * iyy / norm_y
    g22 = ixy * ixy / norm_x + iyy * iyy / norm_y
    gb1 = ixx * ixz / norm_x + ixy * iyz / norm_y
    gb2 = ixy * ixz / norm_x + iyy * iyz / norm_y
    u, v = flow[:, :1], flow[:, 1:]
    du, dv = torch.zeros_like(u), torch.zeros_like(v)
    height, width = flow.shape[-2:]
    rows = torch.arange(height, device=flow.device).view(-1, 1)
    cols = torch.arange(width, device=flow.device).view(1, -1)
    red = ((rows + cols) % 2 == 0).to(flow.dtype)
    masks = (red, 1 - red)
    has_right, has_below = (cols < width - 1).to(flow.dtype), (rows < height - 1).to(flow.dtype)
    for _ in range(iterations):
        # the data terms, their robust weights at the current increment
        change = iz + ix * du + iy * dv
        data = 0.5 * delta / torch.sqrt(change * change / norm + EPSILON_SQUARED) / norm
        change_x = ixz + ixx * du + ixy * dv
        change_y = iyz + ixy * du + iyy * dv
        squared = change_x * change_x / norm_x + change_y * change_y / norm_y
        gradient = 0.5 * gamma / torch.sqrt(squared + EPSILON_SQUARED)
        a11 = data * ix * ix + gradient * g11 + ZETA_SQUARED
        a12 = data * ix * iy + gradient * g12
        a22 = data * iy * iy + gradient * g22 + ZETA_SQUARED
        b1 = -data * iz * ix - gradient * gb1
        b2 = -data * iz * iy - gradient * gb2
        # smoothness: each pixel's weight, from the current flow's forward differences, on its
        # edges to the right and down (none past the frame)
        cu, cv = u + du, v + dv
        ux, vx = (_right(cu) - cu) * has_right, (_right(cv) - cv) * has_right
        uy, vy = (_below(cu) - cu) * has_below, (_below(cv) - cv) * has_below
        weight = 0.5 * alpha / torch.sqrt(ux * ux + vx * vx + uy * uy + vy * vy + EPSILON_SQUARED)
        across, down = weight * has_right, weight * has_below
        from_left, from_above = _left(across), _above(down)
        total = across + from_left + down + from_above
        a11, a22 = a11 + total, a22 + total
        for b, w in ((b1, u), (b2, v)):
            edges_x, edges_y = across * (_right(w) - w), down * (_below(w) - w)
            b += edges_x - _left(edges_x) + edges_y - _above(edges_y)
        # red-black SOR: x <- (1 - omega) x + omega (pull + b - a12 y) / a, the red pixels, then
        # the black; each step's coefficients made once
        steps = [(1 - OMEGA * m, OMEGA * m / a11, OMEGA * m / a22) for m in masks]
        weights = (from_left, across, from_above, down)
        for _ in range(SOR_ITERATIONS):
            for keep, step_u, step_v in steps:
                du = _relax(du, keep, step_u, _pulled(du, weights).add_(b1).sub_(a12 * dv))
                dv = _relax(dv, keep, step_v, _pulled(dv, weights).add_(b2).sub_(a12 * du))
    return torch.cat([u + du, v + dv], 1)


def _pulled(x: torch.Tensor, weights: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The weighted sum of each pixel's 4 neighbours in x (from the left, right, above and
    below; zero past the frame): one padded copy, read through views."""
    padded = F.pad(x, (1, 1, 1, 1))
    left, right, above, below = weights
    out = left * padded[..., 1:-1, :-2]
    out.addcmul_(right, padded[..., 1:-1, 2:]).addcmul_(above, padded[..., :-2, 1:-1])
    return out.addcmul_(below, padded[..., 2:, 1:-1])


def _relax(
    x: torch.Tensor, keep: torch.Tensor, step: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """keep x + step target (one new tensor)."""
    return (x * keep).addcmul_(step, target)


def _dx(x: torch.Tensor) -> torch.Tensor:
    """x(p + 1) - x(p - 1) along the rows, the border repeated."""
    padded = F.pad(x, (1, 1, 0, 0), mode="replicate")
    return padded[..., 2:] - padded[..., :-2]


def _dy(x: torch.Tensor) -> torch.Tensor:
    """The same down the columns."""
    padded = F.pad(x, (0, 0, 1, 1), mode="replicate")
    return padded[..., 2:, :] - padded[..., :-2, :]


def _right(x: torch.Tensor) -> torch.Tensor:
    """Each pixel's right neighbour's value, zero past the frame."""
    return F.pad(x[..., 1:], (0, 1))


def _left(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x[..., :-1], (1, 0))


def _below(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x[..., 1:, :], (0, 0, 0, 1))


def _above(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x[..., :-1, :], (0, 0, 1, 0))
