import torch
import torch.nn.functional as F

from vdenoise.models.windows import box_mean, box_sum, running_box_sum


def _direct_sums(x: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each window's in-frame sum and count, taken window by window."""
    r, (h, w) = size // 2, x.shape[-2:]
    sums, counts = torch.zeros_like(x, dtype=torch.float64), torch.zeros(h, w)
    for i in range(h):
        for j in range(w):
            window = x[..., max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1]
            sums[..., i, j] = window.double().sum((-1, -2))
            counts[i, j] = window.shape[-1] * window.shape[-2]
    return sums, counts


def test_box_sum_and_mean_are_the_windows_in_frame_at_borders_corners_and_wider():
    x = torch.rand(2, 3, 13, 17, generator=torch.Generator().manual_seed(0))
    for size in (3, 7, 15, 31):  # 31: wider than the frame both ways
        sums, counts = _direct_sums(x, size)
        assert torch.allclose(box_sum(x, size), sums, atol=1e-10), size
        mean = box_mean(x, size)
        assert mean.dtype == x.dtype
        assert torch.allclose(mean, (sums / counts).float(), atol=1e-6), size


def test_box_mean_matches_average_pooling_without_the_padding():
    x = torch.rand(2, 4, 37, 23, generator=torch.Generator().manual_seed(1))
    pooled = F.avg_pool2d(x, 31, 1, 15, count_include_pad=False)
    assert torch.allclose(box_mean(x, 31), pooled, atol=1e-6)
    corner = x[0, 0, :16, :16].mean()  # the window of pixel (0, 0) holds 16 x 16 in-frame pixels
    assert torch.allclose(box_mean(x, 31)[0, 0, 0, 0], corner, atol=1e-6)


def test_long_rows_of_large_values_keep_their_precision():
    """Running sums over 4,000 pixels of values near 1e3 (sums to 4e6): the windows' means stay
    exact to float32's precision."""
    x = 1000 + torch.rand(1, 1, 3, 4000, generator=torch.Generator().manual_seed(2))
    pooled = F.avg_pool2d(x.double(), 7, 1, 3, count_include_pad=False)
    assert torch.allclose(box_mean(x, 7).double(), pooled, rtol=1e-7, atol=0)


def test_opencv_and_running_sums_agree_and_gradients_take_the_running_ones():
    """On a CPU `box_sum` is OpenCV's box filter; through autograd (and on accelerators) the
    running sums: the two agree to float64's precision, and a gradient flows."""
    x = torch.rand(1, 4, 48, 64, generator=torch.Generator().manual_seed(3))
    for size in (3, 7, 31):
        assert torch.allclose(box_sum(x, size), running_box_sum(x, size), atol=1e-12), size
    x.requires_grad_()
    box_sum(x, 7).sum().backward()
    assert x.grad is not None and torch.allclose(x.grad[0, 0, 24, 32], torch.tensor(49.0))


def test_half_precision_and_strided_frames_sum_as_float32_ones():
    """bf16 inference on a CPU and a view of every other column reach OpenCV as float32."""
    x = torch.rand(1, 2, 20, 30, generator=torch.Generator().manual_seed(4))
    half = x.bfloat16()
    assert torch.allclose(box_sum(half, 7), running_box_sum(half.float(), 7), atol=1e-12)
    strided = x[..., ::2]
    assert torch.allclose(box_sum(strided, 5), running_box_sum(strided, 5), atol=1e-12)
