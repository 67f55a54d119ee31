import dataclasses
from dataclasses import replace

import pytest
import torch

from tests.textures import moving_texture
from vdenoise.checkpoint import load_model
from vdenoise.models import build
from vdenoise.models.f2r import F2R, PRESETS


@pytest.fixture(scope="module", params=list(PRESETS))
def model(request):
    torch.manual_seed(0)
    return F2R(PRESETS[request.param]).eval()


def test_anchor_is_frame_wise_blind(model):
    """Stage 1's anchor for a frame has zero gradient with respect to that whole frame (before
    the spatial fallback, which reads the frame around each pixel: test_fallback.py)."""
    temporal = F2R(replace(model.config, spatial_fallback=False)).eval()
    temporal.estimator.load_state_dict(model.estimator.state_dict())
    k = model.frames_before
    clip = torch.rand(1, 2 * k + 3, 3, 21, 26, requires_grad=True)
    anchors = temporal.anchor(clip, torch.tensor([0.1]))
    for i in range(anchors.shape[1]):
        (grad,) = torch.autograd.grad(anchors[0, i].sum(), clip, retain_graph=True)
        centre = k + i
        assert grad[0, centre].abs().max() == 0
        for t in [*range(centre - k, centre), *range(centre + 1, centre + k + 1)]:
            assert grad[0, t].abs().sum() > 0  # all 2k neighbours are used


def test_refiner_sees_the_centre_frame(model):
    k = model.frames_before
    clip = torch.rand(1, 2 * k + 1, 3, 16, 16, requires_grad=True)
    (grad,) = torch.autograd.grad(model(clip, torch.tensor([0.1])).sum(), clip)
    assert grad[0, k].abs().sum() > 0


@pytest.mark.parametrize(("h", "w"), [(17, 23), (48, 64), (3, 5)])
def test_any_size_and_deterministic(h, w):
    model = F2R(PRESETS["tiny"]).eval()
    clip = torch.rand(2, 9, 3, h, w)
    sigma = torch.tensor([0.05, 0.2])
    with torch.no_grad():
        a, b = model(clip, sigma), model(clip, sigma)
    assert a.shape == (2, 5, 3, h, w) and torch.equal(a, b) and torch.isfinite(a).all()


def test_three_neighbours_and_plain_residual():
    config = replace(PRESETS["tiny"], neighbours=3, uncertainty=False, highpass=False)
    model = F2R(config).eval()
    clip = torch.rand(1, 8, 3, 16, 16)
    assert model(clip, torch.tensor([0.1])).shape == (1, 2, 3, 16, 16)


def test_highpass_residual_leaves_low_frequencies_to_the_anchor():
    model = F2R(replace(PRESETS["tiny"], posterior=False, highpass=True)).eval()
    with torch.no_grad():
        *_, centre = model.windows(torch.rand(1, 5, 3, 64, 64))
        level = torch.full((1, 1, 64, 64), 0.1)
        residual = model.refiner(centre, centre, level, torch.ones(1, 3, 64, 64))
    assert residual.mean(dim=(-2, -1)).abs().max() < 1e-3


class NoResidual(torch.nn.Module):
    def forward(self, anchor, noisy, level, variance, base=None, fallback=None, second=None):
        return torch.zeros_like(noisy)


@pytest.mark.parametrize(("spread", "expected"), [(1e-4, "anchor"), (10.0, "noisy")])
def test_stage_two_starts_from_the_posterior_given_the_anchors_uncertainty(spread, expected):
    """Where the anchor is sure, the posterior is the anchor; where it is unsure (occlusion,
    fast motion), it falls back on the noisy frame."""
    model = F2R(PRESETS["tiny"]).eval()
    model.refiner = NoResidual()
    model.calibrate = False  # the prior as stated (its calibration: tests/models/test_gaussian)
    anchor, noisy = torch.rand(2, 1, 3, 8, 8).unbind(0)
    factor = torch.zeros(1, 6, 8, 8)
    factor[:, [2, 4, 5]] = spread  # a02, a11, a20: covariance spread^2 I (gaussian.py)
    level = torch.full((1, 1, 8, 8), 0.1)
    out = model.refine(torch.cat([anchor, factor], 1), noisy, level)
    assert torch.allclose(out, anchor if expected == "anchor" else noisy, atol=1e-3)


