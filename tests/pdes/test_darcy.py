import math

import numpy as np
import pytest
import torch

from pdekit.core.solve_config import SolveConfig
from pdekit.errors import PdekitUserError
from pdekit.pdes import get_pde
from pdekit.pdes.darcy import DarcyFlow


def convergence_slope(hs, errors) -> float:
    return float(np.polyfit(np.log(hs), np.log(errors), 1)[0])


def rel_diff(u, v) -> float:
    return float((u - v).norm() / v.norm())


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_threshold_coefficient_takes_exactly_two_values():
    a = DarcyFlow(resolution=33).sample_inputs(4, gen())["a"]
    assert set(torch.unique(a).tolist()) == {3.0, 12.0}
    frac = float((a == 12.0).double().mean())
    assert 0.2 < frac < 0.8  # a zero-mean field is split roughly in half


def test_lognormal_coefficient_has_log_std_sigma():
    fam = DarcyFlow(resolution=17, coefficient="lognormal", sigma=0.5)
    a = fam.sample_inputs(1500, gen())["a"]
    assert bool((a > 0).all())
    std = torch.log(a).std(0)
    assert 0.45 < float(std.min()) and float(std.max()) < 0.55


def test_sampling_is_deterministic():
    fam = DarcyFlow(resolution=17, source="random")
    x, y = fam.sample_inputs(3, gen(5)), fam.sample_inputs(3, gen(5))
    z = fam.sample_inputs(3, gen(6))
    assert torch.equal(x["a"], y["a"]) and torch.equal(x["f"], y["f"])
    assert not torch.equal(x["f"], z["f"])


def test_manufactured_solution_second_order():
    # u = sin(pi x) sin(pi y), a = 1 + x^2 + 0.5 sin(2 pi y): f = -div(a grad u)
    hs, errs = [], []
    for n in (9, 17, 33, 65):
        fam = DarcyFlow(resolution=n, source="random")
        X, Y = fam.grid.mesh()
        pi = math.pi
        a = 1 + X**2 + 0.5 * torch.sin(2 * pi * Y)
        ax, ay = 2 * X, pi * torch.cos(2 * pi * Y)
        u = torch.sin(pi * X) * torch.sin(pi * Y)
        ux, uy = pi * torch.cos(pi * X) * torch.sin(pi * Y), pi * torch.sin(pi * X) * torch.cos(pi * Y)
        f = -(ax * ux + ay * uy) + a * 2 * pi**2 * u
        sol = fam.solve({"a": a[None], "f": f[None]}, method="spsolve")
        errs.append(float((sol.fields["u"][0] - u).abs().max()))
        hs.append(1.0 / (n - 1))
    assert abs(convergence_slope(hs, errs) - 2.0) < 0.1


@pytest.mark.parametrize(
    "method,kw",
    [
        ("cg", {}),
        ("gmres", {}),
        ("mgpcg", {}),
        ("rcg", {}),
        ("rcg", {"preconditioner": "mg", "n_chains": 2}),
        ("gcrodr", {"ordering": "pca"}),
    ],
)
def test_methods_agree_with_spsolve(method, kw):
    fam = DarcyFlow(resolution=12, coefficient="lognormal", source="random")
    inputs = fam.sample_inputs(4, gen(1))
    ref = fam.solve(inputs, method="spsolve")
    sol = fam.solve(inputs, method=method, rtol=1e-12, **kw)
    assert rel_diff(sol.fields["u"], ref.fields["u"]) < 1e-8
    assert float(sol.rel_residual.max()) <= 1e-12 * (1 + 1e-6)
    assert float(ref.rel_residual.max()) < 1e-12
    assert bool((sol.iterations > 0).all()) and bool((ref.iterations == 0).all())


def test_solution_shape_boundary_and_constant_source():
    fam = DarcyFlow(resolution=17)
    inputs = fam.sample_inputs(2, gen())
    sol = fam.solve(inputs, method="spsolve")
    u = sol.fields["u"]
    assert u.shape == (2, 17, 17) and u.dtype == inputs["a"].dtype
    assert float(u[:, 0].abs().max()) == 0 and float(u[:, :, -1].abs().max()) == 0
    assert float(u[:, 1:-1, 1:-1].min()) > 0  # f = 1 > 0: maximum principle
    explicit = fam.solve({"a": inputs["a"], "f": torch.ones(2, 17, 17, dtype=torch.float64)},
                         method="spsolve")
    assert torch.allclose(explicit.fields["u"], u, rtol=0, atol=1e-14)


