import math

import numpy as np
import pytest
import scipy.sparse.linalg as spla
import torch

from pdekit.core.solve_config import SolveConfig
from pdekit.errors import PdekitUserError
from pdekit.pdes.heat import Heat


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def rel_diff(u, v) -> float:
    return float((u - v).norm() / v.norm())


def sine_mode_time_errors(scheme, dts, n=33, kappa=0.5, t_final=0.4):
    """Error against the semi-discrete solution exp(-kappa lambda_h t) sin(pi x): time error only."""
    h = 1.0 / (n - 1)
    lam_h = 4.0 / h**2 * math.sin(math.pi * h / 2) ** 2
    errs = []
    for dt in dts:
        fam = Heat(ndim=1, resolution=n, kappa=kappa, dt=dt, t_final=t_final, n_records=2,
                   scheme=scheme)
        x = torch.linspace(0, 1, n, dtype=torch.float64)
        u0 = torch.sin(math.pi * x)[None]
        u = fam.solve({"u0": u0}, method="spsolve").fields["u"][0, -1]
        exact = math.exp(-kappa * lam_h * t_final) * u0[0]
        errs.append(float((u - exact).abs().max()))
    return errs


@pytest.mark.parametrize("scheme,order", [("backward-euler", 1.0), ("crank-nicolson", 2.0)])
def test_time_order(scheme, order):
    dts = [0.04, 0.02, 0.01, 0.005]
    errs = sine_mode_time_errors(scheme, dts)
    slope = float(np.polyfit(np.log(dts), np.log(errs), 1)[0])
    assert abs(slope - order) < 0.1


def test_space_order_2d():
    # a sine mode decays at the discrete rate; its distance to the exact decay is O(h^2)
    hs, errs = [], []
    for n in (9, 17, 33, 65):
        fam = Heat(ndim=2, resolution=n, kappa=0.1, dt=1e-3, t_final=0.01, n_records=2,
                   scheme="crank-nicolson")
        X, Y = fam.grid.mesh()
        u0 = torch.sin(math.pi * X) * torch.sin(2 * math.pi * Y)
        u = fam.solve({"u0": u0[None]}, method="spsolve").fields["u"][0, -1]
        exact = math.exp(-0.1 * 5 * math.pi**2 * 0.01) * u0
        errs.append(float((u - exact).abs().max()))
        hs.append(1 / (n - 1))
    slope = float(np.polyfit(np.log(hs), np.log(errs), 1)[0])
    assert abs(slope - 2.0) < 0.1


def test_every_step_reuses_one_factorisation(monkeypatch):
    calls = []
    real = spla.splu

    def counting(A, *args, **kwargs):
        calls.append(A.shape)
        return real(A, *args, **kwargs)

    monkeypatch.setattr(spla, "splu", counting)
    fam = Heat(ndim=2, resolution=12, dt=0.01, n_steps=6, record_every=2)
    sol = fam.solve(fam.sample_inputs(3, gen()), method="spsolve")
    assert len(calls) == 1 and sol.extra["factorizations"] == 1
    assert sol.fields["u"].shape == (3, 4, 12, 12)


def test_recycled_cg_keeps_its_space_across_steps():
    # same matrix at every step: the deflation space is never rebuilt, so the only matvecs are
    # the CG iterations (one per iteration), the initial residuals and the confirmations
    fam = Heat(ndim=2, resolution=16, dt=0.5, n_steps=6, record_every=6, kappa=0.1,
               scheme="backward-euler", source="random")
    inputs = fam.sample_inputs(2, gen(1))
    plain = fam.solve(inputs, method="cg")
    rec = fam.solve(inputs, method="rcg", recycle_dim=8)
    assert rec.extra["matvecs"] < 0.8 * plain.extra["matvecs"]
    assert bool((rec.iterations < plain.iterations).all())