class Gate(torch.nn.Module):
    """Stage 2 with no residual and a gate of `value` everywhere."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, anchor, noisy, level, variance, base=None, fallback=None, second=None):
        assert second is not None
        return torch.cat([torch.zeros_like(noisy), torch.full_like(noisy[:, :1], self.value)], 1)


@pytest.mark.parametrize("gate", [0.0, 1.0])
def test_stage_two_gates_its_output_towards_the_posterior_given_the_fallen_back_anchor(gate):
    """With `fallback_posterior`, a gate of 1 takes the posterior given the anchor fallen back
    on the frame's ring (where the neighbours failed), 0 the temporal anchor's."""
    model = F2R(replace(PRESETS["small"], fallback_posterior=True)).eval()
    model.refiner = Gate(gate)
    model.calibrate = False
    ramp = torch.linspace(0.3, 0.6, 16)
    noisy = (ramp.view(-1, 1) + ramp).expand(1, 3, 16, 16) / 2  # smooth: its ring mean is it
    anchor = noisy + 0.3  # a temporal anchor far from the frame: the ring mean wins
    factor = torch.zeros(1, 6, 16, 16)
    factor[:, [2, 4, 5]] = 1e-4  # a sure prior (covariance 1e-8 I, gaussian.py)
    level = torch.full((1, 1, 16, 16), 0.1)
    fallen, _, out = model._refine(torch.cat([anchor, factor], 1), noisy, level)
    assert not torch.allclose(fallen, anchor, atol=1e-2)
    assert torch.allclose(out, fallen if gate else anchor, atol=1e-3)


def test_a_gate_added_to_trained_weights_leaves_the_output_as_it_was():
    """`scripts/retrain_refiner.py --keep-refiner --fallback-posterior`: the new input starts
    with zero weights and the gate silent, so the output is the trained model's to the bit,
    and training reaches both."""
    torch.manual_seed(0)
    plain = F2R(replace(PRESETS["small"], fallback_posterior=False)).eval()
    gated = F2R(PRESETS["small"]).eval()
    gated.estimator.load_state_dict(plain.estimator.state_dict())
    gated.refiner.net.load_grown(plain.refiner.net.state_dict())
    gated.refiner.set_gate(0.0)
    clean, noisy = moving_texture(frames=5, size=48)
    sigma = torch.tensor([0.1])
    with torch.no_grad():
        (_, _, out), (_, _, same) = (m.stages(noisy, sigma) for m in (plain, gated))
    assert torch.equal(out, same)
    gated.train()
    gated.stages(noisy, sigma)[2].sub(clean[:, 2:3]).pow(2).mean().backward()
    net = gated.refiner.net
    assert net.enc0[0].weight.grad[:, -12:].abs().sum() > 0  # 3 inputs, unshuffled x4
    assert net.dec0[-2].weight.grad[12:].abs().sum() > 0  # the gate's 2x2 block


def test_checkpoints_from_before_the_posterior_refine_the_anchor():
    config = dataclasses.asdict(PRESETS["tiny"])
    del config["posterior"]
    assert build("f2r", config=config).config.posterior is False


def test_an_untrained_model_starts_by_averaging_the_neighbours():
    """Both stages start as small corrections to a temporal average: a new model already
    averages its neighbours instead of adding random output."""
    model = F2R(PRESETS["tiny"])
    image = torch.linspace(0.2, 0.8, 32).expand(1, 1, 3, 32, 32)  # smooth
    noise = 0.1 * torch.randn(1, 5, 3, 32, 32)
    with torch.no_grad():
        out = model(image + noise, torch.tensor([0.1]))[0, 0]
    error = (out - image[0, 0]).pow(2).mean().sqrt()
    assert error < 0.1 / 1.8  # 4 neighbours, centre pixels favoured: noise down > 1.8x


class EchoLevel(torch.nn.Module):
    """A refiner whose output is the level map it was given (minus the posterior it adds to)."""

    def forward(self, anchor, noisy, level, variance, base=None, fallback=None, second=None):
        return level.expand_as(noisy) - base


def test_stage_two_gets_the_level_of_each_pixels_brightness_where_noise_grows_with_it():
    """Shot noise: with a fitted noise level function, stage 2 is told a level that follows the
    anchor's brightness; stage 1 keeps the frame's average."""
    model = F2R(PRESETS["tiny"]).eval()
    model.refiner = EchoLevel()
    image = torch.linspace(0, 1, 32).expand(1, 5, 3, 32, 32)  # dark left, bright right
    sigma = torch.tensor([0.1])
    with torch.no_grad():
        flat = model(image, sigma)[0, 0, 0]
        model.relative_variance = torch.tensor([0.25, 0.25, 1.0, 1.0, 4.0, 4.0, 4.0, 4.0])
        shot = model(image, sigma)[0, 0, 0]
    assert torch.allclose(flat, torch.full_like(flat, 0.1))
    assert shot[:, 1].mean() == pytest.approx(0.05, rel=0.05)  # dark: variance x0.25
    assert shot[:, -2].mean() == pytest.approx(0.2, rel=0.05)  # bright: variance x4
    assert (shot[:, 1:].diff(dim=1) >= -1e-6).all()  # no step down as brightness grows


def anchor_psnr(model: F2R, clean: torch.Tensor, noisy: torch.Tensor, sigma: float) -> float:
    k = model.config.neighbours
    with torch.no_grad():
        anchor = model.anchor(noisy, torch.tensor([sigma]))[0, :, :3]
    error = (anchor - clean[0, k:-k]).pow(2).mean()
    return float(-10 * torch.log10(error))


def test_the_anchor_follows_motion_of_several_pixels_per_frame():
    """Texture moving 5 pixels per frame: aligned along the flow, even an untrained stage 1
    averages its neighbours into an anchor far better than the noisy frame; the unaligned
    3 x 3 kernels of earlier checkpoints cannot reach that far and fall below it, unless the
    spatial fallback (the small preset's since 0.11.0) takes the frame's ring over."""
    clean, noisy = moving_texture()
    noisy_psnr = float(-10 * torch.log10((noisy - clean).pow(2).mean()))
    temporal = replace(PRESETS["small"], spatial_fallback=False)
    torch.manual_seed(0)
    aligned = F2R(temporal).eval()
    torch.manual_seed(0)
    unaligned = F2R(replace(temporal, align=False)).eval()
    assert anchor_psnr(aligned, clean, noisy, 0.1) > noisy_psnr + 4
    assert anchor_psnr(unaligned, clean, noisy, 0.1) < noisy_psnr
    falling = F2R(replace(PRESETS["small"], align=False)).eval()
    falling.estimator.load_state_dict(unaligned.estimator.state_dict())
    assert anchor_psnr(falling, clean, noisy, 0.1) > noisy_psnr + 1


def noise_correlation(anchor: torch.Tensor, clean: torch.Tensor, noisy: torch.Tensor) -> float:
    """The correlation between the anchor's error and the centre frames' noise."""
    error, noise = (anchor - clean).flatten(), (noisy - clean).flatten()
    return float((error * noise).sum() / (error.norm() * noise.norm()))


class LeakyF2R(F2R):
    """A deliberately broken stage 1: the nearest frame before is replaced by the centre."""

    def stage_one(self, before, after, centre, level):
        before = torch.cat([before[:, :-1], centre[:, None]], 1)
        return super().stage_one(before, after, centre, level)


def with_centre_view(width: int = 8) -> F2R:
    """An F2R whose stage 1 also sees the centre frame through its blind spot, with its gate
    randomised (not silent, as it starts): the view weighs in everywhere. Without the spatial
    fallback, whose ring reads the rest of a pixel's 2x2 block (test_fallback.py)."""
    torch.manual_seed(0)
    model = F2R(replace(PRESETS["small"], centre_view=width, spatial_fallback=False))
    with torch.no_grad():
        for parameter in model.estimator.gate.parameters():
            parameter.normal_(0, 0.3)
    return model


def released_f2r() -> F2R:
    model = load_model("f2r", device_type="cpu")[0]
    assert isinstance(model, F2R)
    return model.eval()


@pytest.mark.parametrize(
    ("make", "leaks"),
    [
        (lambda: F2R(PRESETS["small"]), False),
        (released_f2r, False),
        (lambda: LeakyF2R(PRESETS["small"]), True),
        (with_centre_view, False),
        (lambda: F2R(replace(PRESETS["small"], spatial_fallback=False)), False),
    ],
    ids=["new", "released", "leaky", "centre-view", "no-spatial-fallback"],
)
def test_the_anchors_error_is_uncorrelated_with_the_centre_frames_noise(make, leaks):
    """The flows see the centre frame, so blindness is also measured: over 5 frames of moving
    texture (246K values), the anchor's error and the centre frame's noise correlate below
    0.01 in magnitude, untrained and in the released weights; the same test catches a stage
    1 that is fed the centre frame."""
    clean, noisy = moving_texture(frames=9, size=128)
    torch.manual_seed(0)
    model = make().eval()
    with torch.no_grad():
        anchor = model.anchor(noisy, torch.tensor([0.1]))[0, :, :3]
    correlation = noise_correlation(anchor, clean[0, 2:-2], noisy[0, 2:-2])
    assert (abs(correlation) >= 0.01) == leaks, correlation


def test_a_centre_view_never_sees_a_pixels_own_2x2_block():
    """With `centre_view`, the anchor at a pixel has zero gradient with respect to the centre
    frame's 2x2 block holding it (all colours), some with respect to the rest of that frame,
    and still uses every neighbour; odd sizes included (the padding replicates within a
    block)."""
    model = with_centre_view().eval()
    clip = torch.rand(1, 5, 3, 21, 26, requires_grad=True)
    anchor = model.anchor(clip, torch.tensor([0.1]))[0, 0]
    for y, x in [(0, 0), (5, 7), (10, 13), (20, 25), (11, 12)]:
        (grad,) = torch.autograd.grad(anchor[:, y, x].sum(), clip, retain_graph=True)
        centre = grad[0, 2].abs().sum(0)
        top, left = y // 2 * 2, x // 2 * 2
        assert centre[top : top + 2, left : left + 2].max() == 0
        assert centre.sum() > 0 and all(grad[0, t].abs().sum() > 0 for t in (0, 1, 3, 4))


def test_a_new_centre_view_leaves_a_trained_anchor_as_it_was():
    """Added to trained weights (`scripts/retrain_refiner.py --centre-view`), the view starts
    nearly silent (about 1 % of the weight): the anchor moves by under 3 levels of 255, its
    covariance not at all."""
    torch.manual_seed(0)
    temporal = replace(PRESETS["small"], spatial_fallback=False)  # stage 1's own anchor
    plain = F2R(temporal).eval()
    viewing = F2R(replace(temporal, centre_view=8)).eval()
    missing, unexpected = viewing.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("estimator.centre_") or "gate" in k for k in missing)
    _, noisy = moving_texture(frames=5, size=48)
    with torch.no_grad():
        a, b = (m.anchor(noisy, torch.tensor([0.1])) for m in (plain, viewing))
    assert (a[:, :, :3] - b[:, :, :3]).abs().max() < 3 / 255
    assert torch.equal(a[:, :, 3:], b[:, :, 3:])


