"""Sums and means over square windows around each pixel, in float64.

On accelerators from running sums: one along each axis makes a window's sum two subtractions,
whatever its size, where a box filter (average pooling) costs the window's side per pixel and
pass (on one CPU thread at 640x480 the fallback's sums 2.6x faster for 7 pixels, 2.9x for 15,
the calibration's 31-pixel mean 6.8x; 0.12.0). On CPUs by OpenCV's box filter, which slides
a float64 sum along each row and column in compiled code: 2.9-3.0x faster again at 640x480
on 2 threads (0.16.0; `benchmarks/kernel_speed.py`). Float64 throughout, so that long rows lose no
precision to the subtraction.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def running_sums(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Running sums of x [N, C, H, W] along `dim` (2 or 3), with a zero in front: out[i] is the
    sum of x[:i]."""
    return F.pad(x, (1, 0) if dim == 3 else (0, 0, 1, 0)).cumsum(dim)


def window_sums(running: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """Sums of k consecutive values (odd k) centred on each position, from `running_sums`'s
    output along `dim` (zeros outside)."""
    n, r = running.shape[dim] - 1, k // 2
    pad = (r, r, 0, 0) if dim == 3 else (0, 0, r, r)
    padded = F.pad(running, pad, mode="replicate")  # the sum stays flat beyond the ends
    return padded.narrow(dim, k, n) - padded.narrow(dim, 0, n)


def box_sum(x: torch.Tensor, size: int) -> torch.Tensor:
    """The sum of x [N, C, H, W] over the in-frame part of a size x size window (odd size)
    around each pixel, in float64."""
    if x.device.type == "cpu" and not (x.requires_grad and torch.is_grad_enabled()):
        return _opencv_box_sum(x, size)
    return running_box_sum(x, size)


def running_box_sum(x: torch.Tensor, size: int) -> torch.Tensor:
    """`box_sum` from running sums, on any device and through autograd."""
    rows = window_sums(running_sums(x.double(), 2), size, 2)
    return window_sums(running_sums(rows, 3), size, 3)


def _opencv_box_sum(x: torch.Tensor, size: int) -> torch.Tensor:
    """`box_sum` of a CPU tensor by `cv2.boxFilter`, plane by plane (zeros outside the frame)."""
    planes = x.detach().flatten(0, -3)
    if planes.dtype not in (torch.float32, torch.float64):
        planes = planes.float()
    planes = planes.contiguous().numpy()
    out = np.empty(planes.shape, np.float64)
    for plane, sums in zip(planes, out, strict=True):
        cv2.boxFilter(
            plane, cv2.CV_64F, (size, size), dst=sums, normalize=False,
            borderType=cv2.BORDER_CONSTANT,
        )  # fmt: skip
    return torch.from_numpy(out).view(x.shape)


def box_mean(x: torch.Tensor, size: int) -> torch.Tensor:
    """The mean of x [N, C, H, W] over the in-frame part of a size x size window (odd size)
    around each pixel, in x's dtype. The in-frame count of a window is the product of its rows'
    and its columns'."""
    height, width = x.shape[-2:]
    counts = [_in_frame(n, size, x.device) for n in (height, width)]
    count = counts[0].view(-1, 1) * counts[1].view(1, -1)
    return per_item(lambda item: (box_sum(item, size) / count).to(x.dtype), x)


def per_item(work: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """`work` on each item of x's first dimension in turn, into one output of x's shape: the
    float64 running sums then take one frame's memory, not the batch's: STBN calibrates 16
    frames at once, and end to end at 640x480 its peak was 2,608-2,743 MiB with the batch
    whole, 2,345-2,518 item by item (0.11.0's pooling: 2,361-2,368; two runs each,
    benchmarks/end_to_end.py)."""
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        out[i : i + 1] = work(x[i : i + 1])
    return out


def _in_frame(n: int, size: int, device: torch.device) -> torch.Tensor:
    """How many of the `size` positions centred on each of 0..n-1 lie in 0..n-1 (float64)."""
    i, r = torch.arange(n, device=device, dtype=torch.float64), size // 2
    return (i + r).clamp(max=n - 1) - (i - r).clamp(min=0) + 1
