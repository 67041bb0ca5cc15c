import math

import numpy as np
import pytest
import torch

from pdekit.core.solve_config import SolveConfig
from pdekit.core.stencils import helmholtz
from pdekit.errors import PdekitUserError
from pdekit.pdes.helmholtz import Helmholtz


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def rel_diff(u, v) -> float:
    return float((u - v).norm() / v.norm())


def test_default_medium_makes_the_matrix_indefinite():
    fam = Helmholtz(resolution=20)
    inputs = fam.sample_inputs(2, gen())
    op = helmholtz(fam.grid, inputs["k"])
    for i in range(2):
        ev = np.linalg.eigvalsh(op.to_scipy(i).toarray())
        assert (ev < 0).sum() >= 4 and (ev > 0).sum() > 100
        assert np.abs(ev).min() > 1e-6 * np.abs(ev).max()  # not singular
    k = inputs["k"]
    assert float(k.std()) > 0.1 * fam.k0 * fam.eps  # the medium really varies


def test_manufactured_solution_second_order():
    hs, errs = [], []
    for n in (9, 17, 33, 65):
        fam = Helmholtz(resolution=n)
        X, Y = fam.grid.mesh()
        k = 6.0 * (1 + 0.3 * torch.sin(2 * math.pi * X) * Y)
        u = torch.sin(math.pi * X) * torch.sin(math.pi * Y)
        f = (2 * math.pi**2 - k**2) * u
        sol = fam.solve({"k": k[None], "f": f[None]}, method="spsolve")
        errs.append(float((sol.fields["u"][0] - u).abs().max()))
        hs.append(1.0 / (n - 1))
    slope = float(np.polyfit(np.log(hs), np.log(errs), 1)[0])
    assert abs(slope - 2.0) < 0.1


@pytest.mark.parametrize(
    "method,kw,res",
    [
        ("gmres", {"preconditioner": "mg"}, 14),
        ("gmres", {"preconditioner": "none"}, 10),  # slow: restarted GMRES nearly stagnates
        ("gcrodr", {"preconditioner": "mg"}, 14),
        ("gcrodr", {"preconditioner": "none", "n_chains": 2}, 14),
    ],
)
def test_methods_agree_with_spsolve(method, kw, res):
    fam = Helmholtz(resolution=res, k0=9.0)
    inputs = fam.sample_inputs(3, gen(1))
    ref = fam.solve(inputs, method="spsolve")
    sol = fam.solve(inputs, method=method, rtol=1e-12, **kw)
    assert rel_diff(sol.fields["u"], ref.fields["u"]) < 1e-8
    assert bool((sol.rel_residual <= 1e-12 * (1 + 1e-6)).all())


def test_sources_and_determinism():
    point = Helmholtz(resolution=33).sample_inputs(2, gen(4))
    again = Helmholtz(resolution=33).sample_inputs(2, gen(4))
    assert torch.equal(point["k"], again["k"]) and torch.equal(point["f"], again["f"])
    # a point-like source: the integral is ~1 and the mass is concentrated
    h = 1 / 32
    assert abs(float(point["f"][0].sum()) * h * h - 1) < 0.05
    smooth = Helmholtz(resolution=33, source="grf").sample_inputs(2, gen(4))
    assert torch.equal(smooth["k"], point["k"]) and not torch.equal(smooth["f"], point["f"])


@pytest.mark.parametrize(
    "make",
    [
        lambda: Helmholtz(resolution=0),
        lambda: Helmholtz(k0=-1.0),
        lambda: Helmholtz(resolution=9).solve(
            {"k": torch.ones(1, 9, 9), "f": torch.ones(1, 9, 9)}, method="cg"
        ),
        lambda: Helmholtz(resolution=9).solve(
            {"k": torch.full((1, 9, 9), float("nan")), "f": torch.ones(1, 9, 9)}
        ),
        lambda: Helmholtz(resolution=9).solve({"k": torch.ones(1, 9, 9)}),
    ],
)
def test_bad_input_raises_one_line_value_error(make):
    with pytest.raises(ValueError) as err:
        make()
    assert "\n" not in str(err.value)


def test_krylov_methods_default_to_the_laplacian_v_cycle():
    fam = Helmholtz(resolution=9)
    assert fam.solve_config().preconditioner == "mg"
    assert fam.solve_config(method="gmres").preconditioner == "mg"
    assert fam.solve_config(method="spsolve").preconditioner is None
    assert fam.solve_config(preconditioner="none").preconditioner == "none"
    with pytest.raises(PdekitUserError, match="preconditioner must be one of none, mg"):
        fam.solve_config(method="gmres", preconditioner="jacobi")
    inputs = fam.sample_inputs(2, gen(0))
    sol = fam.solve(inputs, SolveConfig(method="gmres", rtol=1e-10))
    assert sol.extra["preconditioner"] == "mg"
    r = fam.residual(inputs, sol.fields).flatten(1).norm(dim=1)
    assert bool((r <= 1e-10 * fam.rhs(inputs).flatten(1).norm(dim=1) * (1 + 1e-6)).all())