def test_a_spatial_fallback_added_to_trained_weights_leaves_the_output_as_it_was():
    """`scripts/retrain_refiner.py --keep-refiner --spatial-fallback`: stage 2's new inputs
    (the fallen-back anchor and its weight) start with zero weights, so the output is the
    trained model's to the bit while the anchor it reports has fallen back, and training
    reaches the new inputs (their first-layer weights get a gradient)."""
    torch.manual_seed(0)
    plain = F2R(replace(PRESETS["small"], spatial_fallback=False)).eval()
    falling = F2R(replace(PRESETS["small"], fallback_posterior=False)).eval()
    falling.estimator.load_state_dict(plain.estimator.state_dict())
    falling.refiner.net.load_grown(plain.refiner.net.state_dict())
    clean, noisy = moving_texture(frames=5, size=48)
    sigma = torch.tensor([0.1])
    with torch.no_grad():
        (a, _, out), (b, _, fell) = (m.stages(noisy, sigma) for m in (plain, falling))
    assert torch.equal(out, fell)
    assert (a - b).abs().max() > 1 / 255
    falling.train()
    falling.stages(noisy, sigma)[2].sub(clean[:, 2:3]).pow(2).mean().backward()
    first = falling.refiner.net.enc0[0].weight.grad
    assert first is not None and first[:, -16:].abs().sum() > 0  # 4 inputs, unshuffled x4


