import torch

from vdenoise.models.layers import (
    CentreMaskedConv2d,
    UNet,
    depth_to_space,
    gaussian_blur,
    pad_to_multiple,
    space_to_depth,
)
from vdenoise.models.stbn import sub_block_shuffle, sub_block_unshuffle


def test_masked_conv_never_sees_its_own_pixel():
    conv = CentreMaskedConv2d(3, 4)
    with torch.no_grad():
        conv.weight.fill_(1.0)  # even if training moved the centre tap
    x = torch.rand(1, 3, 9, 9, requires_grad=True)
    (grad,) = torch.autograd.grad(conv(x)[0, :, 4, 4].sum(), x)
    assert grad[0, :, 4, 4].abs().max() == 0
    assert grad[0, :, 3, 4].abs().max() > 0


def test_sub_block_unshuffle_follows_its_index_formula():
    x = torch.arange(8 * 8, dtype=torch.float32).view(1, 1, 8, 8)
    y = sub_block_unshuffle(x)
    assert y.shape == (1, 4, 4, 4)
    for c in range(4):
        i, j = divmod(c, 2)
        for r in range(4):
            for s in range(4):
                tile_y, in_y = divmod(r, 2)
                tile_x, in_x = divmod(s, 2)
                row, col = 4 * tile_y + 2 * i + in_y, 4 * tile_x + 2 * j + in_x
                assert y[0, c, r, s] == x[0, 0, row, col]
    assert torch.equal(sub_block_shuffle(y), x)


def test_unet_keeps_any_size():
    net = UNet(5, 2, 8)
    for h, w in [(17, 31), (8, 8), (64, 33)]:
        assert net(torch.rand(2, 5, h, w)).shape == (2, 2, h, w)


def test_padding_and_blur():
    x = torch.rand(1, 2, 5, 7)
    padded, size = pad_to_multiple(x, 4)
    assert padded.shape[-2:] == (8, 8) and size == (5, 7)
    assert torch.equal(padded[..., :5, :7], x)
    flat = torch.full((1, 3, 20, 20), 0.7)
    assert torch.allclose(gaussian_blur(flat, 2.0), flat)


def test_new_inputs_of_a_loaded_unet_start_silent():
    torch.manual_seed(0)
    old, new = UNet(3, 3, 8), UNet(5, 3, 8)
    new.load_grown(old.state_dict())
    x = torch.rand(1, 3, 16, 16)
    extra = torch.rand(1, 2, 16, 16)
    with torch.no_grad():
        assert torch.equal(old(x), new(torch.cat([x, extra], 1)))
    try:
        old.load_grown(new.state_dict())
    except ValueError:
        pass
    else:
        raise AssertionError("a U-Net with more inputs must not load into one with fewer")


def test_a_widened_unet_computes_what_it_was_grown_from_and_learns_with_its_new_channels():
    torch.manual_seed(0)
    old, wide = UNet(3, 3, 8), UNet(5, 3, 12)
    wide.load_grown(old.state_dict())
    x, extra = torch.rand(1, 3, 24, 24), torch.rand(1, 2, 24, 24)
    out = wide(torch.cat([x, extra], 1))
    with torch.no_grad():
        assert torch.allclose(old(x), out, atol=1e-6)
    out.square().mean().backward()
    last = wide.dec0[-2].weight.grad
    assert last is not None and last[:, 8:].abs().max() > 0  # the new channels reach the loss
    assert wide.enc0[0].weight[:8, 12:].abs().max() == 0  # new inputs silent on old channels
    try:
        UNet(3, 3, 6).load_grown(old.state_dict())
    except ValueError:
        pass
    else:
        raise AssertionError("a wider U-Net must not load into a narrower one")


def test_depth_space_moves_are_torchs_pixel_shuffles_exactly():
    x = torch.rand(2, 12, 6, 10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(depth_to_space(x), torch.nn.functional.pixel_shuffle(x, 2))
    assert torch.equal(space_to_depth(x), torch.nn.functional.pixel_unshuffle(x, 2))
    assert torch.equal(space_to_depth(depth_to_space(x)), x)
