import torch

from tests.textures import moving_texture
from vdenoise.models.fallback import ring_mean, spatial_fallback, sums_around


def psnr(x: torch.Tensor, clean: torch.Tensor) -> float:
    return float(-10 * torch.log10((x.clamp(0, 1) - clean).pow(2).mean()))


def test_no_pixels_estimate_reads_its_own_value():
    """Exactly blind: the fallen-back anchor at a pixel (its ring mean and its weight alike)
    has zero gradient with respect to that pixel's noisy value, but not its neighbours'."""
    g = torch.Generator().manual_seed(0)
    noisy = torch.rand(1, 3, 20, 24, generator=g).mul(0.8).add(0.1).requires_grad_()
    anchor = torch.rand(1, 3, 20, 24, generator=g)
    fused, _ = spatial_fallback(anchor, noisy, torch.full((1, 1, 20, 24), 0.1))
    for y, x in [(0, 0), (10, 12), (19, 23), (5, 1)]:
        (grad,) = torch.autograd.grad(fused[0, :, y, x].sum(), noisy, retain_graph=True)
        assert grad[0, :, y, x].abs().max() == 0
        ny, nx = (y + 1, x) if y < 19 else (y - 1, x)
        assert grad[0, :, ny, nx].abs().sum() > 0


def test_the_anchor_stays_where_it_holds_and_gives_way_where_it_fails():
    clean, noisy = moving_texture(frames=2, size=64, sigma=0.1)
    clean, noisy = clean[0, :1], noisy[0, :1]
    level = torch.full((1, 1, 64, 64), 0.1)
    good = clean + 0.02 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    fused, weight = spatial_fallback(good, noisy, level)
    assert weight.mean() > 0.8 and psnr(fused, clean) > psnr(good, clean) - 0.5
    failed = clean.roll(7, -1)  # neighbours aligned 7 pixels off: worse than the noisy frame
    assert psnr(failed, clean) < psnr(noisy, clean)
    fused, weight = spatial_fallback(failed, noisy, level)
    assert weight.mean() < 0.2
    assert psnr(fused, clean) > psnr(noisy, clean) + 3
    assert psnr(fused, clean) >= psnr(ring_mean(noisy), clean) - 0.5  # nearly all ring mean


def test_window_sums_are_the_windows_in_frame_minus_the_centre_block():
    """`sums_around` against the sums taken window by window, at the borders
    and corners too, for F2R's and STBN's windows and one wider than the frame."""
    x = torch.rand(2, 3, 13, 17, generator=torch.Generator().manual_seed(0))
    for size in (7, 15, 21):
        r = size // 2
        expected = torch.zeros_like(x)
        for i in range(13):
            for j in range(17):
                window = x[..., max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1]
                block = x[..., max(0, i - 1) : i + 2, max(0, j - 1) : j + 2]
                expected[..., i, j] = window.sum((-1, -2)) - block.sum((-1, -2))
        assert torch.allclose(sums_around(x, size), expected, atol=1e-5), size


def test_ring_mean_is_the_mean_of_the_neighbours_in_frame():
    """Each position's 8 neighbours averaged, fewer at the borders and corners, itself left
    out; on a frame one pixel high too."""
    for height, width in ((7, 9), (1, 5)):
        x = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(1))
        expected = torch.zeros_like(x)
        for i in range(height):
            for j in range(width):
                block = x[..., max(0, i - 1) : i + 2, max(0, j - 1) : j + 2]
                count = block.shape[-1] * block.shape[-2] - 1
                expected[..., i, j] = (block.sum((-1, -2)) - x[..., i, j]) / count
        assert torch.allclose(ring_mean(x), expected, atol=1e-6), (height, width)
