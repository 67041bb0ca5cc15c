"""Tests of pdekit.core.timestepping: one table of closed-form problems x every stepper, with the
observed order in dt from ``np.polyfit``, plus the loop, the multistep state and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pdekit.core.krylov import cg
from pdekit.core.timestepping import (
    AB2State,
    DiagonalEquation,
    ab2_cn,
    backward_euler,
    crank_nicolson,
    etdrk4,
    euler_cn,
    record_schedule,
    trajectory,
)
from pdekit.errors import PdekitUserError

STEPPERS = {
    "backward_euler": backward_euler,
    "euler_cn": euler_cn,
    "crank_nicolson": crank_nicolson,
    "ab2_cn": ab2_cn,
    "etdrk4": etdrk4,
}


# ------------------------------------------------------------------ problems with closed forms
class Bernoulli(DiagonalEquation):
    """``y' = a y + b y^2`` per component (a diagonal, b y^2 explicit).

    ``z = 1 / y`` solves ``z' = -a z - b``: ``y(t) = 1 / ((1/y0 + b/a) e^{-a t} - b/a)``.
    """

    a = torch.tensor([-1.0, -3.0, -0.5], dtype=torch.float64)
    b = 0.5
    t_final = 1.0

    def __init__(self):
        super().__init__(self.a)

    def explicit_terms(self, y):
        return self.b * y * y

    def initial(self):
        return torch.tensor([1.0, 0.6, 0.8], dtype=torch.float64)

    def exact(self, t):
        a, y0 = self.a, self.initial()
        return 1.0 / ((1.0 / y0 + self.b / a) * torch.exp(-a * t) - self.b / a)


class AdvectionDiffusion(DiagonalEquation):
    """``u_t = kappa u_xx - c u_x`` on the periodic unit interval, in Fourier space.

    Diffusion is the diagonal implicit part; advection ``-i c k v`` is treated explicitly. Every
    mode is exact: ``v_k(t) = v_k(0) exp((-kappa k^2 - i c k) t)``.
    """

    n, kappa, c, t_final = 16, 0.1, 0.5, 0.5

    def __init__(self):
        self.k = 2 * math.pi * torch.arange(self.n // 2 + 1, dtype=torch.float64)
        super().__init__(-self.kappa * self.k**2)

    def explicit_terms(self, v):
        return (-1j * self.c * self.k).to(v.dtype) * v

    def initial(self):
        x = torch.arange(self.n, dtype=torch.float64) / self.n
        return torch.fft.rfft(torch.sin(2 * math.pi * x) + 0.5 * torch.cos(4 * math.pi * x))

    def exact(self, t):
        return self.initial() * torch.exp((-self.kappa * self.k**2 - 1j * self.c * self.k) * t)


class KrylovHeat:
    """``u_t = kappa u_xx + s`` with ``u = 0`` at ``x = 0, 1``: the second-order stencil ``-A`` on
    31 interior nodes, the implicit solve ``(I + step_size kappa A) y = x`` by CG warm-started from
    its previous solution (how a family with a sparse/Krylov solve plugs into the steppers).

    With ``u0 = sin(pi x) + sin(3 pi x) / 2`` and ``s = sin(2 pi x)`` (eigenvectors of ``A`` with
    ``mu_m = 4 (n + 1)^2 sin^2(m pi / (2 (n + 1)))``) the semi-discrete solution is exact:
    ``e^{-kappa mu_1 t} sin(pi x) + e^{-kappa mu_3 t} sin(3 pi x) / 2
    + (1 - e^{-kappa mu_2 t}) / (kappa mu_2) sin(2 pi x)``.
    """

    n, kappa, t_final = 31, 0.1, 0.5

    def __init__(self):
        h = 1.0 / (self.n + 1)
        self.x = torch.arange(1, self.n + 1, dtype=torch.float64) * h
        A = 2 * torch.eye(self.n, dtype=torch.float64)
        A -= torch.diag(torch.ones(self.n - 1, dtype=torch.float64), 1)
        A -= torch.diag(torch.ones(self.n - 1, dtype=torch.float64), -1)
        self.A = A / h**2
        self.source = torch.sin(2 * math.pi * self.x)[None]
        self.mu = {m: 4 / h**2 * math.sin(m * math.pi * h / 2) ** 2 for m in (1, 2, 3)}
        self.previous = None
        self.step_sizes: set[float] = set()
        self.unconverged = 0

    def explicit_terms(self, u):
        return self.source.expand_as(u)

    def implicit_terms(self, u):
        return -self.kappa * u @ self.A  # A is symmetric

    def implicit_solve(self, rhs, step_size):
        self.step_sizes.add(step_size)
        M = torch.eye(self.n, dtype=torch.float64) + step_size * self.kappa * self.A
        x0 = self.previous if self.previous is not None else rhs
        y, info = cg(M, rhs, x0, rtol=1e-14, atol=0.0, maxiter=200)
        self.unconverged += int(torch.as_tensor(info).max() > 0)
        self.previous = y
        return y

    def initial(self):
        return (torch.sin(math.pi * self.x) + 0.5 * torch.sin(3 * math.pi * self.x))[None]

    def exact(self, t):
        k, mu, x = self.kappa, self.mu, self.x
        return (math.exp(-k * mu[1] * t) * torch.sin(math.pi * x)
                + 0.5 * math.exp(-k * mu[3] * t) * torch.sin(3 * math.pi * x)
                + (1 - math.exp(-k * mu[2] * t)) / (k * mu[2]) * torch.sin(2 * math.pi * x))[None]


PROBLEMS = {"bernoulli": Bernoulli, "advection-diffusion": AdvectionDiffusion,
            "krylov-heat": KrylovHeat}

# (problem, stepper, expected order). euler_cn is first order with a state-dependent explicit
# term and second order with a fixed source; ETDRK4 needs a diagonal implicit part.
TABLE = [
    ("bernoulli", "backward_euler", 1.0),
    ("bernoulli", "euler_cn", 1.0),
    ("bernoulli", "crank_nicolson", 2.0),
    ("bernoulli", "ab2_cn", 2.0),
    ("bernoulli", "etdrk4", 4.0),
    ("advection-diffusion", "backward_euler", 1.0),
    ("advection-diffusion", "euler_cn", 1.0),
    ("advection-diffusion", "crank_nicolson", 2.0),
    ("advection-diffusion", "ab2_cn", 2.0),
    ("advection-diffusion", "etdrk4", 4.0),
    ("krylov-heat", "backward_euler", 1.0),
    ("krylov-heat", "euler_cn", 2.0),
    ("krylov-heat", "crank_nicolson", 2.0),
    ("krylov-heat", "ab2_cn", 2.0),
]


def integrate(stepper: str, equation, n_steps: int):
    dt = equation.t_final / n_steps
    step = STEPPERS[stepper](equation, dt)
    y0 = equation.initial()
    if stepper == "ab2_cn":
        return trajectory(step, AB2State(y0), n_steps, record_every=n_steps).final.state
    return trajectory(step, y0, n_steps, record_every=n_steps).final


@pytest.mark.parametrize(("problem", "stepper", "order"), TABLE)
def test_observed_order_in_dt(problem, stepper, order):
    steps = [10, 20, 40, 80]
    errs = []
    for n_steps in steps:
        eq = PROBLEMS[problem]()
        y = integrate(stepper, eq, n_steps)
        exact = eq.exact(eq.t_final)
        errs.append(float((y - exact).abs().max() / exact.abs().max()))
        if isinstance(eq, KrylovHeat):  # the implicit steppers use one fixed step size each
            dt = eq.t_final / n_steps
            assert eq.step_sizes == {dt if stepper == "backward_euler" else dt / 2}
            assert eq.unconverged == 0
    dts = [1.0 / s for s in steps]
    slope = float(np.polyfit(np.log(dts), np.log(errs), 1)[0])
    assert abs(slope - order) < 0.1, (errs, slope)
    assert errs[-1] < 0.05  # converging to the closed form, not merely at the right rate


# ------------------------------------------------------------------------------ the loop etc.
def test_trajectory_records_monitor_and_time_dim():
    eq = Bernoulli()
    step = euler_cn(eq, 0.01)
    y0 = torch.stack([eq.initial(), 2 * eq.initial()])  # (2, 3): a batch of two
    traj = trajectory(step, y0, 12, record_every=4, monitor=lambda y: y.abs().amax(-1),
                      time_dim=1)
    assert traj.records.shape == (2, 3, 3) and traj.n_steps == 12
    y = y0
    for k in range(12):  # the same as stepping by hand
        y = step(y)
        if (k + 1) % 4 == 0:
            assert torch.equal(traj.records[:, (k + 1) // 4 - 1], y)
    assert torch.equal(traj.final, y)
    assert torch.equal(traj.monitor_max, traj.records.abs().amax(-1).amax(1))
    bad = trajectory(lambda s: s * math.nan, y0, 2, monitor=lambda s: s.amax(-1))
    assert bad.monitor_max.tolist() == [math.inf, math.inf]  # NaN (a blow-up) counts as inf
    assert trajectory(step, y0, 3).monitor_max is None


def test_ab2_first_step_is_euler_cn_and_state_is_carried():
    eq = AdvectionDiffusion()
    y0 = eq.initial()
    first = ab2_cn(eq, 0.01)(AB2State(y0))
    assert torch.equal(first.state, euler_cn(eq, 0.01)(y0))
    assert torch.equal(first.previous_explicit, eq.explicit_terms(y0))


@pytest.mark.parametrize("stepper", sorted(STEPPERS))
def test_steppers_keep_a_float32_spectrum_complex64(stepper):
    eq = AdvectionDiffusion()
    y0 = eq.initial().to(torch.complex64)
    state = AB2State(y0) if stepper == "ab2_cn" else y0
    out = STEPPERS[stepper](eq, 0.01)(state)
    y = out.state if stepper == "ab2_cn" else out
    assert y.dtype == torch.complex64


def test_record_schedule():
    assert record_schedule(1.0, 10, 1e-4) == 1000
    with pytest.raises(PdekitUserError, match="whole number of steps"):
        record_schedule(1.0, 3, 0.1)
    with pytest.raises(ValueError, match="n_records"):
        record_schedule(1.0, 0, 0.1)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: trajectory(lambda s: s, torch.zeros(1), 10, record_every=3), "multiple"),
        (lambda: trajectory(lambda s: s, torch.zeros(1), 0), "n_steps"),
        (lambda: trajectory(lambda s: s, torch.zeros(1), 2, record_every=0), "record_every"),
        (lambda: trajectory(None, torch.zeros(1), 2), "step_fn"),
        (lambda: euler_cn(Bernoulli(), 0.0), "dt"),
        (lambda: backward_euler(Bernoulli(), "x"), "dt"),
        (lambda: etdrk4(KrylovHeat(), 0.1), "diagonal linear part"),
    ],
)
def test_bad_input_raises_user_errors(call, match):
    with pytest.raises(PdekitUserError, match=match) as err:
        call()
    assert "\n" not in str(err.value)
