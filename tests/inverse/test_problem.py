import numpy as np
import pytest
import torch

from pdekit.core.grid import Grid
from pdekit.inverse import (
    DarcyModel,
    GaussianRandomFieldPrior,
    H1Smoothness,
    HeatSourceModel,
    InverseProblem,
    Observations,
    PointObservation,
    SolveCounter,
    SubsampledObservation,
    random_points,
    taylor_test,
)


def _darcy(n=13, seed=0):
    g = Grid((n, n))
    gen = torch.Generator().manual_seed(seed)
    prior = GaussianRandomFieldPrior(g, alpha=2.0, tau=3.0, sigma=0.7)
    model = DarcyModel(g)
    truth = prior.sample(1, gen)[0]
    obs = Observations.synthetic(
        PointObservation(g, random_points(30, generator=gen)), model.solve(truth), 0.01, gen
    )
    return g, InverseProblem(model, prior), obs, gen


def _heat(n=11, seed=0):
    g = Grid((n, n))
    gen = torch.Generator().manual_seed(seed)
    model = HeatSourceModel(g, n_steps=3, dt=0.02)
    prior = H1Smoothness(g, gamma=1e-4, delta=1e-3)
    truth = GaussianRandomFieldPrior(g).sample(1, gen)[0]
    obs = Observations.synthetic(
        PointObservation(g, random_points(25, generator=gen)), model.solve(truth), 0.01, gen
    )
    return g, InverseProblem(model, prior), obs, gen


@pytest.mark.parametrize("make", [_darcy, _heat])
def test_taylor_remainder_is_second_order(make):
    g, problem, obs, gen = make()
    J = problem.objective(obs)
    m = 0.3 * torch.randn(g.shape, dtype=torch.float64, generator=gen)
    dm = torch.randn(g.shape, dtype=torch.float64, generator=gen)
    out = taylor_test(J, m, dm)
    assert abs(out["slope_r0"] - 1) < 0.15, out
    assert abs(out["slope_r1"] - 2) < 0.1, out


def test_gradient_matches_central_differences_float64():
    g, problem, obs, gen = _darcy(n=9)
    J = problem.objective(obs)
    m = 0.3 * torch.randn(g.shape, dtype=torch.float64, generator=gen)
    _, grad = J.value_and_gradient(m)
    for idx in [(1, 1), (4, 4), (2, 6), (0, 3)]:  # (0, 3): a boundary node still enters the faces
        e = torch.zeros(g.shape, dtype=torch.float64)
        e[idx] = 1.0
        h = 1e-5
        fd = (J.evaluate(m + h * e).value - J.evaluate(m - h * e).value) / (2 * h)
        assert float(grad[idx]) == pytest.approx(fd, rel=1e-6, abs=1e-8)


def test_gauss_newton_action_equals_hessian_for_linear_in_parameter_model():
    # The heat source enters linearly: the GN Hessian is the exact Hessian, so it must match a
    # finite difference of the adjoint gradient.
    g, problem, obs, gen = _heat()
    J = problem.objective(obs)
    m = torch.randn(g.shape, dtype=torch.float64, generator=gen)
    v = torch.randn(g.shape, dtype=torch.float64, generator=gen)
    hv = J.gauss_newton_hessian(m)(v)
    h = 1e-3
    fd = (J.gradient(m + h * v) - J.gradient(m - h * v)) / (2 * h)
    assert torch.allclose(hv, fd, rtol=1e-7, atol=1e-9 * float(fd.abs().max()))


def test_gauss_newton_action_is_symmetric_and_consistent_with_jacobian():
    g, problem, obs, gen = _darcy(n=11)
    J = problem.objective(obs)
    m = 0.3 * torch.randn(g.shape, dtype=torch.float64, generator=gen)
    H = J.gauss_newton_hessian(m, with_prior=False)
    v, w = (torch.randn(g.shape, dtype=torch.float64, generator=gen) for _ in range(2))
    assert float((H(v) * w).sum()) == pytest.approx(float((v * H(w)).sum()), rel=1e-8)
    # <Jv, W Jv> = <v, H v>
    Jv = J.data_jacobian_apply(m, v)
    lhs = float(((Jv / obs.noise.sigma) ** 2).sum())
    assert float((v * H(v)).sum()) == pytest.approx(lhs, rel=1e-8)
    # and J v is the derivative of the observed state
    h = 1e-6
    fd = (obs.operator(J.state(m + h * v)) - obs.operator(J.state(m - h * v))) / (2 * h)
    assert torch.allclose(Jv, fd, rtol=1e-5, atol=1e-10)


def test_solve_counting():
    g, problem, obs, gen = _darcy(n=9)
    counter = SolveCounter()
    J = problem.objective(obs, counter)
    m = torch.zeros(g.shape, dtype=torch.float64)
    J.evaluate(m)
    assert counter.as_dict() == {
        "forward": 1,
        "adjoint": 0,
        "incremental_forward": 0,
        "incremental_adjoint": 0,
        "total": 1,
    }
    J.evaluate(m)  # cached state
    assert counter.total == 1
    J.value_and_gradient(m)  # state cached: only the adjoint
    assert (counter.forward, counter.adjoint) == (1, 1)
    J.value_and_gradient(m + 0.1)
    assert (counter.forward, counter.adjoint) == (2, 2)
    H = J.gauss_newton_hessian(m + 0.1)
    for _ in range(3):
        H(torch.ones(g.shape, dtype=torch.float64))
    assert (counter.incremental_forward, counter.incremental_adjoint) == (3, 3)
    assert counter.total == 10
    # the heat model counts every time step
    g2, problem2, obs2, _ = _heat()
    J2 = problem2.objective(obs2)
    J2.value_and_gradient(torch.zeros(g2.shape, dtype=torch.float64))
    assert (J2.counter.forward, J2.counter.adjoint) == (3, 3)


def test_objective_bad_inputs():
    g, problem, obs, _ = _darcy(n=9)
    with pytest.raises(ValueError, match="shape"):
        problem.objective(obs).evaluate(torch.zeros(8, 8, dtype=torch.float64))
    with pytest.raises(TypeError, match="Observations"):
        problem.objective("data")
    with pytest.raises(ValueError, match="grid"):
        problem.objective(
            Observations(SubsampledObservation(Grid((7, 7)), 2), torch.zeros(4), obs.noise)
        )
    with pytest.raises(ValueError, match="prior acts on shape"):
        InverseProblem(problem.model, H1Smoothness(Grid((7, 7))))
    with pytest.raises(ValueError, match="NaN"):
        problem.objective(obs).evaluate(torch.full(g.shape, np.nan, dtype=torch.float64))
