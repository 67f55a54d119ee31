import pytest
import torch

from vdenoise.models import build
from vdenoise.noise import box_correlate
from vdenoise.training import losses
from vdenoise.training.local_view import LocalView, texture_weight
from vdenoise.training.noise_profile import NoiseProfile, brightness_profile, residual_profile


def textured_clip(batch=2, frames=5, size=32, seed=0, motion=2):
    """A smooth moving pattern (something to learn) with seeded AWGN sigma 25."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    base = [
        torch.stack(
            [(0.5 + 0.3 * torch.sin((x + motion * t + c) / 4) * torch.cos(y / 5)) for c in range(3)]
        )
        for t in range(frames)
    ]
    clean = torch.stack(base)[None].repeat(batch, 1, 1, 1, 1)
    sigma = torch.full((batch,), 25 / 255)
    noisy = clean + torch.randn(clean.shape, generator=g) * sigma.view(-1, 1, 1, 1, 1)
    return clean, noisy, sigma


def improves(loss_fn, params, steps=40, lr=1e-3):
    """The loss before and after `steps` of Adam, both evaluated with the same random draws."""

    def evaluate():
        torch.manual_seed(123)
        with torch.no_grad():
            return float(loss_fn())

    before = evaluate()
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        loss = loss_fn()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return before, evaluate()


def test_stbn_nll_decreases():
    torch.manual_seed(0)  # a fixed start: 25 steps from a random one vary by tenths
    model = build("stbn", "tiny")
    _, noisy, sigma = textured_clip(frames=3, size=24)
    first, last = improves(lambda: losses.stbn_nll(model, noisy, sigma), model.parameters(), 25)
    assert last < first - 0.5


class RecordingFlow:
    """No motion, and the size of what the flow was given."""

    def __init__(self):
        self.sizes = set()

    def __call__(self, target, source):
        self.sizes.add(tuple(target.shape[-2:]))
        return target.new_zeros(target.shape[0], 2, *target.shape[-2:])


@pytest.mark.parametrize("method", ["stbn", "f2r"])
def test_the_flow_sees_the_margin_the_networks_do_not(method):
    """With a margin, the flow is computed on the whole clip and the loss is the loss of the
    clip's centre; without one, the flow sees only what the networks see."""
    model = build(method, "tiny" if method == "stbn" else "small")
    model.flow = RecordingFlow()
    _, noisy, sigma = textured_clip(frames=5, size=24)
    loss = losses.stbn_nll if method == "stbn" else losses.f2r_anchor_loss
    with torch.no_grad():
        wide = loss(model, noisy, sigma, 4)
        assert model.flow.sizes == {(24, 24)}
        model.flow.sizes.clear()
        narrow = loss(model, noisy[..., 4:-4, 4:-4], sigma)
    assert model.flow.sizes == {(16, 16)}
    assert torch.allclose(wide, narrow, atol=1e-5)


def test_stbn_nll_covers_every_frame_of_the_clip():
    model = build("stbn", "tiny")
    _, noisy, sigma = textured_clip(frames=3, size=16)
    noisy.requires_grad_(True)
    losses.stbn_nll(model, noisy, sigma).backward()
    assert (noisy.grad.flatten(2).abs().sum(2) > 0).all()


def test_f2r_anchor_loss_decreases_and_trains_only_from_neighbours():
    torch.manual_seed(0)
    model = build("f2r", "tiny")
    _, noisy, sigma = textured_clip()
    first, last = improves(
        lambda: losses.f2r_anchor_loss(model, noisy, sigma), model.estimator.parameters()
    )
    assert last < first - 0.3  # aligned, the untrained anchor already averages well


def true_error(model, batch, clean):
    with torch.no_grad():
        return float(((losses._refine(model, batch, batch.centre) - clean) ** 2).mean())


@pytest.mark.parametrize("name", ["sure", "r2r", "adaptive"])
def test_refiner_losses_decrease_and_bring_the_output_closer_to_clean(name):
    model = build("f2r", "tiny")
    clean, noisy, sigma = textured_clip(motion=3)

    def fresh_batch():  # new noise at every step, as in training
        noisy = clean + torch.randn(clean.shape) * sigma.view(-1, 1, 1, 1, 1)
        return losses.refiner_batch(model, noisy, sigma)

    local = LocalView()
    if name == "adaptive":
        improves(lambda: losses.local_view_loss(local, fresh_batch()), local.parameters())
        loss = lambda: losses.f2r_adaptive(model, fresh_batch(), local)  # noqa: E731
    else:
        loss = lambda: getattr(losses, f"f2r_{name}")(model, fresh_batch())  # noqa: E731
    held_out = losses.refiner_batch(model, noisy, sigma)
    error = true_error(model, held_out, clean[:, 2])
    first, last = improves(loss, model.refiner.parameters(), steps=60)
    assert last < first
    assert true_error(model, held_out, clean[:, 2]) < error


