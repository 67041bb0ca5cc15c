import math

import numpy as np
import pytest
import scipy.sparse.linalg as spla
import torch

from pdekit.core.solve_config import SolveConfig
from pdekit.pdes import get_pde
from pdekit.pdes.poisson import Poisson


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def rel_diff(u, v) -> float:
    return float((u - v).norm() / v.norm())


def test_manufactured_solution_second_order():
    hs, errs = [], []
    for n in (9, 17, 33, 65):
        fam = Poisson(resolution=n)
        X, Y = fam.grid.mesh()
        u = torch.sin(math.pi * X) * torch.sin(2 * math.pi * Y) * torch.exp(X)
        # -lap u for u = e^x sin(pi x) sin(2 pi y)
        s, c = torch.sin(math.pi * X), torch.cos(math.pi * X)
        uxx = torch.exp(X) * ((1 - math.pi**2) * s + 2 * math.pi * c) * torch.sin(2 * math.pi * Y)
        uyy = -4 * math.pi**2 * u
        sol = fam.solve({"f": -(uxx + uyy)[None]}, method="spsolve")
        errs.append(float((sol.fields["u"][0] - u).abs().max()))
        hs.append(1.0 / (n - 1))
    slope = float(np.polyfit(np.log(hs), np.log(errs), 1)[0])
    assert abs(slope - 2.0) < 0.1


@pytest.mark.parametrize(
    "method,kw",
    [("cg", {}), ("gmres", {}), ("mgpcg", {}), ("rcg", {}), ("gcrodr", {"n_chains": 2})],
)
def test_methods_agree_with_spsolve(method, kw):
    fam = Poisson(resolution=14)
    inputs = fam.sample_inputs(4, gen(1))
    ref = fam.solve(inputs, method="spsolve")
    sol = fam.solve(inputs, method=method, rtol=1e-12, **kw)
    assert rel_diff(sol.fields["u"], ref.fields["u"]) < 1e-8
    assert float(sol.rel_residual.max()) <= 1e-12 * (1 + 1e-6)


def test_shared_matrix_is_factorised_once(monkeypatch):
    calls = []
    real = spla.splu

    def counting(A, *args, **kwargs):
        calls.append(A.shape)
        return real(A, *args, **kwargs)

    monkeypatch.setattr(spla, "splu", counting)
    fam = Poisson(resolution=12)
    sol = fam.solve(fam.sample_inputs(5, gen()), method="spsolve")
    assert len(calls) == 1 and sol.extra["factorizations"] == 1
    assert float(sol.rel_residual.max()) < 1e-12


def test_recycling_cuts_iterations_for_a_fixed_matrix():
    fam = Poisson(resolution=20)
    inputs = fam.sample_inputs(6, gen(2))
    plain = fam.solve(inputs, method="cg")
    rec = fam.solve(inputs, method="rcg", ordering="none")
    # the first system is plain CG; the later ones start from a deflation space
    assert int(rec.iterations[0]) == int(plain.iterations[0])
    assert float(rec.iterations[1:].double().mean()) < 0.8 * float(plain.iterations[1:].double().mean())


def test_determinism_and_registry():
    fam = get_pde("poisson", resolution=9)
    a, b = fam.sample_inputs(2, gen(3)), fam.sample_inputs(2, gen(3))
    assert torch.equal(a["f"], b["f"])
    assert fam.field_dims() == {"f": ("sample", "x", "y"), "u": ("sample", "x", "y")}


@pytest.mark.parametrize(
    "make",
    [
        lambda: Poisson(resolution=-1),
        lambda: Poisson(resolution=2),
        lambda: Poisson(resolution=9).solve({"f": torch.full((1, 9, 9), float("nan"))}),
        lambda: Poisson(resolution=9).solve({"f": torch.ones(1, 9, 9)}, method="jacobi"),
        lambda: Poisson(resolution=9).solve({"g": torch.ones(1, 9, 9)}),
    ],
)
def test_bad_input_raises_one_line_value_error(make):
    with pytest.raises(ValueError) as err:
        make()
    assert "\n" not in str(err.value)


def test_residual_of_the_solution_and_shared_operator():
    fam = Poisson(resolution=10)
    inputs = fam.sample_inputs(3, gen(5))
    sol = fam.solve(inputs, SolveConfig(method="mgpcg", rtol=1e-11))
    assert fam.operator(inputs).batch == 1  # one matrix for every sample
    r = fam.residual(inputs, sol.fields).flatten(1).norm(dim=1)
    b = fam.rhs(inputs).flatten(1).norm(dim=1)
    assert bool((r <= 1e-11 * b * (1 + 1e-6)).all())
