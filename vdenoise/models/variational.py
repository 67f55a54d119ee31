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

Here a batch of pairs is one sequence of elementwise kernels (what a GPU wants, where OpenCV's
runs on the CPU a pair at a time), written for the bytes they move: the SOR runs on the 2x2
polyphase components of each map (the red pixels are two of them, the black the other two), so
a half-step touches only the pixels it updates, with its coefficients premultiplied once per
fixed-point iteration; products and reciprocals that do not change are made once. Per pair at
960x540, PyramidFlow with it moves 6.8 GB, with masks over whole maps (0.14.0) it moved 10.3
(`benchmarks/flow_speed.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

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
    fixed = _linearised(target, source, flow, delta)
    increment = torch.zeros_like(flow)
    for _ in range(iterations):
        steps = _steps(*_system(fixed, increment, alpha, gamma))
        increment = _red_black_sor(increment, steps)
    return flow + increment


@dataclass
class Linearised:
    """What stays fixed over the fixed-point iterations: the image derivatives at the flow
    the source was warped along, the data terms' normalisations and products, and the flow's
    own forward differences."""

    iz: torch.Tensor
    ix: torch.Tensor
    iy: torch.Tensor
    ixz: torch.Tensor
    iyz: torch.Tensor
    ixx: torch.Tensor
    ixy: torch.Tensor
    iyy: torch.Tensor
    inverse: torch.Tensor  # 1 / (|grad I|^2 + zeta^2)
    inverse_x: torch.Tensor  # the same for the gradient of I_x
    inverse_y: torch.Tensor
    half_delta: torch.Tensor  # delta / 2 x inverse
    products: torch.Tensor  # [N, 5, H, W]: what brightness adds to a11, a12, a22, b1, b2
    gradients: torch.Tensor  # [N, 5, H, W]: the same for gradient constancy
    flow_x: torch.Tensor  # [N, 2, H, W], zero in the last column
    flow_y: torch.Tensor  # zero in the last row
    has_right: torch.Tensor  # [1, W]: 1 where a pixel has a neighbour to its right
    has_below: torch.Tensor  # [H, 1]


def _linearised(
    target: torch.Tensor, source: torch.Tensor, flow: torch.Tensor, delta: float
) -> Linearised:
    warped = warp_bilinear(source, flow)[0]
    mean, iz = 0.5 * (target + warped), warped - target
    ix, iy = _dx(mean), _dy(mean)
    ixz, iyz = _dx(iz), _dy(iz)
    ixx, ixy, iyy = _dx(ix), _dy(ix), _dy(iy)
    inverse = 1 / (ix * ix + iy * iy + ZETA_SQUARED)
    inverse_x = 1 / (ixx * ixx + ixy * ixy + ZETA_SQUARED)
    inverse_y = 1 / (iyy * iyy + ixy * ixy + ZETA_SQUARED)
    products = torch.cat([ix * ix, ix * iy, iy * iy, -iz * ix, -iz * iy], 1)
    gradients = torch.cat(
        [
            (ixx * ixx).mul_(inverse_x).addcmul_(ixy * ixy, inverse_y),
            (ixx * ixy).mul_(inverse_x).addcmul_(ixy * iyy, inverse_y),
            (ixy * ixy).mul_(inverse_x).addcmul_(iyy * iyy, inverse_y),
            (ixx * ixz).mul_(inverse_x).addcmul_(ixy * iyz, inverse_y).neg_(),
            (ixy * ixz).mul_(inverse_x).addcmul_(iyy * iyz, inverse_y).neg_(),
        ],
        1,
    )
    height, width = flow.shape[-2:]
    rows = torch.arange(height, device=flow.device).view(-1, 1)
    cols = torch.arange(width, device=flow.device).view(1, -1)
    return Linearised(
        iz, ix, iy, ixz, iyz, ixx, ixy, iyy, inverse, inverse_x, inverse_y,
        inverse * (0.5 * delta), products, gradients, _forward_x(flow), _forward_y(flow),
        (cols < width - 1).to(flow.dtype), (rows < height - 1).to(flow.dtype),
    )  # fmt: skip


def _system(
    fixed: Linearised, increment: torch.Tensor, alpha: float, gamma: float
) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
    """The linear system of one fixed-point iteration, its robust weights at `increment`:
    ((a11, a22), a12, b [N, 2, H, W], the smoothness weights to the left, right, above and
    below). Only these outlive the call."""
    f = fixed
    du, dv = increment[:, :1], increment[:, 1:]
    change = torch.addcmul(f.iz, f.ix, du).addcmul_(f.iy, dv)
    data = change.square_().mul_(f.inverse).add_(EPSILON_SQUARED).rsqrt_().mul_(f.half_delta)
    change_x = torch.addcmul(f.ixz, f.ixx, du).addcmul_(f.ixy, dv)
    change_y = torch.addcmul(f.iyz, f.ixy, du).addcmul_(f.iyy, dv)
    squared = change_x.square_().mul_(f.inverse_x).addcmul_(change_y.square_(), f.inverse_y)
    gradient = squared.add_(EPSILON_SQUARED).rsqrt_().mul_(0.5 * gamma)
    coefficients = (data * f.products).addcmul_(gradient, f.gradients)
    # smoothness: each pixel's weight, from the current flow's forward differences, on its
    # edges to the right and down (none past the frame)
    across_x = (f.flow_x + _forward_x(increment)).square_().sum(1, keepdim=True)
    down_y = (f.flow_y + _forward_y(increment)).square_().sum(1, keepdim=True)
    weight = across_x.add_(down_y).add_(EPSILON_SQUARED).rsqrt_().mul_(0.5 * alpha)
    across, down = weight * f.has_right, weight * f.has_below
    from_left, from_above = _left(across), _above(down)
    total = (across + from_left).add_(down).add_(from_above).add_(ZETA_SQUARED)
    edges_x, edges_y = across * f.flow_x, down * f.flow_y
    b = coefficients[:, 3:].add(edges_x).sub_(_left(edges_x)).add_(edges_y)
    b.sub_(_above(edges_y))
    diagonal = (coefficients[:, :1] + total, coefficients[:, 2:3] + total)
    return diagonal, coefficients[:, 1:2].clone(), b, (from_left, across, from_above, down)


# The 2x2 polyphase components of a map: 0 (even row, even column), 1 (even, odd), 2 (odd,
# even), 3 (odd, odd). 0 and 3 are the red pixels, 1 and 2 the black. For each, where its
# neighbours to the left, right, above and below lie: (component, row shift, column shift).
NEIGHBOURS = {
    0: ((1, 0, -1), (1, 0, 0), (2, -1, 0), (2, 0, 0)),
    3: ((2, 0, 0), (2, 0, 1), (1, 0, 0), (1, 1, 0)),
    1: ((0, 0, 0), (0, 0, 1), (3, -1, 0), (3, 0, 0)),
    2: ((3, 0, -1), (3, 0, 0), (0, 0, 0), (0, 1, 0)),
}
COLOURS = ((0, 3), (1, 2))  # red, then black


Steps = list[list[tuple[torch.Tensor, ...]]]


def _steps(
    diagonal: tuple[torch.Tensor, torch.Tensor],
    coupling: torch.Tensor,
    b: torch.Tensor,
    weights: tuple[torch.Tensor, ...],
) -> Steps:
    """The SOR's coefficients, per unknown (u, v) and polyphase component: omega / a times b,
    -a12 and the smoothness weights to the left, right, above and below. Only these outlive
    the call."""
    couplings, towards = _components(-coupling), [_components(w) for w in weights]
    steps = []
    for i, a in enumerate(diagonal):
        scales, rhs = _components(OMEGA / a), _components(b[:, i : i + 1])
        steps.append(
            [
                (scale * rhs[k], scale * couplings[k], *(scale * w[k] for w in towards))
                for k, scale in enumerate(scales)
            ]
        )
    return steps


def _red_black_sor(increment: torch.Tensor, steps: Steps) -> torch.Tensor:
    """SOR_ITERATIONS of red-black SOR from `increment` (du, dv) [N, 2, H, W] on the system
    [[a11, a12], [a12, a22]] (du, dv) = b plus the smoothness terms (`steps`): x <- (1 -
    omega) x + omega (b - a12 y + sum w x_neighbour) / a, the red pixels, then the black; u
    first, then v with the new u. On the 2x2 polyphase components, each held inside a border
    of zeros, so that a half-step reads and writes only the pixels it updates and reads their
    neighbours through views."""
    height, width = increment.shape[-2:]
    held = [_bordered_components(increment[:, i : i + 1]) for i in (0, 1)]
    inside = [[part[..., 1:-1, 1:-1] for part in parts] for parts in held]
    h, w = inside[0][0].shape[-2:]
    for _ in range(SOR_ITERATIONS):
        for colour in COLOURS:
            for i in (0, 1):
                x, y = inside[i], inside[1 - i]
                for k in colour:
                    rhs, coupled, *pulls = steps[i][k]
                    out = torch.add(rhs, x[k], alpha=1 - OMEGA, out=x[k])
                    out.addcmul_(coupled, y[k])
                    for pull, (other, dy, dx) in zip(pulls, NEIGHBOURS[k], strict=True):
                        view = held[i][other][..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
                        out.addcmul_(pull, view)
    return torch.cat([_merged(parts, height, width) for parts in inside], 1)


def _components(x: torch.Tensor) -> list[torch.Tensor]:
    """The 4 polyphase components of x [..., H, W] (H and W padded to even with zeros), each
    a contiguous copy."""
    height, width = x.shape[-2:]
    if height % 2 or width % 2:
        x = F.pad(x, (0, width % 2, 0, height % 2))
    return [x[..., i::2, j::2].contiguous() for i in (0, 1) for j in (0, 1)]


def _bordered_components(x: torch.Tensor) -> list[torch.Tensor]:
    """The same, each inside a border of one zero on every side."""
    return [F.pad(part, (1, 1, 1, 1)) for part in _components(x)]


def _merged(parts: list[torch.Tensor], height: int, width: int) -> torch.Tensor:
    """The map [..., H, W] whose polyphase components these are."""
    first = parts[0]
    out = first.new_empty(*first.shape[:-2], 2 * first.shape[-2], 2 * first.shape[-1])
    for k, part in enumerate(parts):
        out[..., k // 2 :: 2, k % 2 :: 2] = part
    return out[..., :height, :width]


def _forward_x(x: torch.Tensor) -> torch.Tensor:
    """x(p + 1) - x(p) along the rows, zero in the last column."""
    return F.pad(x[..., 1:] - x[..., :-1], (0, 1))


def _forward_y(x: torch.Tensor) -> torch.Tensor:
    """The same down the columns, zero in the last row."""
    return F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))


def _dx(x: torch.Tensor) -> torch.Tensor:
    """x(p + 1) - x(p - 1) along the rows, the border repeated."""
    padded = F.pad(x, (1, 1, 0, 0), mode="replicate")
    return padded[..., 2:] - padded[..., :-2]


def _dy(x: torch.Tensor) -> torch.Tensor:
    """The same down the columns."""
    padded = F.pad(x, (0, 0, 1, 1), mode="replicate")
    return padded[..., 2:, :] - padded[..., :-2, :]


def _left(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x[..., :-1], (1, 0))


def _above(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x[..., :-1, :], (0, 0, 1, 0))
