import torch

from vdenoise.models.f2r import FLOW_BLUR, FLOW_SMOOTHNESS, dis_flow
from vdenoise.models.flow import DISFlow, warp_nearest


def textured(h=64, w=80, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.avg_pool2d(torch.rand(1, 3, h + 8, w + 8, generator=g), 3, 1)
    return base[..., 2 : 2 + h, 2 : 2 + w]


def test_dis_recovers_a_shift():
    frame = textured()
    moved = torch.roll(frame, shifts=3, dims=-1)  # moved(x) = frame(x - 3)
    flow = DISFlow(smooth=0)(frame, moved)  # frame(p) ~ moved(p + flow)
    inner = flow[0, :, 10:-10, 10:-10]
    assert abs(inner[0].median().item() - 3) < 0.5 and abs(inner[1].median().item()) < 0.5


def test_f2rs_dis_setting_recovers_a_shift_and_names_its_overrides():
    """F2R's cheaper DIS setting (patch stride, refinement iterations) still follows a shift,
    computes another flow than the preset, and says so in its repr (the flow cache's key)."""
    frame = textured(96, 128)
    moved = torch.roll(frame, shifts=(2, 3), dims=(-2, -1))
    flow = dis_flow()(frame, moved)
    inner = flow[0, :, 16:-16, 16:-16]
    assert abs(inner[0].median().item() - 3) < 0.5 and abs(inner[1].median().item() - 2) < 0.5
    preset = DISFlow(smooth=FLOW_BLUR, smoothness=FLOW_SMOOTHNESS)
    assert not torch.equal(flow, preset(frame, moved))
    assert "stride=4, refine=3" in repr(dis_flow()) and "stride" not in repr(preset)


def test_nearest_warp_moves_whole_pixels_and_zero_fills():
    x = torch.arange(20.0).view(1, 1, 4, 5)
    flow = torch.zeros(1, 2, 4, 5)
    flow[:, 0] = 1.0  # sample one pixel to the right
    out = warp_nearest(x, flow)
    assert torch.equal(out[0, 0, :, :4], x[0, 0, :, 1:])
    assert torch.equal(out[0, 0, :, 4], torch.zeros(4))