def test_inference_gives_what_training_would_with_the_released_weights():
    """At fp32 inference stage 1 adds its prior to the fusion's output in place and takes
    torch's softmax beside it, one window at a time on a CPU; with gradients on, a copy and
    all windows at once. The outputs agree."""
    model = load_model("f2r", device_type="cpu")[0]
    _, noisy = moving_texture(frames=7, size=64)
    sigma = torch.tensor([0.1])
    with torch.no_grad():
        inferred = model.stages(noisy, sigma)
    with torch.enable_grad():
        trained = model.stages(noisy, sigma)
    for a, b in zip(inferred, trained, strict=True):
        assert torch.allclose(a, b.detach(), atol=1e-5)
    assert not torch.equal(inferred[0], inferred[2])  # the anchor is not the output


def test_windows_batched_in_one_call_give_what_calls_of_their_own_give():
    """`independent_windows`: the engine may give an accelerator more frames a call."""
    model = load_model("f2r", device_type="cpu")[0]
    assert model.independent_windows
    _, noisy = moving_texture(frames=10, size=48)
    sigma = torch.tensor([0.1])
    with torch.enable_grad():  # all windows of a call in one batch, as on a GPU
        together = model(noisy, sigma).detach()
        apart = torch.cat([model(noisy[:, i : i + 5], sigma).detach() for i in range(6)], 1)
    assert together.shape[1] == 6
    assert torch.allclose(together, apart, atol=1e-5)
