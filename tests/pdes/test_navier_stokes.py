"""Tests of pdekit.pdes.navier_stokes: exact solutions, dt-convergence order, agreement with an
independent integrating-factor RK4 stepper, energy/enstrophy budgets, the family contract."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pdekit.core.timestepping import crank_nicolson, trajectory
from pdekit.errors import PdekitUserError
from pdekit.pdes import get_pde
from pdekit.pdes.navier_stokes import (
    NavierStokes,
    VorticityEquation,
    fno_forcing,
    navier_stokes_2d,
)


@pytest.fixture(autouse=True)
def _one_thread():
    # The CI box has 2 cores shared with other jobs: torch FFTs are far slower oversubscribed.
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


# ------------------------------------------------------------------ an independent reference
class IFRK4:
    """Integrating-factor RK4 for the forced vorticity equation, in numpy (full complex FFTs).

    Written independently of pdekit: own wavenumbers, full ``fft2`` instead of ``rfft2``, the
    exponential of the viscous operator instead of Crank-Nicolson, RK4 for the rest.
    """

    def __init__(self, n, nu, forcing=None):
        m = np.fft.fftfreq(n, d=1.0 / n)
        kx, ky = np.meshgrid(2 * np.pi * m, 2 * np.pi * m, indexing="ij")
        k2 = kx**2 + ky**2
        self.kx, self.ky, self.k2, self.nu = kx, ky, k2, nu
        self.inv = np.where(k2 > 0, 1.0 / np.where(k2 > 0, k2, 1.0), 0.0)
        self.keep = ((3 * np.abs(m)[:, None] < n) & (3 * np.abs(m)[None, :] < n)).astype(float)
        self.f_hat = np.zeros((n, n)) if forcing is None else np.fft.fft2(forcing)

    def rhs(self, w_hat):
        psi = w_hat * self.inv
        u = np.fft.ifft2(1j * self.ky * psi).real
        v = np.fft.ifft2(-1j * self.kx * psi).real
        wx = np.fft.ifft2(1j * self.kx * w_hat).real
        wy = np.fft.ifft2(1j * self.ky * w_hat).real
        return -self.keep * np.fft.fft2(u * wx + v * wy) + self.f_hat

    def run(self, w0, t_final, dt):
        steps = round(t_final / dt)
        E = np.exp(-self.nu * self.k2 * dt / 2)
        w = np.fft.fft2(w0)
        for _ in range(steps):
            k1 = self.rhs(w)
            k2 = self.rhs(E * (w + 0.5 * dt * k1))
            k3 = self.rhs(E * w + 0.5 * dt * k2)
            k4 = self.rhs(E * E * w + dt * E * k3)
            w = E * E * w + dt / 6 * (E * E * k1 + 2 * E * (k2 + k3) + k4)
        return np.fft.ifft2(w).real


def band_limited_w0(n, batch=2, seed=0):
    """A GRF initial vorticity with every mode beyond the 2/3 rule removed (float64)."""
    ns = NavierStokes(resolution=n, precision="float64")
    w0 = ns.sample_inputs(batch, torch.Generator().manual_seed(seed))["w0"]
    m = torch.fft.fftfreq(n, d=1.0 / n)
    keep = (3 * m.abs()[:, None] < n) & (3 * m.abs()[None, : n // 2 + 1] < n)
    return torch.fft.irfft2(torch.fft.rfft2(w0) * keep, s=(n, n))


def rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


# ---------------------------------------------------------------------------- exact solution
@pytest.mark.parametrize("scheme", ["euler-cn", "ab2-cn"])
def test_single_mode_forcing_matches_exact_solution(scheme):
    # f is one Laplacian eigenmode (|k|^2 = 8 pi^2) and the advection of such a mode vanishes, so
    # from w0 = 0: w(t) = f (1 - exp(-8 pi^2 nu t)) / (8 pi^2 nu).
    n, nu, T = 16, 0.01, 1.0
    f = fno_forcing(n, dtype=torch.float64)
    w, _ = navier_stokes_2d(torch.zeros(1, n, n, dtype=torch.float64), nu=nu, t_final=T,
                            n_records=4, dt=1e-3, forcing=f, scheme=scheme)
    lam = 8 * math.pi**2 * nu
    for k, t in enumerate(np.linspace(0, T, 5)):
        exact = f * (1 - math.exp(-lam * t)) / lam
        assert torch.allclose(w[0, k], exact, atol=2e-4 * float(exact.abs().max()) + 1e-14)


def test_against_independent_ifrk4():
    n, nu, T = 32, 1e-3, 1.0
    w0 = band_limited_w0(n)
    f = fno_forcing(n, dtype=torch.float64)
    ref = IFRK4(n, nu, f.numpy())
    expected = np.stack([ref.run(w0[i].numpy(), T, 1e-2) for i in range(w0.shape[0])])
    w_ab2, _ = navier_stokes_2d(w0, nu=nu, t_final=T, n_records=1, dt=1e-3, forcing=f,
                                scheme="ab2-cn")
    w_fno, info = navier_stokes_2d(w0, nu=nu, t_final=T, n_records=1, dt=2e-4, forcing=f)
    assert rel(w_ab2[:, -1], expected) < 1e-5
    assert rel(w_fno[:, -1], expected) < 1e-3
    assert float(rel(w0, w_fno[:, -1])) > 0.1  # the flow did evolve
    assert info["steps"] == 5000 and float(info["cfl"].max()) < 0.1


def test_equation_runs_with_another_stepper():
    # The family's equation is a plain IMEX equation: CN/Heun (not a family scheme) also agrees
    # with the independent reference to second-order accuracy.
    n, nu, T, dt = 32, 1e-3, 1.0, 1e-3
    w0 = band_limited_w0(n)
    f = fno_forcing(n, dtype=torch.float64)
    expected = np.stack([IFRK4(n, nu, f.numpy()).run(w0[i].numpy(), T, 1e-2) for i in range(2)])
    eq = VorticityEquation(n, nu, forcing=f, dtype=torch.float64)
    traj = trajectory(crank_nicolson(eq, dt), torch.fft.rfft2(w0), round(T / dt), record_every=500)
    assert rel(torch.fft.irfft2(traj.final, s=(n, n)), expected) < 1e-5
    assert traj.records.shape == (2, 2, n, n // 2 + 1)  # (records, batch, rfft2 layout)


@pytest.mark.parametrize(("scheme", "order"), [("euler-cn", 1.0), ("ab2-cn", 2.0)])
def test_dt_convergence_order(scheme, order):
    n, nu, T = 32, 1e-3, 0.5
    w0 = band_limited_w0(n, batch=1, seed=1)
    f = fno_forcing(n, dtype=torch.float64)
    expected = IFRK4(n, nu, f.numpy()).run(w0[0].numpy(), T, 5e-3)
    dts = [T / 20, T / 40, T / 80, T / 160]
    errs = []
    for dt in dts:
        w, _ = navier_stokes_2d(w0, nu=nu, t_final=T, n_records=1, dt=dt, forcing=f,
                                scheme=scheme)
        errs.append(rel(w[0, -1], expected))
    slope = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.1, (errs, slope)


def test_unforced_energy_and_enstrophy_budgets():
    # Without forcing the 2/3-truncated Galerkin system conserves energy and enstrophy in the
    # advection term, so dE/dt = -2 nu Z and dZ/dt = -2 nu P exactly (P: palinstrophy).
    n, nu, T, K = 32, 5e-3, 1.0, 40
    w0 = band_limited_w0(n, batch=2, seed=2)
    w, _ = navier_stokes_2d(w0, nu=nu, t_final=T, n_records=K, dt=1e-3, scheme="ab2-cn")
    w_hat = torch.fft.fft2(w)
    m = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64)
    k2 = (2 * math.pi) ** 2 * (m[:, None] ** 2 + m[None, :] ** 2)
    power = w_hat.abs() ** 2 / n**4  # sum over modes = mean of w^2
    Z = 0.5 * power.sum((-2, -1))
    E = 0.5 * (power * torch.where(k2 > 0, 1 / torch.where(k2 > 0, k2, 1), 0)).sum((-2, -1))
    P = 0.5 * (power * k2).sum((-2, -1))
    assert bool((Z.diff(dim=1) < 0).all()) and bool((E.diff(dim=1) < 0).all())
    t = np.linspace(0, T, K + 1)
    dZ = Z[:, -1] - Z[:, 0]
    dE = E[:, -1] - E[:, 0]
    assert torch.allclose(dZ, torch.tensor(-2 * nu * np.trapezoid(P.numpy(), t, axis=1)), rtol=2e-3)
    assert torch.allclose(dE, torch.tensor(-2 * nu * np.trapezoid(Z.numpy(), t, axis=1)), rtol=2e-3)
    assert float((dZ / Z[:, 0]).abs().min()) > 0.01  # a visible decay


# ------------------------------------------------------------------------- family contract
def test_family_shapes_dtypes_and_records():
    ns = get_pde("navier-stokes", resolution=16, t_final=0.2, n_records=4, dt=0.01)
    assert isinstance(ns, NavierStokes)
    inputs = ns.sample_inputs(3, torch.Generator().manual_seed(0))
    assert inputs["w0"].shape == (3, 16, 16) and inputs["w0"].dtype == torch.float32
    sol = ns.solve(inputs)
    w = sol.fields["w"]
    assert w.shape == (3, 5, 16, 16) and w.dtype == torch.float32
    assert torch.equal(w[:, 0], inputs["w0"])
    assert sol.iterations.tolist() == [20] * 3 and sol.rel_residual.tolist() == [0.0] * 3
    c = ns.coords()
    assert np.allclose(c["time"], [0, 0.05, 0.1, 0.15, 0.2]) and np.allclose(c["x"], np.arange(16) / 16)
    assert ns.field_dims() == {"w": ("sample", "time", "x", "y")}
    assert ns.params()["nu"] == 1e-3


def test_batch_equals_single_samples_and_float64_option():
    ns = NavierStokes(resolution=16, t_final=0.1, n_records=1, dt=0.01, precision="float64")
    w0 = ns.sample_inputs(3, torch.Generator().manual_seed(4))["w0"]
    assert w0.dtype == torch.float64
    batch = ns.solve({"w0": w0}).fields["w"]
    assert batch.dtype == torch.float32
    for i in range(3):
        assert torch.allclose(ns.solve({"w0": w0[i : i + 1]}).fields["w"][0], batch[i], atol=1e-6)


def test_initial_condition_law_matches_fno_amplitude():
    # Pointwise variance of N(0, 7^3 (-lap + 49)^(-2.5)) without the mean mode, on 64^2.
    ns = NavierStokes(resolution=64)
    w0 = ns.sample_inputs(400, torch.Generator().manual_seed(0))["w0"].double()
    m = torch.fft.fftfreq(64, d=1 / 64, dtype=torch.float64)
    lam = 4 * math.pi**2 * (m[:, None] ** 2 + m[None, :] ** 2) + 49
    var = (7.0**3 * lam**-2.5).sum() - 7.0**3 * 49**-2.5
    assert abs(float(w0.var()) / float(var) - 1) < 0.05
    assert abs(float(w0.mean(dim=(-2, -1)).abs().max())) < 1e-6  # mean mode removed


def test_oversample_stores_every_mth_node():
    coarse = NavierStokes(resolution=8, t_final=0.1, n_records=1, dt=0.01, oversample=2,
                          precision="float64")
    fine = NavierStokes(resolution=16, t_final=0.1, n_records=1, dt=0.01, precision="float64")
    w0 = fine.sample_inputs(2, torch.Generator().manual_seed(5))["w0"]
    assert coarse.sample_inputs(2, torch.Generator().manual_seed(5))["w0"].shape == (2, 16, 16)
    a = coarse.solve({"w0": w0}).fields["w"]
    b = fine.solve({"w0": w0}).fields["w"][..., ::2, ::2]
    assert a.shape == (2, 2, 8, 8) and torch.equal(a, b)
    assert np.allclose(coarse.coords()["x"], np.arange(8) / 8)


def test_blow_up_is_reported():
    ns = NavierStokes(resolution=16, t_final=100.0, n_records=1, dt=0.5, nu=1e-5)
    w0 = 300 * ns.sample_inputs(1, torch.Generator().manual_seed(0))["w0"]
    sol = ns.solve({"w0": w0})
    assert math.isinf(float(sol.rel_residual[0])) and float(sol.extra["cfl"][0]) > 1


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"nu": 0.0}, "nu must be positive"),
        ({"nu": -1e-3}, "nu must be positive"),
        ({"n_records": 0}, "n_records"),
        ({"t_final": 1.0, "n_records": 3, "dt": 0.1}, "whole number of steps"),
        ({"t_final": -1.0}, "t_final"),
        ({"resolution": 33}, "even integer"),
        ({"resolution": 4}, "even integer"),
        ({"scheme": "rk4"}, "scheme"),
        ({"forcing": "kolmogorov"}, "forcing"),
        ({"oversample": 0}, "oversample"),
    ],
)
def test_bad_parameters_raise_one_line_errors(params, match):
    with pytest.raises(PdekitUserError, match=match) as err:
        NavierStokes(**params)
    assert "\n" not in str(err.value)


def test_bad_inputs():
    ns = NavierStokes(resolution=16, t_final=0.1, n_records=1, dt=0.01)
    with pytest.raises(PdekitUserError, match=r"w0 must have shape \(B, 16, 16\)"):
        ns.solve({"w0": torch.zeros(2, 8, 8)})
    with pytest.raises(PdekitUserError, match="needs inputs"):
        ns.solve({"u0": torch.zeros(2, 16, 16)})


def test_written_through_the_dataset_layer(tmp_path):
    from pdekit.data import PDEDataset, generate, open_xarray, verify

    ns = NavierStokes(resolution=16, t_final=0.2, n_records=4, dt=0.01)
    out = tmp_path / "ns"
    summary = generate(ns, out, {"train": 3, "test": 2}, shard_size=2, seed=1)
    assert summary.n_samples == 5 and verify(out).ok
    ds = open_xarray(out, "train")
    assert ds.w.dims == ("sample", "time", "x", "y") and ds.w.shape == (3, 5, 16, 16)
    np.testing.assert_allclose(ds.time.values, [0, 0.05, 0.1, 0.15, 0.2])
    np.testing.assert_allclose(ds.x.values, np.arange(16) / 16)
    assert int(ds.iterations[0]) == 20
    again = generate(ns, out, {"train": 3, "test": 2}, shard_size=2, seed=1)  # resume: no work
    assert again.n_generated == 0
    pairs = PDEDataset(out, "train", inputs=("w",), targets=("w",), time_window=(1, 4))
    x, y = pairs[0]
    assert x.shape == (1, 16, 16) and y.shape == (4, 16, 16)