def test_sure_estimates_the_true_error_without_the_clean_frames():
    torch.manual_seed(0)
    model = build("f2r", "tiny")
    clean, noisy, sigma = textured_clip(batch=4, size=64)
    batch = losses.refiner_batch(model, noisy, sigma)
    with torch.no_grad():
        sure = float(losses.f2r_sure(model, batch))
        out = losses._refine(model, batch, batch.centre)
        true = float(((out - clean[:, 2]) ** 2).mean())
    assert sure == pytest.approx(true, rel=0.1)


class CopyNoisy(torch.nn.Module):
    """A refiner whose output is the noisy frame itself."""

    def forward(self, anchor, noisy, level, variance, base=None, fallback=None, second=None):
        return noisy - (anchor if base is None else base)


def test_sure_charges_a_refiner_that_copies_the_noise_the_full_noise_variance():
    torch.manual_seed(0)  # one probe over 49K values: the estimate's spread is 1.3 %
    model = build("f2r", "tiny")
    _, noisy, sigma = textured_clip(batch=4, size=64)
    batch = losses.refiner_batch(model, noisy, sigma)
    model.refiner = CopyNoisy()
    with torch.no_grad():
        assert float(losses.f2r_sure(model, batch)) == pytest.approx(sigma[0].item() ** 2, rel=0.02)


def test_sure_weighs_each_window_by_a_power_of_its_sigma():
    torch.manual_seed(0)
    model = build("f2r", "tiny")
    clean, _, _ = textured_clip(batch=4, size=64)
    sigma = torch.tensor([10.0, 10.0, 40.0, 40.0]) / 255
    noisy = clean + torch.randn(clean.shape) * sigma.view(-1, 1, 1, 1, 1)
    batch = losses.refiner_batch(model, noisy, sigma)
    model.refiner = CopyNoisy()  # each window's SURE is its sigma^2
    with torch.no_grad():
        plain = float(losses.f2r_sure(model, batch))
        weighted = float(losses.f2r_sure(model, batch, sigma_power=2))
    low, high = (10 / 255) ** 2, (40 / 255) ** 2
    assert plain == pytest.approx((low + high) / 2, rel=0.03)
    assert weighted == pytest.approx(2 / (1 / low + 1 / high), rel=0.03)  # harmonic mean


class CopyNoisyByConvolution(torch.nn.Module):
    """Copies the noisy frame through an identity convolution (which autocast would round)."""

    def __init__(self):
        super().__init__()
        self.identity = torch.nn.Conv2d(3, 3, 1, bias=False)
        torch.nn.init.eye_(self.identity.weight[:, :, 0, 0])

    def forward(self, anchor, noisy, level, variance, base=None, fallback=None, second=None):
        return self.identity(noisy) - (anchor if base is None else base)


def test_sure_keeps_fp32_precision_under_bf16_autocast():
    """bf16 rounds away most of the divergence's nudge (1e-3 against a step of 2^-8 near 1):
    unbiased still, but three times noisier (std 0.022 sigma^2 against 0.007 in fp32)."""
    model = build("f2r", "tiny")
    _, noisy, sigma = textured_clip(batch=4, size=64)
    batch = losses.refiner_batch(model, noisy, sigma)
    model.refiner = CopyNoisyByConvolution()
    draws = []
    for seed in range(8):
        torch.manual_seed(seed)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            draws.append(float(losses.f2r_sure(model, batch)) / sigma[0].item() ** 2)
    assert torch.tensor(draws).mean().item() == pytest.approx(1.0, abs=0.01)
    assert torch.tensor(draws).std().item() < 0.012


def test_local_view_learns_to_imitate_the_anchor():
    model = build("f2r", "tiny")
    local = LocalView()
    _, noisy, sigma = textured_clip()
    batch = losses.refiner_batch(model, noisy, sigma)
    first, last = improves(lambda: losses.local_view_loss(local, batch), local.parameters())
    assert last < 0.85 * first


