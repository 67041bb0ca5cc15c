import math

import pytest
import torch

from pdekit.pdes.grf import GaussianRandomField, grf


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_neumann_covariance_matches_cosine_expansion():
    # Independent check of the DCT-I synthesis: build the covariance from explicit cosines.
    n, n_samples = 13, 20000
    field = GaussianRandomField(alpha=2.0, tau=3.0, zero_mean=False)
    g = field.sample(n_samples, (n,), gen())
    x = torch.arange(n, dtype=torch.float64) / (n - 1)
    k = torch.arange(n, dtype=torch.float64)
    phi = torch.cos(math.pi * x[:, None] * k[None, :])
    phi[:, 1:] *= math.sqrt(2.0)
    s = field.mode_std((n,))
    cov_theory = (phi * s**2) @ phi.T
    cov_emp = torch.cov(g.T)
    assert torch.allclose(cov_emp, cov_theory, atol=0.04 * float(cov_theory.diag().max()))
    assert torch.allclose(field.pointwise_std((n,)), cov_theory.diag().sqrt(), rtol=1e-12)


@pytest.mark.parametrize("boundary", ["neumann", "periodic", "dirichlet"])
def test_pointwise_std_matches_theory_2d(boundary):
    field = GaussianRandomField(alpha=2.0, tau=3.0, boundary=boundary)
    g = field.sample(3000, (12, 14), gen(1))
    ps = field.pointwise_std((12, 14))
    emp = g.std(0)
    inner = ps > 0
    ratio = emp[inner] / ps[inner]
    assert float((ratio - 1).abs().max()) < 0.08
    if boundary == "dirichlet":  # fields vanish on the boundary nodes
        assert float(g[:, 0].abs().max()) == 0.0 and float(g[:, :, -1].abs().max()) == 0.0


@pytest.mark.parametrize("boundary", ["neumann", "periodic"])
def test_normalize_gives_unit_pointwise_std(boundary):
    field = GaussianRandomField(alpha=2.0, tau=3.0, boundary=boundary, normalize=True)
    g = field.sample(3000, (16, 16), gen(2))
    emp = g.std(0)
    assert 0.93 < float(emp.min()) and float(emp.max()) < 1.07
    # and without normalisation the std is far from 1 for these parameters
    raw = GaussianRandomField(alpha=2.0, tau=3.0, boundary=boundary).pointwise_std((16, 16))
    assert float(raw.max()) < 0.5


def test_periodic_spectrum():
    n, n_samples = 16, 3000
    field = GaussianRandomField(alpha=2.0, tau=3.0, sigma=2.0, boundary="periodic")
    g = field.sample(n_samples, (n, n), gen(3))
    power = (torch.fft.rfft2(g).abs() ** 2).mean(0) / (n * n) ** 2
    s2 = field.mode_std((n, n)) ** 2
    for k in [(0, 1), (1, 0), (1, 1), (2, 3), (n - 1, 2)]:
        assert abs(float(power[k] / s2[k]) - 1) < 0.1
    # zero_mean: every periodic sample has mean exactly zero
    assert float(g.mean(dim=(1, 2)).abs().max()) < 1e-12


def test_deterministic_given_generator_and_dtype_independent():
    a = grf(3, (9, 9), generator=gen(7))
    b = grf(3, (9, 9), generator=gen(7))
    c = grf(3, (9, 9), generator=gen(8))
    d = grf(3, (9, 9), generator=gen(7), dtype=torch.float32)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert d.dtype == torch.float32 and torch.equal(d, a.float())


@pytest.mark.parametrize(
    "kwargs",
    [dict(alpha=-1.0), dict(sigma=float("nan")), dict(boundary="robin"), dict(tau=0.0, zero_mean=False)],
)
def test_bad_parameters_raise_one_line(kwargs):
    with pytest.raises(ValueError) as err:
        GaussianRandomField(**kwargs)
    assert "\n" not in str(err.value)


def test_bad_shape_raises():
    with pytest.raises(ValueError):
        grf(2, (4, 4, 4, 4))
    with pytest.raises(ValueError):
        grf(-1, (4, 4))