def test_registry_and_metadata():
    fam = get_pde("darcy", resolution=9, source="random")
    assert isinstance(fam, DarcyFlow)
    assert fam.field_dims() == {d: ("sample", "x", "y") for d in ("a", "u", "f")}
    assert fam.coords()["x"].tolist() == [i / 8 for i in range(9)]
    assert fam.params()["coefficient"] == "threshold"


@pytest.mark.parametrize(
    "make",
    [
        lambda: DarcyFlow(resolution=-4),
        lambda: DarcyFlow(coefficient="uniform"),
        lambda: DarcyFlow(resolution=9).solve(
            {"a": torch.full((1, 9, 9), float("nan"), dtype=torch.float64)}
        ),
        lambda: DarcyFlow(resolution=9).solve(
            {"a": torch.ones(1, 9, 9, dtype=torch.float64)}, method="lu"
        ),
        lambda: DarcyFlow(resolution=9).solve({"a": torch.ones(1, 8, 8, dtype=torch.float64)}),
        lambda: DarcyFlow(resolution=9).solve({"a": -torch.ones(1, 9, 9, dtype=torch.float64)}),
        lambda: DarcyFlow(resolution=9).sample_inputs(0, gen()),
    ],
)
def test_bad_input_raises_one_line_value_error(make):
    with pytest.raises(ValueError) as err:
        make()
    assert "\n" not in str(err.value)


def test_config_and_keyword_forms_agree_and_record_the_settings():
    fam = DarcyFlow(resolution=12)
    inputs = fam.sample_inputs(3, gen(2))
    cfg = SolveConfig(method="rcg", rtol=1e-10, ordering="pca", n_chains=2)
    by_config = fam.solve(inputs, cfg)
    by_keywords = fam.solve(inputs, method="rcg", rtol=1e-10, ordering="pca", n_chains=2)
    assert torch.equal(by_config.fields["u"], by_keywords.fields["u"])
    assert by_config.extra["ordering"] == "pca" and by_config.extra["n_chains"] == 2
    assert torch.equal(fam.solve(inputs).iterations, fam.solve(inputs, SolveConfig()).iterations)


def test_residual_vanishes_at_the_solution_and_is_differentiable():
    fam = DarcyFlow(resolution=12, coefficient="lognormal", source="random")
    inputs = fam.sample_inputs(2, gen(3))
    sol = fam.solve(inputs, method="spsolve")
    r = fam.residual(inputs, sol.fields)
    assert r.shape == (2, 10, 10)
    assert float(r.abs().max()) < 1e-10 * float(fam.rhs(inputs).abs().max())
    # d/du of 0.5 ||A u - b||^2 is A^T (A u - b): autograd through the stencil and the coefficient
    a = inputs["a"].clone().requires_grad_(True)
    u = (sol.fields["u"] * 1.01).requires_grad_(True)
    loss = 0.5 * fam.residual({"a": a, "f": inputs["f"]}, {"u": u}).square().sum()
    loss.backward()
    assert a.grad is not None and float(a.grad.abs().max()) > 0
    op = fam.operator(inputs)
    expected = op.apply(fam.residual(inputs, {"u": u.detach()}))  # A symmetric: A^T = A
    assert torch.allclose(fam.grid.interior(u.grad), expected, rtol=1e-10, atol=1e-12)


def test_bad_solver_settings_name_the_field():
    inputs = {"a": torch.ones(2, 9, 9, dtype=torch.float64)}
    with pytest.raises(PdekitUserError, match="device comes from the inputs"):
        DarcyFlow(resolution=9).solve(inputs, device="cpu")
    with pytest.raises(PdekitUserError, match="SolveConfig.n_chains"):
        DarcyFlow(resolution=9).solve(inputs, method="rcg", n_chains=0)
    with pytest.raises(PdekitUserError, match=r"n_chains must be in \[1, 2\]"):
        DarcyFlow(resolution=9).solve(inputs, method="rcg", n_chains=3)
    with pytest.raises(PdekitUserError, match="darcy: method must be one of"):
        DarcyFlow(resolution=9).solve(inputs, method="bicgstab")
