from dataclasses import replace

import pytest
import torch

from tests.textures import moving_texture
from vdenoise.checkpoint import load_model
from vdenoise.models.flow import warp_nearest
from vdenoise.models.gaussian import posterior_mean
from vdenoise.models.stbn import (
    PRESETS,
    REFERENCE,
    RING,
    STBN,
    kernel_mean,
    kernel_means,
    neighbourhoods,
    reaching_flows,
)


def psnr(x: torch.Tensor, clean: torch.Tensor) -> float:
    return float(-10 * torch.log10((x.clamp(0, 1) - clean).pow(2).mean()))


NO_CARRY = replace(PRESETS["tiny"], carry=False)
CONFIGS = {**PRESETS, "reference": REFERENCE, "tiny, no carry": NO_CARRY}


@pytest.fixture(scope="module", params=list(CONFIGS))
def model(request):
    torch.manual_seed(0)
    return STBN(CONFIGS[request.param]).eval()


def test_full_preset_has_the_reference_size():
    """9,138,112 parameters: the official bdc_2_unify count (methods notes, section 1.2)."""
    assert sum(p.numel() for p in STBN(REFERENCE).parameters()) == 9_138_112


def test_blind_spot(model):
    """The prediction for a pixel never depends on that pixel of the same noisy frame."""
    h, w = 19, 22  # odd height: padding must keep the blind spot too
    warm = model.frames_before
    clip = torch.rand(1, 2 * warm + 2, 3, h, w, requires_grad=True)
    flows = model.estimate_flows(clip.detach())  # held fixed, as the flow carries no gradient
    prior = model.prior(clip, torch.tensor([0.1]), flows)
    for k, y, x in [(0, 0, 0), (1, 9, 11), (0, h - 1, w - 1), (1, 2, w - 1), (0, h - 2, 5)]:
        (grad,) = torch.autograd.grad(prior[0, k, :, y, x].sum(), clip, retain_graph=True)
        frame = warm + k
        assert grad[0, frame, :, y, x].abs().max() == 0
        assert grad[0, frame].abs().sum() > 0  # it does see the rest of its own frame
        assert grad[0, frame - 1].abs().sum() > 0  # and the neighbouring frames


def test_posterior_brings_the_centre_pixel_back(model):
    clip = torch.rand(1, 2 * model.frames_before + 1, 3, 12, 12, requires_grad=True)
    out = model(clip, torch.tensor([0.2]))
    (grad,) = torch.autograd.grad(out[0, 0, :, 6, 6].sum(), clip)
    assert grad[0, model.frames_before, :, 6, 6].abs().sum() > 0


@pytest.mark.parametrize(("h", "w"), [(17, 23), (32, 40), (5, 9)])
def test_any_size_and_deterministic(h, w):
    model = STBN(PRESETS["tiny"]).eval()
    clip = torch.rand(2, 11, 3, h, w)
    sigma = torch.tensor([0.1, 0.2])
    with torch.no_grad():
        a, b = model(clip, sigma), model(clip, sigma)
    assert a.shape == (2, 3, 3, h, w) and torch.equal(a, b) and torch.isfinite(a).all()


def test_the_carried_state_sees_its_own_frame_the_prediction_does_not():
    """With `carry`, frame t's pixel reaches frame t+1's prediction at the aligned pixel (no
    motion here), while frame t+1's own pixel still does not."""
    model = STBN(PRESETS["tiny"]).eval()
    clip = torch.rand(1, 4, 3, 16, 16, requires_grad=True)
    prior = model.prior(clip, torch.tensor([0.1]), warmup=0)
    for frame, (y, x) in [(1, (6, 6)), (2, (6, 8)), (2, (5, 9))]:
        (grad,) = torch.autograd.grad(prior[0, frame, :, y, x].sum(), clip, retain_graph=True)
        assert grad[0, frame, :, y, x].abs().max() == 0
        assert grad[0, frame - 1, :, y, x].abs().sum() > 0
        assert grad[0, frame + 1, :, y, x].abs().sum() > 0


def test_propagation_off_keeps_each_frame_to_itself():
    model = STBN(NO_CARRY).eval()
    model.propagate = False
    clip = torch.rand(1, 4, 3, 16, 16, requires_grad=True)
    prior = model.prior(clip, torch.tensor([0.1]), warmup=0)
    (grad,) = torch.autograd.grad(prior[0, 1].sum(), clip)
    assert grad[0, 1].abs().sum() > 0
    assert grad[0, [0, 2, 3]].abs().max() == 0


