import pytest
import torch

from tests.models.test_f2r import noise_correlation, released_f2r
from tests.textures import moving_texture, shifted_texture
from vdenoise.models.f2r import F2R, PRESETS
from vdenoise.models.flow import DISFlow
from vdenoise.models.pyramid_flow import PyramidFlow

MOVES = [(24, -31), (-38, 17), (20, 35), (-29, -40)]  # pixels per frame


def endpoint_errors(flow: torch.Tensor, moves: list[tuple[int, int]], margin: int) -> list[float]:
    """Mean endpoint error of each pair's flow against -move, away from the frame's border
    (where the source of a pixel lies outside the frame, no flow is right)."""
    truth = -torch.tensor(moves, dtype=flow.dtype).view(-1, 2, 1, 1)
    error = (flow - truth).norm(dim=1)[:, margin:-margin, margin:-margin]
    return error.mean((1, 2)).tolist()


def test_texture_moving_20_to_40_pixels_a_frame_is_aligned_within_a_pixel():
    torch.manual_seed(0)
    targets, sources = shifted_texture(MOVES)
    errors = endpoint_errors(PyramidFlow()(targets, sources), MOVES, margin=48)
    assert max(errors) < 1.0, errors


def test_dis_with_f2rs_setting_loses_such_motion():
    """What the torch flow is for beside DIS: the same frames defeat F2R's DIS setting."""
    targets, sources = shifted_texture(MOVES)
    errors = endpoint_errors(DISFlow(smooth=1.5, smoothness=60)(targets, sources), MOVES, 48)
    assert max(errors) > 5.0, errors


def test_a_pair_gets_the_same_flow_alone_as_in_a_batch():
    targets, sources = shifted_texture(MOVES[:2], size=64)
    flow = PyramidFlow()
    batched = flow(targets, sources)
    alone = flow(targets[1:], sources[1:])
    assert torch.allclose(batched[1:], alone, atol=1e-4)


@pytest.mark.parametrize(("h", "w"), [(3, 5), (17, 23), (70, 50)])
def test_any_size_and_still_frames(h, w):
    frame = torch.rand(2, 3, h, w)
    flow = PyramidFlow()(frame, frame)
    assert flow.shape == (2, 2, h, w) and flow.dtype == torch.float32
    assert flow.abs().max() < 0.05


@pytest.mark.parametrize(
    "make", [lambda: F2R(PRESETS["small"]), released_f2r], ids=["new", "released"]
)
def test_the_anchor_stays_blind_along_the_torch_flow(make):
    """As tests/models/test_f2r.py checks for DIS: the flow sees the centre frame, and the
    anchor's error still correlates below 0.01 with the centre frame's noise."""
    clean, noisy = moving_texture(frames=9, size=128)
    torch.manual_seed(0)
    model = make().eval()
    model.flow = PyramidFlow()
    with torch.no_grad():
        anchor = model.anchor(noisy, torch.tensor([0.1]))[0, :, :3]
    correlation = noise_correlation(anchor, clean[0, 2:-2], noisy[0, 2:-2])
    assert abs(correlation) < 0.01, correlation


def test_half_precision_models_get_the_same_flow():
    """Under a model's autocast (bf16 here; fp16 on GPUs) the flow is still computed in
    float32: the structure tensor's small products would vanish otherwise."""
    targets, sources = shifted_texture(MOVES[:1], size=64)
    flow = PyramidFlow()
    plain = flow(targets, sources)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = flow(targets, sources)
    assert mixed.dtype == torch.float32 and torch.equal(plain, mixed)