@pytest.mark.parametrize("method", ["cg", "mgpcg", "rcg"])
@pytest.mark.parametrize("ndim", [1, 2])
def test_methods_agree_with_spsolve(method, ndim):
    fam = Heat(ndim=ndim, resolution=12, dt=0.01, n_steps=4, record_every=2, source="random")
    inputs = fam.sample_inputs(2, gen(2))
    ref = fam.solve(inputs, method="spsolve")
    sol = fam.solve(inputs, method=method, rtol=1e-12)
    assert rel_diff(sol.fields["u"], ref.fields["u"]) < 1e-8
    assert float(sol.rel_residual.max()) <= 1e-12 * (1 + 1e-6)


def test_initial_condition_layout_and_determinism():
    fam = Heat(ndim=2, resolution=17, dt=0.01, n_steps=10, record_every=5)
    a, b = fam.sample_inputs(2, gen(3)), fam.sample_inputs(2, gen(3))
    assert torch.equal(a["u0"], b["u0"])
    assert float(a["u0"][:, 0].abs().max()) == 0.0  # compatible with u = 0 on the boundary
    sol = fam.solve(a, method="spsolve")
    u = sol.fields["u"]
    assert torch.equal(u[:, 0], a["u0"])
    assert fam.field_dims()["u"] == ("sample", "time", "x", "y")
    assert np.allclose(fam.coords()["time"], [0.0, 0.05, 0.1])
    # the energy decays monotonically without a source
    energy = (u**2).sum(dim=(2, 3))
    assert bool((energy[:, 1:] < energy[:, :-1]).all())


def test_t_final_and_n_records():
    fam = Heat(ndim=1, resolution=9, dt=0.05, t_final=1.0, n_records=5)
    assert fam.steps == 20 and fam.every == 5
    assert np.allclose(fam.coords()["time"], [0, 0.25, 0.5, 0.75, 1.0])


@pytest.mark.parametrize(
    "make",
    [
        lambda: Heat(ndim=3),
        lambda: Heat(resolution=-8),
        lambda: Heat(kappa=-1.0),
        lambda: Heat(dt=0.03, t_final=0.1),
        lambda: Heat(dt=0.01, n_steps=10, n_records=4),
        lambda: Heat(scheme="forward-euler"),
        lambda: Heat(ndim=1, resolution=9).solve({"u0": torch.ones(1, 9)}, method="gmres"),
        lambda: Heat(ndim=1, resolution=9).solve({"u0": torch.full((1, 9), float("nan"))}),
    ],
)
def test_bad_input_raises_one_line_value_error(make):
    with pytest.raises(ValueError) as err:
        make()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("method,pc", [("cg", "jacobi"), ("cg", "mg"), ("rcg", "mg")])
def test_preconditioners_of_the_step_matrix(method, pc):
    fam = Heat(ndim=2, resolution=12, dt=0.01, n_steps=4, record_every=2)
    inputs = fam.sample_inputs(2, gen(2))
    ref = fam.solve(inputs, SolveConfig(method="spsolve"))
    plain = fam.solve(inputs, SolveConfig(method=method, rtol=1e-12))
    sol = fam.solve(inputs, SolveConfig(method=method, rtol=1e-12, preconditioner=pc))
    assert rel_diff(sol.fields["u"], ref.fields["u"]) < 1e-8
    if pc == "jacobi":  # the step matrix has a constant diagonal: Jacobi only rescales
        assert torch.equal(sol.iterations, plain.iterations)
    else:
        assert bool((sol.iterations < plain.iterations).all())


def test_default_config_and_settings_heat_does_not_use():
    fam = Heat(ndim=1, resolution=9, dt=0.01, n_steps=2, record_every=1)
    assert fam.solve_config() == SolveConfig(method="cg", recycle_dim=10)
    inputs = fam.sample_inputs(1, gen())
    for bad in ({"ordering": "none"}, {"n_chains": 2}, {"batch_size": 1}):
        with pytest.raises(PdekitUserError, match=f"heat does not use {next(iter(bad))}"):
            fam.solve(inputs, SolveConfig(method="rcg", **bad))
    with pytest.raises(PdekitUserError, match="heat: method must be one of"):
        fam.solve(inputs, SolveConfig(method="gcrodr"))
