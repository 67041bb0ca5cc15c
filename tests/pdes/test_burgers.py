"""Tests of pdekit.pdes.burgers: the exact Cole-Hopf solution, fourth-order convergence in dt,
ETDRK4 coefficients, and the family contract."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import ive

from pdekit.core import timestepping
from pdekit.errors import PdekitUserError
from pdekit.pdes import get_pde
from pdekit.pdes.burgers import Burgers, burgers_1d, etdrk4_coefficients


@pytest.fixture(autouse=True)
def _one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


def cole_hopf_sine(x, t, nu, n_terms=400):
    """Exact solution of u_t + u u_x = nu u_xx, u(x, 0) = sin(2 pi x), periodic on [0, 1).

    With u = -2 nu phi_x / phi, phi solves the heat equation from
    phi_0 = exp(-(1 - cos 2 pi x) / (4 pi nu)) = e^{-a} (I_0(a) + 2 sum_k I_k(a) cos 2 pi k x),
    a = 1 / (4 pi nu) (the generating function of the modified Bessel functions), so
    u = 8 pi nu sum_k k I_k e^{-4 pi^2 k^2 nu t} sin 2 pi k x
        / (I_0 + 2 sum_k I_k e^{-4 pi^2 k^2 nu t} cos 2 pi k x).
    ``ive`` (exponentially scaled) keeps the ratio finite for small nu.
    """
    a = 1.0 / (4 * math.pi * nu)
    k = np.arange(1, n_terms + 1)
    Ik = ive(k, a) * np.exp(-4 * math.pi**2 * k**2 * nu * t)
    num = 8 * math.pi * nu * (k * Ik) @ np.sin(2 * math.pi * np.outer(k, x))
    den = ive(0, a) + 2 * Ik @ np.cos(2 * math.pi * np.outer(k, x))
    return num / den


def sine(n):
    x = np.arange(n) / n
    return x, torch.tensor(np.sin(2 * math.pi * x))[None]


def test_exact_formula_reproduces_initial_condition():
    x = np.linspace(0, 1, 50, endpoint=False)
    assert np.allclose(cole_hopf_sine(x, 0.0, 0.02), np.sin(2 * math.pi * x), atol=1e-12)


@pytest.mark.parametrize(("nu", "n"), [(0.1, 128), (0.01, 512)])
def test_matches_cole_hopf(nu, n):
    x, u0 = sine(n)
    u, info = burgers_1d(u0, nu=nu, t_final=0.5, n_records=5, dt=1e-3)
    for k, t in enumerate(np.linspace(0, 0.5, 6)):
        exact = cole_hopf_sine(x, t, nu)
        assert np.abs(u[0, k].numpy() - exact).max() < 1e-8 * max(1.0, np.abs(exact).max())
    if nu == 0.01:  # a steep front: max |u_x| grows far beyond 2 pi
        assert np.abs(np.diff(u[0, -1].numpy())).max() * n > 20
    assert info["steps"] == 500


def test_dt_convergence_is_fourth_order():
    nu, n, T = 0.02, 256, 0.5
    x, u0 = sine(n)
    exact = cole_hopf_sine(x, T, nu)
    dts = [T / 40, T / 80, T / 160, T / 320]
    errs = [np.abs(burgers_1d(u0, nu=nu, t_final=T, n_records=1, dt=dt)[0][0, -1].numpy()
                   - exact).max() for dt in dts]
    slope = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert abs(slope - 4.0) < 0.15, (errs, slope)


def test_etdrk4_coefficients_limits():
    assert etdrk4_coefficients is timestepping.etdrk4_coefficients  # the old import path
    # L -> 0: Q = dt/2, f1 = f3 = dt/6, f2 = dt/6 (classical RK4 weights); L very negative:
    # the phi functions decay like 1/|dt L|.
    dt = 0.1
    c = etdrk4_coefficients(torch.tensor([0.0, -1e-8, -1e4], dtype=torch.float64), dt)
    for key, val in (("Q", dt / 2), ("f1", dt / 6), ("f2", dt / 6), ("f3", dt / 6)):
        assert torch.allclose(c[key][:2], torch.full((2,), val, dtype=torch.float64), rtol=1e-10)
    assert float(c["Q"][2]) == pytest.approx(dt / 1e3, rel=1e-6)  # (e^{z/2} - 1)/z ~ -1/z
    assert float(c["E"][2]) == 0.0


def test_family_contract_and_records():
    bg = get_pde("burgers", resolution=64, n_records=4, dt=1e-3)
    assert isinstance(bg, Burgers) and bg.nu == 0.1 and bg.t_final == 1.0
    inputs = bg.sample_inputs(3, torch.Generator().manual_seed(0))
    assert inputs["u0"].shape == (3, 64) and inputs["u0"].dtype == torch.float32
    sol = bg.solve(inputs)
    u = sol.fields["u"]
    assert u.shape == (3, 5, 64) and u.dtype == torch.float32
    assert torch.equal(u[:, 0], inputs["u0"])
    assert sol.iterations.tolist() == [1000] * 3 and sol.rel_residual.tolist() == [0.0] * 3
    assert np.allclose(bg.coords()["time"], [0, 0.25, 0.5, 0.75, 1.0])
    assert np.allclose(bg.coords()["x"], np.arange(64) / 64)
    assert bg.field_dims() == {"u": ("sample", "time", "x")}
    # the viscous flow dissipates energy: mean u^2 decreases record by record
    assert bool(((u**2).mean(-1).diff(dim=1) < 0).all())


def test_initial_condition_law():
    # N(0, 625 (-lap + 25)^(-2)) without the mean mode: pointwise variance sum_k 625 / lam_k^2.
    bg = Burgers(resolution=256)
    u0 = bg.sample_inputs(2000, torch.Generator().manual_seed(1))["u0"].double()
    m = torch.fft.fftfreq(256, d=1 / 256, dtype=torch.float64)[1:]
    var = (625 * (4 * math.pi**2 * m**2 + 25) ** -2.0).sum()
    assert abs(float(u0.var()) / float(var) - 1) < 0.05


def test_float32_matches_float64_and_batching():
    b32 = Burgers(resolution=128, n_records=2, dt=1e-3)
    b64 = Burgers(resolution=128, n_records=2, dt=1e-3, precision="float64")
    u0 = b64.sample_inputs(4, torch.Generator().manual_seed(2))["u0"]
    ref = b64.solve({"u0": u0}).fields["u"]
    assert torch.allclose(b32.solve({"u0": u0.float()}).fields["u"], ref, atol=1e-5)
    single = b64.solve({"u0": u0[2:3]}).fields["u"]
    assert torch.allclose(single[0], ref[2], atol=1e-6)


def test_oversample():
    coarse = Burgers(resolution=32, n_records=1, dt=1e-3, oversample=4, precision="float64")
    fine = Burgers(resolution=128, n_records=1, dt=1e-3, precision="float64")
    u0 = coarse.sample_inputs(2, torch.Generator().manual_seed(3))["u0"]
    assert u0.shape == (2, 128)
    assert torch.equal(coarse.solve({"u0": u0}).fields["u"], fine.solve({"u0": u0}).fields["u"][..., ::4])


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"nu": 0.0}, "nu must be positive"),
        ({"n_records": 0}, "n_records"),
        ({"t_final": 1.0, "n_records": 3, "dt": 0.1}, "whole number of steps"),
        ({"dt": 0.0}, "dt must be positive"),
        ({"resolution": 101}, "even integer"),
        ({"resolution": 6}, "even integer"),
        ({"precision": "float16"}, "precision"),
    ],
)
def test_bad_parameters(params, match):
    with pytest.raises(PdekitUserError, match=match) as err:
        Burgers(**params)
    assert "\n" not in str(err.value)


def test_bad_inputs():
    bg = Burgers(resolution=32, n_records=1, dt=1e-2)
    with pytest.raises(PdekitUserError, match=r"u0 must have shape \(B, 32\)"):
        bg.solve({"u0": torch.zeros(2, 64)})
    with pytest.raises(PdekitUserError, match="no solve configuration"):
        bg.solve({"u0": torch.zeros(2, 32)}, {"method": "cg"})
    with pytest.raises(TypeError, match="rtol"):
        bg.solve({"u0": torch.zeros(2, 32)}, rtol=1e-3)
    # the family contract's progress flag is accepted
    assert bg.solve({"u0": torch.zeros(2, 32)}, progress=True).fields["u"].shape == (2, 2, 32)


def test_written_through_the_dataset_layer(tmp_path):
    from pdekit.data import generate, open_xarray, verify

    bg = Burgers(resolution=32, n_records=2, dt=1e-2)
    generate(bg, tmp_path / "bg", {"train": 3}, shard_size=2, seed=0)
    assert verify(tmp_path / "bg").ok
    ds = open_xarray(tmp_path / "bg", "train")
    assert ds.u.dims == ("sample", "time", "x") and ds.u.shape == (3, 3, 32)
    np.testing.assert_allclose(ds.time.values, [0, 0.5, 1.0])
    assert ds.u.dtype == np.float32 and np.isfinite(ds.u.values).all()
