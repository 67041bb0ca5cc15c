"""The shared pieces of the optimizer stack: rules, Steihaug-CG, Coleman-Li, radius update."""

import math
import subprocess
import sys

import pytest
import torch

from pdekit.errors import PdekitUserError
from pdekit.optim import (
    BoundedTrustRegion,
    ColemanLi,
    Damping,
    GaussNewton,
    GaussNewtonCG,
    LineSearch,
    TrustRegion,
    coleman_li_scaling,
    line_search,
    max_step_fraction,
    newton_direction,
    steihaug_cg,
    trust_region_step,
    update_radius,
)

F64 = torch.float64


def test_optim_never_imports_inverse():
    code = "import sys, pdekit.optim; print(any(m.startswith('pdekit.inverse') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_each_optimizer_keeps_its_own_damping_defaults():
    w = torch.zeros(2, requires_grad=True)
    gn, gncg = GaussNewton([w]).param_groups[0], GaussNewtonCG([w]).param_groups[0]
    assert (gn["damping_increase"], gn["damping_decrease"]) == (2.0, 0.5)
    assert (gncg["damping_increase"], gncg["damping_decrease"]) == (1.5, pytest.approx(2 / 3))
    assert gn["damping"] == gncg["damping"] == 1e-3
    # a float sets the initial value of the optimizer's own rule; a kind keeps the other settings
    g = GaussNewtonCG([w], damping=0.5, line_search="grid").param_groups[0]
    assert (g["damping"], g["damping_increase"], g["line_search"], g["c"]) == (0.5, 1.5, "grid", 0.1)


@pytest.mark.parametrize("kwargs", [dict(increase=0.5), dict(decrease=0.0), dict(initial=-1.0),
                                    dict(min=1.0, max=0.5)])
def test_bad_damping_is_a_user_error(kwargs):
    with pytest.raises(PdekitUserError, match="damping"):
        Damping(**kwargs)


@pytest.mark.parametrize("kwargs", [dict(kind="wolfe"), dict(shrink=1.0), dict(c=1.0),
                                    dict(max_steps=0)])
def test_bad_line_search_is_a_user_error(kwargs):
    with pytest.raises(PdekitUserError, match="line_search"):
        LineSearch(**kwargs)


def test_gauss_newton_cg_needs_positive_damping():
    with pytest.raises(PdekitUserError, match="damping must be > 0"):
        GaussNewtonCG([torch.zeros(1, requires_grad=True)], damping=Damping(0.0))


@pytest.mark.parametrize("cls", [TrustRegion, BoundedTrustRegion])
@pytest.mark.parametrize("kwargs, match", [(dict(radius=0.0), "radius"), (dict(eta=0.5), "eta"),
                                           (dict(curvature="bfgs"), "curvature"),
                                           (dict(jacobian="sparse"), "jacobian")])
def test_trust_regions_share_option_validation(cls, kwargs, match):
    with pytest.raises(PdekitUserError, match=match):
        cls([torch.zeros(1, requires_grad=True)], **kwargs)


def test_armijo_strict_rejects_an_equal_value():
    x, d = torch.zeros(1, dtype=F64), torch.ones(1, dtype=F64)
    flat = lambda y: 1.0  # noqa: E731  (the Armijo bound rounds to f0 for a tiny slope)
    strict = line_search(flat, x, d, 1.0, -1e-20, rule=LineSearch(max_steps=2), alpha0=1.0)
    loose = line_search(flat, x, d, 1.0, -1e-20, rule=LineSearch(max_steps=2, strict=False),
                        alpha0=1.0)
    assert not strict.accepted and strict.evaluations == 2
    assert loose.accepted and loose.alpha == 1.0


def test_projected_line_search_uses_the_projected_change():
    x, d = torch.tensor([0.5], dtype=F64), torch.tensor([1.0], dtype=F64)
    f = lambda y: float((y - 2.0).square().sum())  # noqa: E731
    g = 2 * (x - 2.0)
    out = line_search(f, x, d, f(x), float(g @ d), rule=LineSearch(c=1e-4), alpha0=4.0,
                      project=lambda y: y.clamp(max=1.0), gradient=g)
    assert out.accepted and float(out.x) == 1.0


def test_preconditioned_steihaug_solves_spd_systems_exactly():
    gen = torch.Generator().manual_seed(0)
    A = torch.randn(6, 6, generator=gen, dtype=F64)
    H = A @ A.T + 6 * torch.eye(6, dtype=F64)
    g = torch.randn(6, generator=gen, dtype=F64)
    Pinv = torch.diag(1 / H.diagonal())
    out = steihaug_cg(lambda v: H @ v, g, precond=lambda v: Pinv @ v, rtol=1e-13)
    assert out.reason == "converged" and out.iterations <= 6
    torch.testing.assert_close(out.s, -torch.linalg.solve(H, g))
    # the radius is measured in the metric: W = 4 I halves the Euclidean length
    cut = steihaug_cg(lambda v: H @ v, g, 0.01, metric=lambda v: 4 * v)
    assert cut.reason == "boundary" and float(cut.s.norm()) == pytest.approx(0.005)


def test_newton_direction_falls_back_to_preconditioned_steepest_descent():
    g = torch.tensor([1.0, 2.0], dtype=F64)
    d, slope = newton_direction(torch.tensor([float("nan"), 0.0], dtype=F64), g, lambda v: 2 * v)
    torch.testing.assert_close(d, -2 * g)
    assert slope == pytest.approx(-10.0)


def test_coleman_li_scaling_with_tensor_bounds():
    x = torch.tensor([0.5, 0.5, 0.5], dtype=F64)
    g = torch.tensor([1.0, -1.0, 1.0], dtype=F64)
    lower = torch.tensor([0.0, 0.0, -math.inf], dtype=F64)
    v, dv = coleman_li_scaling(x, g, lower, torch.tensor([1.0, 2.0, 1.0], dtype=F64))
    assert v.tolist() == [0.5, 1.5, 1.0] and dv.tolist() == [1.0, -1.0, 0.0]
    sc = ColemanLi.at(x, g, 0.0, 1.0)
    torch.testing.assert_close(sc.C, g.abs())  # g * dv = |g| where a bound is active


def test_trust_region_step_stays_strictly_feasible():
    x = torch.tensor([0.9], dtype=F64)
    g = torch.tensor([-1.0], dtype=F64)  # points to the upper bound 1
    # with the Coleman-Li curvature C the step stops short of the bound by itself: drop C to
    # force a crossing, which the step-back must catch
    sc = ColemanLi(ColemanLi.at(x, g, 0.0, 1.0).D, torch.zeros(1, dtype=F64))
    out = trust_region_step(lambda v: 1e-6 * v, g, 100.0, scaling=sc, x=x, lower=0.0, upper=1.0,
                            rtol=1e-12)
    assert 0.0 < float(x + out.step) < 1.0 and out.scale < 1.0
    assert max_step_fraction(x, out.step, 0.0, 1.0) > 1.0
    assert out.predicted > 0


def test_update_radius_rules():
    assert update_radius(2.0, float("nan"), 1.0, False) == 0.25
    assert update_radius(2.0, 0.5, 2.0, True) == 2.0
    assert update_radius(2.0, 0.9, 2.0, False) == 2.0
    assert update_radius(2.0, 0.9, 2.0, True, max_radius=3.0) == 3.0
    assert update_radius(math.inf, 0.9, 1.5, False) == 3.0  # the first full step sets the radius
