import torch

from vdenoise.models.gaussian import (
    calibrated,
    covariance,
    negative_log_likelihood,
    posterior_mean,
)


def _random(n=5):
    g = torch.Generator().manual_seed(0)
    mean = torch.rand(n, 3, 1, 1, generator=g)
    factor = torch.randn(n, 6, 1, 1, generator=g) * 0.2
    noisy = torch.rand(n, 3, 1, 1, generator=g)
    return mean, factor, noisy


def _sigma_matrix(factor):
    s = covariance(factor)[..., 0, 0]
    m = torch.stack([s[:, [0, 1, 2]], s[:, [1, 3, 4]], s[:, [2, 4, 5]]], 1)
    return m.double()


def test_posterior_mean_is_the_textbook_formula():
    mean, factor, noisy = _random()
    sigma = torch.tensor(0.1)
    ours = posterior_mean(mean, factor, noisy, sigma)[..., 0, 0].double()
    cov_inv = torch.linalg.inv(_sigma_matrix(factor))
    eye = torch.eye(3, dtype=torch.float64) / 0.1**2
    rhs = cov_inv @ mean[..., 0, 0].double()[..., None] + (
        eye @ noisy[..., 0, 0].double()[..., None]
    )
    expected = torch.linalg.solve(cov_inv + eye, rhs)[..., 0]
    assert torch.allclose(ours, expected, atol=1e-4)


def test_posterior_limits():
    mean, factor, noisy = _random()
    assert torch.allclose(posterior_mean(mean, factor, noisy, torch.tensor(1e-4)), noisy, atol=1e-3)
    tiny = torch.zeros_like(factor)  # prior certain: Sigma = EPS * I
    assert torch.allclose(posterior_mean(mean, tiny, noisy, torch.tensor(0.5)), mean, atol=1e-3)


def test_nll_matches_a_multivariate_normal():
    mean, factor, noisy = _random()
    sigma = torch.tensor(0.05)
    ours = negative_log_likelihood(mean, factor, noisy, sigma)[..., 0, 0].double()
    cov = _sigma_matrix(factor) + torch.eye(3, dtype=torch.float64) * 0.05**2
    dist = torch.distributions.MultivariateNormal(mean[..., 0, 0].double(), cov)
    expected = -dist.log_prob(noisy[..., 0, 0].double()) - 1.5 * torch.log(
        torch.tensor(2 * torch.pi)
    )
    assert torch.allclose(ours, expected, atol=1e-4)


def test_calibration_narrows_a_prior_wider_than_its_error():
    """A blind mean 4/255 off, a prior that claims 20/255: measured on the noisy frames alone
    (around each pixel), the prior is narrowed to what the mean's error is, and the posterior
    keeps less noise; a prior that is right is kept (up to the noise of measuring it in a
    window), and one too narrow is never widened."""
    g = torch.Generator().manual_seed(0)
    clean = 0.2 + 0.6 * torch.rand(2, 4, 3, 64, 64, generator=g)
    sigma = torch.tensor([10 / 255, 10 / 255])
    noisy = clean + sigma.view(2, 1, 1, 1, 1) * torch.randn(clean.shape, generator=g)
    mean = clean + 4 / 255 * torch.randn(clean.shape, generator=g)

    def factor_of(std):
        f = torch.zeros(2, 4, 6, 64, 64)
        f[:, :, [2, 4, 5]] = std  # A's anti-diagonal (a02, a11, a20): Sigma = std^2 I
        return f

    wide = factor_of(20 / 255)
    fixed = calibrated(mean, wide, noisy, sigma)
    assert torch.allclose(fixed[:, :, 2].mean(), torch.tensor(4 / 255), rtol=0.1)
    s = sigma.view(2, 1, 1, 1, 1)
    before = (posterior_mean(mean, wide, noisy, s) - clean).pow(2).mean()
    after = (posterior_mean(mean, fixed, noisy, s) - clean).pow(2).mean()
    assert after < 0.8 * before
    right = factor_of(4 / 255)
    kept = calibrated(mean, right, noisy, sigma)[:, :, [2, 4, 5]] / right[:, :, [2, 4, 5]]
    assert kept.max() <= 1 and kept.mean() > 0.9
    narrow = factor_of(1 / 255)
    assert torch.equal(calibrated(mean, narrow, noisy, sigma), narrow)


def test_calibration_widens_a_prior_narrower_than_its_error_when_allowed():
    """A blind mean 8/255 off (propagation misled), a prior that claims 2/255: with `widest`
    the prior grows to about the measured error (up to `widest` times its variance: what
    exceeds the measurement's own uncertainty), and the posterior
    then keeps more of the noisy frame and lands closer to the clean one."""
    g = torch.Generator().manual_seed(1)
    clean = 0.2 + 0.6 * torch.rand(1, 2, 3, 64, 64, generator=g)
    sigma = torch.tensor([10 / 255])
    noisy = clean + 10 / 255 * torch.randn(clean.shape, generator=g)
    mean = clean + 8 / 255 * torch.randn(clean.shape, generator=g)
    narrow = torch.zeros(1, 2, 6, 64, 64)
    narrow[:, :, [2, 4, 5]] = 2 / 255
    assert torch.equal(calibrated(mean, narrow, noisy, sigma), narrow)  # by default: never
    wide = calibrated(mean, narrow, noisy, sigma, widest=100.0)
    # widened to the measured error, less twice the measurement's standard error (~0.4/255)
    assert 7 / 255 < wide[:, :, 2].mean() < 8 / 255
    capped = calibrated(mean, narrow, noisy, sigma, widest=4.0)
    assert torch.allclose(capped[:, :, 2], torch.tensor(4 / 255))  # variance x4: std x2
    s = sigma.view(1, 1, 1, 1, 1)
    before = (posterior_mean(mean, narrow, noisy, s) - clean).pow(2).mean()
    after = (posterior_mean(mean, wide, noisy, s) - clean).pow(2).mean()
    assert after < 0.8 * before