def test_flows_to_farther_frames_are_the_steps_composed():
    """Frames moving 1.5 px right per frame: frame t finds frame t-2 at 3 px, t+3 at -4.5 px."""
    steps = torch.zeros(1, 2, 24, 32)
    steps[:, 0] = 1.5
    forward = [None] + [steps.clone() for _ in range(6)]  # t -> t-1
    backward = [-steps.clone() for _ in range(6)] + [None]  # t -> t+1
    found = {source: flow for flow, source in reaching_flows((forward, backward), 3, 3)}
    assert sorted(found) == [0, 1, 2, 4, 5, 6]
    assert torch.allclose(found[1][:, 0], torch.full((1, 24, 32), 3.0))
    assert torch.allclose(found[6][:, 0, :, 8:], torch.full((1, 24, 24), -4.5))
    ends = {source: flow for flow, source in reaching_flows((forward, backward), 1, 3)}
    assert ends[-1] is None and ends[-2] is None and ends[0] is not None


def test_the_kernel_mean_weighs_every_candidate_inside_the_frame():
    """Against the definition, all candidates at once: the ring of frame t, then the 3x3 of
    each frame t-1, t+1, t-2, t+2 aligned along its flow; none outside the frame or the clip
    (frame 0 has no frames before it)."""
    g = torch.Generator().manual_seed(0)
    clip = torch.rand(1, 3, 3, 12, 16, generator=g)
    flows = (
        [None, *(4 * torch.randn(1, 2, 12, 16, generator=g) for _ in range(2))],
        [*(4 * torch.randn(1, 2, 12, 16, generator=g) for _ in range(2)), None],
    )
    logits = torch.randn(1, len(RING) + 2 * 2 * 9, 12, 16, generator=g)
    candidates = [neighbourhoods(clip[:, 0])[:, RING]]
    valid = [torch.ones(1, len(RING), 12, 16)]
    for flow, source in reaching_flows(flows, 0, 2):
        if flow is None or not 0 <= source < 3:
            candidates.append(torch.zeros(1, 9, 3, 12, 16))
            valid.append(torch.zeros(1, 9, 12, 16))
            continue
        warped = warp_nearest(torch.cat([clip[:, source], torch.ones(1, 1, 12, 16)], 1), flow)
        candidates.append(neighbourhoods(warped[:, :3]))
        valid.append(neighbourhoods(warped[:, 3:])[:, :, 0])
    valid[0] = neighbourhoods(torch.ones(1, 1, 12, 16))[:, RING, 0]
    weights = torch.softmax(logits.masked_fill(torch.cat(valid, 1) < 0.5, -1e4), 1)
    expected = torch.einsum("bkhw,bkchw->bchw", weights, torch.cat(candidates, 1))
    assert torch.allclose(kernel_mean(logits, clip, 0, flows, reach=2), expected, atol=1e-6)
    ring = torch.softmax(logits[:, : len(RING)].masked_fill(valid[0] < 0.5, -1e4), 1)
    alone = torch.einsum("bkhw,bkchw->bchw", ring, candidates[0])
    mean, spatial = kernel_means(logits, clip, 0, flows, reach=2, spatial=True)
    assert torch.equal(mean, kernel_mean(logits, clip, 0, flows, reach=2))
    assert spatial is not None and torch.allclose(spatial, alone, atol=1e-6)
    assert torch.allclose(spatial, kernel_mean(logits, clip, 0, flows, False, 2), atol=1e-6)


def test_the_forward_backward_check_keeps_consistent_flow_and_rejects_the_rest():
    from vdenoise.models.stbn import UNTRUSTED, consistent

    right = torch.zeros(1, 2, 20, 24)
    right[:, 0] = 8.0  # everything moves 8 px: the way back is -8 px
    assert torch.equal(consistent(right, -right), right)
    assert torch.equal(consistent(right, -0.5 * right), right)  # 4 px off: within the slack
    wrong = consistent(right, torch.zeros_like(right))  # the way back says nothing moved
    assert (wrong == UNTRUSTED).all()
    half = -right.clone()
    half[:, 0, :, 12:] = 2.0  # right of column 12 the way back disagrees: 8 px before it too
    checked = consistent(right, half)
    assert torch.equal(checked[..., :4], right[..., :4])
    assert (checked[..., 4:] == UNTRUSTED).all()