def test_local_view_sees_only_a_3x3_neighbourhood():
    local = LocalView()
    noisy = torch.rand(1, 3, 16, 16, requires_grad=True)
    local(noisy, torch.zeros(1, 1, 16, 16))[0, :, 8, 8].sum().backward()
    reach = noisy.grad.abs().sum(1)[0].nonzero()
    assert reach.min(0).values.tolist() == [7, 7] and reach.max(0).values.tolist() == [9, 9]


def test_texture_weight_trusts_the_blind_view_where_flat():
    flat = torch.full((1, 3, 32, 32), 0.5)
    stripes = (torch.arange(32) % 2).float().expand(1, 3, 32, 32)
    assert texture_weight(flat).max() < 0.3
    assert texture_weight(stripes).min() > 0.99


def test_r2r_with_the_noises_own_correlation_brings_correlated_noise_closer_to_clean():
    model = build("f2r", "tiny")
    clean, _, sigma = textured_clip(motion=3)

    def corrupt():
        return clean + box_correlate(torch.randn(clean.shape)) * sigma.view(-1, 1, 1, 1, 1)

    residual = (corrupt() - clean)[:, 2]
    profile = residual_profile(residual, torch.ones_like(residual[:, :1], dtype=torch.bool))
    held_out = losses.refiner_batch(model, corrupt(), sigma)
    error = true_error(model, held_out, clean[:, 2])
    loss = lambda: losses.f2r_r2r(model, losses.refiner_batch(model, corrupt(), sigma), profile)  # noqa: E731
    first, last = improves(loss, model.refiner.parameters(), steps=60)
    assert last < first
    assert true_error(model, held_out, clean[:, 2]) < error


class BlurNoisy(torch.nn.Module):
    """A refiner whose output is the noisy frame blurred by a 3x3 box."""

    def forward(self, anchor, noisy, level, variance, base=None, fallback=None, second=None):
        blurred = torch.nn.functional.avg_pool2d(noisy, 3, 1, 1, count_include_pad=False)
        return blurred - (anchor if base is None else base)


def test_sure_with_the_measured_covariance_estimates_the_error_on_correlated_noise():
    torch.manual_seed(0)
    model = build("f2r", "tiny")
    clean, _, sigma = textured_clip(batch=4, size=64)
    noise = box_correlate(torch.randn(clean.shape)) * sigma.view(-1, 1, 1, 1, 1)
    batch = losses.refiner_batch(model, clean + noise, sigma)
    model.refiner = BlurNoisy()
    profile = residual_profile(noise[:, 2], torch.ones_like(noise[:, 2, :1], dtype=torch.bool))
    with torch.no_grad():
        true = float(((losses._refine(model, batch, batch.centre) - clean[:, 2]) ** 2).mean())
        measured = float(losses.f2r_sure(model, batch, profile))
        white = float(losses.f2r_sure(model, batch))
    assert measured == pytest.approx(true, rel=0.1)
    assert abs(white - true) > 0.3 * true  # white SURE misjudges what blurring removes


class BlurWhereBright(torch.nn.Module):
    """Blurs the noisy frame where the anchor is bright, copies it where dark."""

    def forward(self, anchor, noisy, level, variance, base=None, fallback=None, second=None):
        blurred = torch.nn.functional.avg_pool2d(noisy, 3, 1, 1, count_include_pad=False)
        bright = anchor.mean(1, keepdim=True) > 0.5
        return torch.where(bright, blurred, noisy) - (anchor if base is None else base)


def test_sure_follows_noise_that_grows_with_brightness():
    """Shot noise: SURE with the variance per brightness estimates the error; with one
    variance for every pixel it misjudges a refiner that treats bright and dark apart."""
    torch.manual_seed(0)
    model = build("f2r", "tiny")
    clean, _, sigma = textured_clip(batch=4, size=64)
    noise = torch.randn(clean.shape) * (0.01 + 0.2 * clean)
    batch = losses.refiner_batch(model, clean + noise, sigma)
    model.refiner = BlurWhereBright()
    everywhere = torch.ones_like(noise[:, 2, :1], dtype=torch.bool)
    brightness = batch.anchor.mean(1, keepdim=True)
    flat_level = residual_profile(noise[:, 2], everywhere)
    _, relative = brightness_profile(
        noise[:, 2], torch.zeros_like(brightness), brightness, torch.zeros_like(brightness), 1.0
    )
    shot = NoiseProfile(flat_level.colour, flat_level.correlation, relative)
    with torch.no_grad():
        true = float(((losses._refine(model, batch, batch.centre) - clean[:, 2]) ** 2).mean())
        with_brightness = float(losses.f2r_sure(model, batch, shot))
        one_variance = float(losses.f2r_sure(model, batch, flat_level))
    assert with_brightness == pytest.approx(true, rel=0.1)
    assert abs(one_variance - true) > 0.2 * true


