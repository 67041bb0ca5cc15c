import pytest
import torch

from pdekit.core.grid import Grid
from pdekit.inverse import GaussianRandomFieldPrior, H1Smoothness, Tikhonov, TotalVariation


def _priors(g):
    return [
        Tikhonov(g, 0.7, mean=0.2),
        H1Smoothness(g, gamma=0.3, delta=0.1),
        GaussianRandomFieldPrior(g, alpha=2.0, tau=3.0, sigma=0.5),
    ]


def test_h1_matches_explicit_finite_differences():
    g = Grid((9, 7))
    m = torch.randn(9, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    hx, hy = g.h
    grad2 = ((m[1:] - m[:-1]) ** 2).sum() / hx**2 + ((m[:, 1:] - m[:, :-1]) ** 2).sum() / hy**2
    expected = 0.5 * hx * hy * (0.3 * grad2 + 0.1 * (m**2).sum())
    assert float(H1Smoothness(g, 0.3, 0.1).value(m)) == pytest.approx(float(expected), rel=1e-12)


@pytest.mark.parametrize("k", range(3))
def test_quadratic_priors_gradient_hessian_inverse(k):
    g = Grid((8, 10))
    prior = _priors(g)[k]
    gen = torch.Generator().manual_seed(k)
    m = torch.randn(8, 10, dtype=torch.float64, generator=gen)
    v = torch.randn(8, 10, dtype=torch.float64, generator=gen)
    x = m.clone().requires_grad_(True)
    (g_auto,) = torch.autograd.grad(prior.value(x), x)
    assert torch.allclose(prior.gradient(m), g_auto, rtol=1e-10, atol=1e-12)
    hv = prior.hessian_apply(m, v)
    fd = (prior.gradient(m + 1e-3 * v) - prior.gradient(m - 1e-3 * v)) / 2e-3
    assert torch.allclose(hv, fd, rtol=1e-8, atol=1e-10)
    assert torch.allclose(prior.precondition(hv), v, rtol=1e-10, atol=1e-10)
    s = prior.sqrt_inverse_apply(v)
    assert float((prior.hessian_apply(m, s) * s).sum()) == pytest.approx(
        float((v * v).sum()), rel=1e-10
    )


def test_grf_prior_pointwise_std_and_smoothness():
    g = Grid((33, 33))
    prior = GaussianRandomFieldPrior(g, alpha=2.0, tau=3.0, sigma=0.5)
    m = prior.sample(400, torch.Generator().manual_seed(0))
    assert float(m.std()) == pytest.approx(0.5, rel=0.1)
    rough = GaussianRandomFieldPrior(g, alpha=1.0, tau=3.0, sigma=0.5).sample(
        400, torch.Generator().manual_seed(0)
    )
    # alpha = 2 fields are much smoother: smaller mean squared neighbour differences
    d2 = ((m[:, 1:] - m[:, :-1]) ** 2).mean()
    d1 = ((rough[:, 1:] - rough[:, :-1]) ** 2).mean()
    assert float(d2) < 0.5 * float(d1)


def test_total_variation_gradient_and_value():
    g = Grid((12, 12))
    R = TotalVariation(g, alpha=2.0, eps=1e-2)
    X, Y = g.mesh()
    step = (X > 0.5).to(torch.float64)
    # a unit jump across x = 0.5 has total variation 1 (times alpha)
    assert float(R.value(step)) == pytest.approx(2.0, rel=0.05)
    m = torch.randn(12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    v = torch.randn(12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    gr = R.gradient(m)
    fd = (R.value(m + 1e-6 * v) - R.value(m - 1e-6 * v)) / 2e-6
    assert float((gr * v).sum()) == pytest.approx(float(fd), rel=1e-6)
    hv = R.hessian_apply(m, v)
    fd2 = (R.gradient(m + 1e-5 * v) - R.gradient(m - 1e-5 * v)) / 2e-5
    assert torch.allclose(hv, fd2, rtol=1e-5, atol=1e-6)
    assert R.precondition(v) is None


def test_bad_prior_inputs():
    g = Grid((5, 5))
    for fn in (
        lambda: Tikhonov(g, alpha=0.0),
        lambda: H1Smoothness(g, gamma=-1.0),
        lambda: GaussianRandomFieldPrior(g, tau=0.0),
        lambda: Tikhonov(g).value(torch.zeros(4, 4, dtype=torch.float64)),
    ):
        with pytest.raises(ValueError) as info:
            fn()
        assert "\n" not in str(info.value)
