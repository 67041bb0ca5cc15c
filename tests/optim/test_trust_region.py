import numpy as np
import pytest
import scipy.optimize
import torch

from pdekit.optim import BoundedTrustRegion, TrustRegion, steihaug_cg

F64 = torch.float64


def rosenbrock(v):
    """Extended Rosenbrock residuals: minimum 0 at (1, ..., 1)."""
    x, y = v[0::2], v[1::2]
    return torch.cat([10 * (y - x**2), 1 - x])


@pytest.mark.parametrize("curvature, jacobian", [("ggn", "matrix_free"), ("ggn", "dense"),
                                                 ("hessian", "matrix_free")])
def test_trust_region_converges_on_rosenbrock(curvature, jacobian):
    v = torch.tensor([-1.2, 1.0, -1.5, 2.0], dtype=F64, requires_grad=True)
    opt = TrustRegion([v], curvature=curvature, jacobian=jacobian)
    for _ in range(100):
        opt.step(lambda: rosenbrock(v))
    torch.testing.assert_close(v.detach(), torch.ones(4, dtype=F64), atol=1e-8, rtol=0)


def test_rejected_step_never_increases_the_loss():
    v = torch.tensor([-1.2, 1.0], dtype=F64, requires_grad=True)
    opt = TrustRegion([v], radius=100.0)  # far too large at first: steps get rejected
    rejected = 0
    for _ in range(40):
        before = v.detach().clone()
        loss = float(opt.step(lambda: rosenbrock(v)))
        after = 0.5 * float(rosenbrock(v).detach().square().sum())
        assert after <= loss
        if not opt.last_step.accepted:
            rejected += 1
            assert torch.equal(v.detach(), before)
    assert rejected > 0


def test_steihaug_stops_at_the_boundary_on_negative_curvature():
    B = torch.diag(torch.tensor([1.0, -1.0], dtype=F64))
    g = torch.tensor([1.0, 1.0], dtype=F64)
    out = steihaug_cg(lambda x: B @ x, g, 2.0)
    assert out.hit_boundary and out.reason == "negative curvature"
    assert float(out.s.norm()) == pytest.approx(2.0)
    torch.testing.assert_close(out.Hs, B @ out.s)
    assert out.predicted_reduction(g) > 0  # the model decreased


def test_bounded_trust_region_stays_feasible_and_matches_scipy():
    lower = np.array([-2.0, -2.0])
    upper = np.array([0.5, 3.0])  # the unconstrained minimum (1, 1) is outside the box
    v = torch.tensor([-1.2, 1.0], dtype=F64, requires_grad=True)
    opt = BoundedTrustRegion([v], lower=[torch.tensor(lower)], upper=[torch.tensor(upper)])
    for _ in range(100):
        opt.step(lambda: rosenbrock(v))
        x = v.detach().numpy()
        assert np.all(x >= lower) and np.all(x <= upper)
    ref = scipy.optimize.least_squares(
        lambda z: rosenbrock(torch.tensor(z)).numpy(), [-1.2, 1.0], bounds=(lower, upper),
        method="trf", xtol=1e-15, ftol=1e-15, gtol=1e-15,
    )
    np.testing.assert_allclose(v.detach().numpy(), ref.x, atol=1e-6)
    np.testing.assert_allclose(v.detach().numpy(), [0.5, 0.25], atol=1e-6)


def test_bounded_trust_region_moves_an_infeasible_start_inside():
    v = torch.tensor([5.0], dtype=F64, requires_grad=True)
    opt = BoundedTrustRegion([v], lower=0.0, upper=1.0)
    assert 0.0 < float(v) < 1.0
    for _ in range(30):
        opt.step(lambda: v - 3.0)
        assert 0.0 <= float(v) <= 1.0
    assert float(v) == pytest.approx(1.0, abs=1e-6)


def test_float32_trust_region_runs():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    x = torch.linspace(-1, 1, 50)[:, None]
    y = torch.sin(3 * x)
    opt = TrustRegion(net.parameters())
    first = float(opt.step(lambda: (net(x) - y).flatten()))
    for _ in range(40):
        loss = float(opt.step(lambda: (net(x) - y).flatten()))
    assert next(net.parameters()).dtype == torch.float32
    assert loss < 1e-2 * first