def test_stage_two_trains_on_the_level_map_it_is_run_with():
    """With a noise level function, the refiner sees in training the per-pixel level that
    `F2R.forward` gives it."""
    torch.manual_seed(0)
    model = build("f2r", "tiny").eval()
    model.relative_variance = torch.linspace(0.3, 3.0, 8)
    _, noisy, sigma = textured_clip(batch=1)
    batch = losses.refiner_batch(model, noisy, sigma)
    with torch.no_grad():
        trained = losses._refine(model, batch, batch.centre)
        run = model(noisy, sigma)[:, 0]
    assert batch.spread is not None and batch.spread.std() > 0.1
    assert torch.allclose(trained, run, atol=1e-5)


def test_the_anchors_nll_is_charged_at_the_level_of_each_pixels_brightness():
    """Shot noise: told how the noise grows with brightness, the anchor's NLL does not have to
    explain the extra noise of bright pixels with its own uncertainty (which would make the
    posterior trust the noisy frame there)."""
    model = build("f2r", "tiny")
    clean = torch.linspace(0.05, 0.95, 32).expand(2, 5, 3, 32, 32)  # dark left, bright right
    with torch.no_grad():
        stage1 = model.anchor(clean, torch.full((2,), 0.1))[:, :, :3]
    spread = (0.2 + 1.6 * stage1.detach().mean(2, keepdim=True)).sqrt()
    g = torch.Generator().manual_seed(0)
    noisy = clean + 0.1 * spread * torch.randn(clean.shape, generator=g)
    sigma = torch.full((2,), 0.1)
    with torch.no_grad():
        one_level = float(losses.f2r_anchor_loss(model, noisy, sigma))
        model.relative_variance = torch.tensor([0.2 + 1.6 * (b + 0.5) / 8 for b in range(8)])
        per_pixel = float(losses.f2r_anchor_loss(model, noisy, sigma))
    assert per_pixel < one_level - 0.1


class BoxAnchor(torch.nn.Module):
    """A refiner whose output is the anchor blurred by a 3x3 box."""

    def forward(self, anchor, noisy, level, variance, base=None, fallback=None, second=None):
        blurred = torch.nn.functional.avg_pool2d(anchor, 3, 1, 1, count_include_pad=False)
        return blurred - (anchor if base is None else base)


def test_sure_reruns_a_stage_one_that_sees_the_centre_frame_through_its_blind_spot():
    """With a centre view, the anchor at a pixel is blind to its own noise but its neighbours'
    anchors are not, so a refiner that filters the anchor passes that noise through: SURE's
    divergence must follow the nudged frame through stage 1 too, or it misjudges the error."""
    from dataclasses import replace

    from vdenoise.models.f2r import F2R, PRESETS

    torch.manual_seed(0)
    model = F2R(replace(PRESETS["tiny"], centre_view=8))
    with torch.no_grad():  # the anchor: the centre view's estimate (its ring of 2x2 blocks)
        model.estimator.gate.net[-1].bias[4] = 20.0
        model.estimator.centre_view.estimate.weight.zero_()
        model.estimator.centre_view.estimate.bias.zero_()
    clean, noisy, sigma = textured_clip(batch=4, size=64, motion=9)
    batch = losses.refiner_batch(model, noisy, sigma)
    model.refiner = BoxAnchor()
    with torch.no_grad():
        out = losses._refine(model, batch, batch.centre)
        true = float(((out - clean[:, 2]) ** 2).mean())
        sure = sum(float(losses.f2r_sure(model, batch)) for _ in range(2)) / 2
        batch.rerun = None  # stage 1 held: the nudge reaches the refiner only
        held = float(losses.f2r_sure(model, batch))
    assert sure == pytest.approx(true, rel=0.1)
    assert abs(held - true) > 0.2 * true