def test_where_no_flow_holds_the_blind_mean_is_each_frame_alone():
    """Flows that fail the check everywhere (the way back disagrees): nothing propagates,
    exactly as with propagation off; with the check off they propagate."""
    torch.manual_seed(0)
    model = STBN(PRESETS["tiny"]).eval()
    clip = torch.rand(1, 4, 3, 16, 16)
    sigma = torch.tensor([0.1])
    step = torch.full((1, 2, 16, 16), 8.0)
    flows = ([None, step, step, step], [step, step, step, None])  # both ways +8: inconsistent
    with torch.no_grad():
        checked = model.prior(clip, sigma, flows, warmup=0)
        model.check_flows = False
        unchecked = model.prior(clip, sigma, flows, warmup=0)
        model.propagate = False
        alone = model.prior(clip, sigma, flows, warmup=0)
    assert torch.allclose(checked, alone, atol=1e-6)
    assert not torch.allclose(unchecked, alone, atol=1e-3)


def test_the_posterior_widens_a_prior_that_claims_too_little(monkeypatch):
    """Where the blind mean is worse than its covariance claims (propagation misled), the
    output keeps more of the noisy frame: closer to the clean one than the posterior of the
    prior as predicted."""
    g = torch.Generator().manual_seed(0)
    model = STBN(PRESETS["tiny"]).eval()
    warm, sigma = model.frames_before, torch.tensor([10 / 255])
    clean = 0.2 + 0.6 * torch.rand(1, 2 * warm + 2, 3, 48, 48, generator=g)
    noisy = clean + 10 / 255 * torch.randn(clean.shape, generator=g)
    centre = slice(warm, warm + 2)
    mean = clean[:, centre] + 8 / 255 * torch.randn(1, 2, 3, 48, 48, generator=g)
    factor = torch.zeros(1, 2, 6, 48, 48)
    factor[:, :, [2, 4, 5]] = 2 / 255  # Sigma = (2/255)^2 I: four times too sure
    monkeypatch.setattr(model, "prior", lambda clip, s, **_: torch.cat([mean, factor], 2))
    blind, _, out = model.stages(noisy, sigma)
    assert torch.equal(blind, mean)
    as_predicted = posterior_mean(mean, factor, noisy[:, centre], sigma.view(1, 1, 1, 1, 1))
    error = (out - clean[:, centre]).pow(2).mean()
    assert error < 0.8 * (as_predicted - clean[:, centre]).pow(2).mean()


def released_stbn() -> STBN:
    model = load_model("stbn", device_type="cpu")[0]
    assert isinstance(model, STBN)
    return model.eval()


def test_the_blind_mean_falls_back_on_the_frame_where_the_neighbours_mislead():
    """Every other frame from another scene, along zero flows that pass the consistency
    check: propagation misleads (2.8 dB below the frame alone). The released model's blind
    mean, blended with its ring-only kernel mean (`fall_back`), is then no worse than the
    frame alone (within 0.1 dB) and far better than without the blend; on a still clip, where
    the zero flow is right, it is no worse than without."""
    model = released_stbn()
    clean, noisy = moving_texture(frames=9, size=64, step=0)  # still: zero flow is right
    _, other = moving_texture(frames=9, size=64, step=7, sigma=0.05)
    other = other.flip(-1)  # other content
    cut = noisy.clone()
    cut[:, [0, 1, 2, 3, 5, 6, 7, 8]] = other[:, [0, 1, 2, 3, 5, 6, 7, 8]]  # all but the centre
    sigma = torch.tensor([0.1])
    target = clean[:, 4:5]

    def blind(clip, fall_back=True, propagate=True):
        model.fall_back, model.propagate = fall_back, propagate
        zeros = torch.zeros(1, 2, 64, 64)
        flows = ([None, *[zeros] * 8], [*[zeros] * 8, None])
        with torch.no_grad():
            mean = model.prior(clip, sigma, flows, fall_back=fall_back)[:, :, :3]
        model.fall_back, model.propagate = True, True
        return psnr(mean, target)

    assert blind(cut) >= blind(cut, propagate=False) - 0.1
    assert blind(cut) > blind(cut, fall_back=False) + 2.0
    assert blind(noisy) >= blind(noisy, fall_back=False) - 0.1


def test_the_blended_blind_mean_stays_blind_to_the_centre_frames_noise():
    """The blend's weights are measured around each pixel, its own 3 x 3 block left out, but
    on blind means that read it: over 5 frames of moving texture the blind mean's error and
    the centre frame's noise still correlate below 0.01 in magnitude."""
    model = released_stbn()
    clean, noisy = moving_texture(frames=13, size=96)
    with torch.no_grad():
        mean = model.stages(noisy, torch.tensor([0.1]))[0]
    centre = slice(model.frames_before, 13 - model.frames_after)
    error = (mean - clean[:, centre]).flatten()
    noise = (noisy - clean)[:, centre].flatten()
    assert abs(float(torch.corrcoef(torch.stack([error, noise]))[0, 1])) < 0.01
