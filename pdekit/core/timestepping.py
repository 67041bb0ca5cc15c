"""Time steppers for implicit-explicit (IMEX) equations and one loop that rolls them out.

An equation ``dy/dt = F(y) + G(y)`` is split into an explicit part ``F`` (nonlinear or cheap
terms: advection, sources) and an implicit part ``G`` (stiff, usually linear: viscosity,
diffusion). It is described by three methods (:class:`IMEXEquation`):

* ``explicit_terms(y) -> F(y)``;
* ``implicit_terms(y) -> G(y)``;
* ``implicit_solve(x, step_size) -> y`` solving ``y - step_size * G(y) = x``.

A stepper is a function of ``(equation, dt)`` that returns a step function ``state -> state``:

==================  ==============================================  =====================
stepper             explicit ``F`` / implicit ``G``                 order
==================  ==============================================  =====================
``backward_euler``  forward Euler / backward Euler                  1
``euler_cn``        forward Euler / Crank-Nicolson                  1 (2 if ``F`` is const.)
``crank_nicolson``  Heun (RK2) / Crank-Nicolson, two solves a step  2
``ab2_cn``          Adams-Bashforth 2 / Crank-Nicolson (multistep)  2
``etdrk4``          exponential RK4, ``G`` diagonal, exact          4
==================  ==============================================  =====================

The implicit steppers only ever call ``implicit_solve`` with the fixed step sizes ``dt``
(``backward_euler``) or ``dt / 2`` (the Crank-Nicolson ones), so an equation may factorise or
precondition ``I - step_size G`` once, or carry a warm start or a Krylov recycle space from one
call to the next on itself. ``ab2_cn`` is a two-step method: its state is an :class:`AB2State`
holding the previous explicit term next to the solution. ``etdrk4`` needs a diagonal ``G`` given
by its eigenvalues ``equation.linear_eigenvalues`` (:class:`DiagonalEquation` supplies
``implicit_terms``/``implicit_solve`` from them, so such an equation runs with every stepper).

:func:`trajectory` applies a step function ``n_steps`` times and keeps every
``record_every``-th state (through an optional ``record`` map, e.g. back from Fourier space) and
the running maximum of an optional ``monitor`` (e.g. a CFL number);
:func:`record_schedule` turns ``(t_final, n_records, dt)`` into steps per record.

References
----------
.. [1] U. M. Ascher, S. J. Ruuth, B. T. R. Wetton, "Implicit-explicit methods for time-dependent
   partial differential equations", SIAM J. Numer. Anal. 32 (1995) 797 (IMEX Euler, CN/AB2).
.. [2] U. M. Ascher, S. J. Ruuth, R. J. Spiteri, "Implicit-explicit Runge-Kutta methods for
   time-dependent partial differential equations", Appl. Numer. Math. 25 (1997) 151.
.. [3] S. M. Cox, P. C. Matthews, "Exponential time differencing for stiff systems",
   J. Comput. Phys. 176 (2002) 430 (ETDRK4).
.. [4] A.-K. Kassam, L. N. Trefethen, "Fourth-order time-stepping for stiff PDEs",
   SIAM J. Sci. Comput. 26 (2005) 1214 (the contour-integral coefficients).
.. [5] The stepper-as-a-function layout follows jax-cfd (``jax_cfd.spectral.time_stepping``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch

from pdekit.errors import PdekitUserError

__all__ = [
    "IMEXEquation",
    "ExponentialEquation",
    "DiagonalEquation",
    "AB2State",
    "Trajectory",
    "StepFn",
    "backward_euler",
    "euler_cn",
    "crank_nicolson",
    "ab2_cn",
    "etdrk4",
    "etdrk4_coefficients",
    "trajectory",
    "record_schedule",
]

StepFn = Callable[[Any], Any]


@runtime_checkable
class IMEXEquation(Protocol):
    """``dy/dt = F(y) + G(y)`` split into explicit ``F`` and implicit ``G`` terms.

    States are tensors (real, or complex spectra), batched or not.
    """

    def explicit_terms(self, state: Any) -> Any:
        """``F(state)``."""

    def implicit_terms(self, state: Any) -> Any:
        """``G(state)``."""

    def implicit_solve(self, state: Any, step_size: float) -> Any:
        """The ``y`` with ``y - step_size * G(y) = state``."""


@runtime_checkable
class ExponentialEquation(Protocol):
    """``dy/dt = F(y) + L y`` with a diagonal ``L``: what :func:`etdrk4` needs."""

    #: Real eigenvalues of ``L``, broadcasting elementwise against the state.
    linear_eigenvalues: torch.Tensor

    def explicit_terms(self, state: Any) -> Any:
        """``F(state)``."""


def _real_dtype(dtype: torch.dtype) -> torch.dtype:
    return {torch.complex64: torch.float32, torch.complex128: torch.float64}.get(dtype, dtype)


class DiagonalEquation:
    """Base of equations ``dy/dt = F(y) + L y`` whose ``L`` is diagonal in the state's basis.

    Subclasses set ``linear_eigenvalues`` (a real tensor broadcasting against the state, e.g.
    ``-nu k^2`` in Fourier space; float64 keeps the :func:`etdrk4` coefficients accurate) and
    define ``explicit_terms``. ``implicit_terms`` and ``implicit_solve`` follow, in the state's
    precision, so the equation runs with every stepper of this module.

    Parameters
    ----------
    linear_eigenvalues : Tensor
        The diagonal of ``L``.

    Examples
    --------
    >>> class Decay(DiagonalEquation):
    ...     def explicit_terms(self, y):
    ...         return torch.zeros_like(y)
    >>> eq = Decay(torch.tensor([-1.0, -2.0], dtype=torch.float64))
    >>> eq.implicit_solve(torch.ones(2, dtype=torch.float64), 0.5).tolist()
    [0.6666666666666666, 0.5]
    """

    def __init__(self, linear_eigenvalues: torch.Tensor):
        self.linear_eigenvalues = linear_eigenvalues
        self._cache: dict[tuple, torch.Tensor] = {}

    def _eigenvalues(self, like: torch.Tensor) -> torch.Tensor:
        # cast to the state's own dtype (complex for a spectrum): complex x complex is faster
        # than the promotion of a real factor, and exact when the imaginary part is zero
        key = ("lambda", like.dtype)
        lam = self._cache.get(key)
        if lam is None:
            lam = self._cache[key] = self.linear_eigenvalues.to(_real_dtype(like.dtype)).to(like.dtype)
        return lam

    def explicit_terms(self, state: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def implicit_terms(self, state: torch.Tensor) -> torch.Tensor:
        """``L state``."""
        return self._eigenvalues(state) * state

    def implicit_solve(self, state: torch.Tensor, step_size: float) -> torch.Tensor:
        """``state / (1 - step_size L)`` (the reciprocal is kept per step size)."""
        key = ("solve", state.dtype, float(step_size))
        inverse = self._cache.get(key)
        if inverse is None:
            lam = self.linear_eigenvalues.to(_real_dtype(state.dtype))
            inverse = self._cache[key] = (1.0 / (1.0 - step_size * lam)).to(state.dtype)
        return state * inverse


def _check_dt(dt: float) -> float:
    if isinstance(dt, bool):
        raise PdekitUserError(f"dt must be a positive finite number, got {dt!r}")
    try:
        value = float(dt)
    except (TypeError, ValueError):
        raise PdekitUserError(f"dt must be a positive finite number, got {dt!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise PdekitUserError(f"dt must be a positive finite number, got {dt!r}")
    return value


# ------------------------------------------------------------------------------ steppers
def backward_euler(equation: IMEXEquation, dt: float) -> StepFn:
    """IMEX Euler: ``y' = S(y + dt F(y), dt)``, ``S`` the implicit solve (first order).

    With ``F = 0`` this is backward Euler: L-stable, one ``implicit_solve`` per step.

    Examples
    --------
    >>> eq = _Linear(-1.0)
    >>> step = backward_euler(eq, 0.1)
    >>> round(float(step(torch.tensor(1.0, dtype=torch.float64))), 12)   # 1 / 1.1
    0.909090909091
    """
    dt = _check_dt(dt)

    def step_fn(y):
        return equation.implicit_solve(torch.add(y, equation.explicit_terms(y), alpha=dt), dt)

    return step_fn


def euler_cn(equation: IMEXEquation, dt: float) -> StepFn:
    """Forward Euler for ``F``, Crank-Nicolson for ``G``: ``S(y + dt/2 G(y) + dt F(y), dt/2)``.

    The scheme of the FNO Navier-Stokes generator: first order in general, second order when
    ``F`` does not depend on ``y`` (a fixed source), one ``implicit_solve`` per step.

    Examples
    --------
    >>> step = euler_cn(_Linear(-1.0), 0.1)
    >>> round(float(step(torch.tensor(1.0, dtype=torch.float64))), 12)   # 0.95 / 1.05
    0.904761904762
    """
    dt = _check_dt(dt)
    half = 0.5 * dt

    def step_fn(y):
        rhs = torch.add(y, equation.implicit_terms(y), alpha=half)
        return equation.implicit_solve(rhs.add_(equation.explicit_terms(y), alpha=dt), half)

    return step_fn


def crank_nicolson(equation: IMEXEquation, dt: float) -> StepFn:
    """Crank-Nicolson for ``G`` with Heun's RK2 for ``F``: second order, two solves per step.

    ``g = y + dt/2 G(y)``; ``y1 = S(g + dt F(y), dt/2)``; ``y' = S(g + dt/2 (F(y) + F(y1)), dt/2)``
    (``S`` the implicit solve with step size ``dt/2``). With ``F = 0`` both solves give the plain
    Crank-Nicolson step; use :func:`euler_cn` then (or for a fixed source) to solve once.

    Examples
    --------
    >>> step = crank_nicolson(_Linear(-1.0), 0.1)
    >>> round(float(step(torch.tensor(1.0, dtype=torch.float64))), 12)
    0.904761904762
    """
    dt = _check_dt(dt)
    half = 0.5 * dt

    def step_fn(y):
        g = torch.add(y, equation.implicit_terms(y), alpha=half)
        f0 = equation.explicit_terms(y)
        y1 = equation.implicit_solve(torch.add(g, f0, alpha=dt), half)
        f1 = equation.explicit_terms(y1)
        return equation.implicit_solve(g.add_(f0 + f1, alpha=half), half)

    return step_fn


class AB2State(NamedTuple):
    """The state of :func:`ab2_cn`: the solution and ``F`` at the previous step.

    Start from ``AB2State(y0)``: without a previous ``F`` the first step is :func:`euler_cn`'s.
    """

    state: Any
    previous_explicit: Any = None


def ab2_cn(equation: IMEXEquation, dt: float) -> Callable[[AB2State], AB2State]:
    """Adams-Bashforth 2 for ``F``, Crank-Nicolson for ``G`` (CNAB2): second order.

    ``y' = S(y + dt/2 G(y) + dt (3/2 F(y) - 1/2 F(y_prev)), dt/2)``, one ``implicit_solve`` and one
    ``F`` per step. The step function maps :class:`AB2State` to :class:`AB2State` (the previous
    ``F`` is carried explicitly); the first step, from ``AB2State(y0)``, is forward Euler.

    Examples
    --------
    >>> step = ab2_cn(_Linear(-1.0), 0.1)
    >>> s = step(AB2State(torch.tensor(1.0, dtype=torch.float64)))
    >>> round(float(s.state), 12), s.previous_explicit is not None
    (0.904761904762, True)
    """
    dt = _check_dt(dt)
    half = 0.5 * dt

    def step_fn(carry: AB2State) -> AB2State:
        y, previous = carry
        f = equation.explicit_terms(y)
        f_ab = f if previous is None else torch.add(1.5 * f, previous, alpha=-0.5)
        rhs = torch.add(y, equation.implicit_terms(y), alpha=half).add_(f_ab, alpha=dt)
        return AB2State(equation.implicit_solve(rhs, half), f)

    return step_fn


def etdrk4_coefficients(lin: torch.Tensor, dt: float, n_contour: int = 32) -> dict[str, torch.Tensor]:
    """ETDRK4 coefficients of a diagonal linear part ``lin`` (Kassam-Trefethen contour means).

    Parameters
    ----------
    lin : Tensor
        Real eigenvalues ``L_k`` of the linear operator (any shape); computed in float64.
    dt : float
    n_contour : int
        Points on the unit circle around each ``dt L_k``.

    Returns
    -------
    dict
        ``E = exp(dt L)``, ``E2 = exp(dt L / 2)``, ``Q``, ``f1``, ``f2``, ``f3`` (float64, the
        shape of ``lin``), such that one step reads ``a = E2 v + Q N(v)``, ``b = E2 v + Q N(a)``,
        ``c = E2 a + Q (2 N(b) - N(v))``, ``v' = E v + f1 N(v) + 2 f2 (N(a) + N(b)) + f3 N(c)``.

    Examples
    --------
    >>> c = etdrk4_coefficients(torch.tensor([0.0]), 0.1)
    >>> round(float(c["Q"]), 12), round(float(c["f1"]), 12)   # dt/2 and dt/6 when L = 0
    (0.05, 0.016666666667)
    """
    L = lin.to(torch.float64)
    hl = dt * L
    r = torch.exp(1j * math.pi * (torch.arange(1, n_contour + 1, dtype=torch.float64) - 0.5)
                  / n_contour).to(L.device)
    z = hl.unsqueeze(-1) + r  # (..., M)
    ez = torch.exp(z)
    Q = dt * ((torch.exp(z / 2) - 1) / z).mean(-1).real
    f1 = dt * ((-4 - z + ez * (4 - 3 * z + z**2)) / z**3).mean(-1).real
    f2 = dt * ((2 + z + ez * (z - 2)) / z**3).mean(-1).real
    f3 = dt * ((-4 - 3 * z - z**2 + ez * (4 - z)) / z**3).mean(-1).real
    return {"E": torch.exp(hl), "E2": torch.exp(hl / 2), "Q": Q, "f1": f1, "f2": f2, "f3": f3}


def etdrk4(equation: ExponentialEquation, dt: float, *, n_contour: int = 32) -> StepFn:
    """Cox-Matthews ETDRK4 for ``dy/dt = F(y) + L y``, ``L`` diagonal: fourth order.

    ``L`` (``equation.linear_eigenvalues``) is integrated exactly, so there is no stiffness limit
    from it; ``F`` is evaluated four times per step. The coefficients come from
    :func:`etdrk4_coefficients` in float64 and are rounded to the state's real precision.

    Examples
    --------
    >>> step = etdrk4(_Linear(-1.0), 0.1)
    >>> round(float(step(torch.tensor(1.0, dtype=torch.float64))), 12) == round(math.exp(-0.1), 12)
    True
    """
    dt = _check_dt(dt)
    lam = getattr(equation, "linear_eigenvalues", None)
    if not isinstance(lam, torch.Tensor) or lam.is_complex():
        raise PdekitUserError(
            "etdrk4 needs a diagonal linear part: equation.linear_eigenvalues as a real tensor"
        )
    coeffs64 = etdrk4_coefficients(lam, dt, n_contour)
    cast: dict[torch.dtype, tuple[torch.Tensor, ...]] = {}

    def step_fn(v):
        if v.dtype not in cast:  # rounded to the real precision, then in the state's dtype
            real = _real_dtype(v.dtype)
            cast[v.dtype] = tuple(coeffs64[k].to(real).to(v.dtype)
                                  for k in ("E", "E2", "Q", "f1", "f2", "f3"))
        E, E2, Q, f1, f2, f3 = cast[v.dtype]
        N = equation.explicit_terms
        Nv = N(v)
        a = E2 * v + Q * Nv
        Na = N(a)
        b = E2 * v + Q * Na
        Nb = N(b)
        c = E2 * a + Q * (2 * Nb - Nv)
        Nc = N(c)
        return E * v + f1 * Nv + 2 * f2 * (Na + Nb) + f3 * Nc

    return step_fn


# ---------------------------------------------------------------------------- the loop
@dataclass(frozen=True)
class Trajectory:
    """What :func:`trajectory` returns.

    Attributes
    ----------
    records : Tensor
        ``record(state)`` after ``k * record_every`` steps, ``k = 1 .. n_steps / record_every``,
        stacked along ``time_dim`` (the initial state is not included).
    final : object
        The state after ``n_steps`` steps (an :class:`AB2State` for :func:`ab2_cn`).
    n_steps : int
    monitor_max : Tensor or None
        Elementwise maximum of ``monitor(state)`` over the records (NaN counts as ``+inf``, so a
        trajectory that blew up is seen); ``None`` without a monitor.
    """

    records: torch.Tensor
    final: Any
    n_steps: int
    monitor_max: torch.Tensor | None = None


def _solution_of(state):
    return state.state if isinstance(state, AB2State) else state


def _check_count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise PdekitUserError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def trajectory(
    step_fn: StepFn,
    state: Any,
    n_steps: int,
    *,
    record_every: int = 1,
    record: Callable[[Any], torch.Tensor] | None = None,
    monitor: Callable[[Any], torch.Tensor] | None = None,
    time_dim: int = 0,
) -> Trajectory:
    """Apply ``step_fn`` ``n_steps`` times from ``state``, recording every ``record_every`` steps.

    Parameters
    ----------
    step_fn : callable
        ``state -> state``, e.g. ``euler_cn(equation, dt)``.
    state : object
        Initial state (``AB2State(y0)`` for :func:`ab2_cn`).
    n_steps : int
        Steps to take (>= 1), a multiple of ``record_every``.
    record_every : int
        Steps between records.
    record : callable, optional
        Maps a state to the tensor kept (default: the state itself; ``AB2State.state``).
    monitor : callable, optional
        Maps a state to a diagnostic tensor evaluated at every record (e.g. a CFL number per
        sample); its running maximum is returned.
    time_dim : int
        Dimension of ``records`` along which time runs.

    Returns
    -------
    Trajectory

    Examples
    --------
    >>> step = euler_cn(_Linear(-1.0), 0.1)
    >>> traj = trajectory(step, torch.ones(2, dtype=torch.float64), 10, record_every=5,
    ...                   monitor=lambda y: y.abs())
    >>> traj.records.shape, traj.n_steps, traj.monitor_max.tolist() == traj.records[0].tolist()
    (torch.Size([2, 2]), 10, True)
    """
    if not callable(step_fn):
        raise PdekitUserError(f"step_fn must be callable, got {type(step_fn).__name__}")
    n_steps = _check_count("n_steps", n_steps, 1)
    record_every = _check_count("record_every", record_every, 1)
    if n_steps % record_every:
        raise PdekitUserError(
            f"n_steps = {n_steps} is not a multiple of record_every = {record_every}"
        )
    keep = record if record is not None else _solution_of
    frames = []
    worst = None
    for _ in range(n_steps // record_every):
        for _ in range(record_every):
            state = step_fn(state)
        frames.append(keep(state))
        if monitor is not None:
            value = monitor(state)
            value = torch.nan_to_num(value, nan=math.inf, posinf=math.inf, neginf=-math.inf)
            worst = value if worst is None else torch.maximum(worst, value)
    return Trajectory(torch.stack(frames, dim=time_dim), state, n_steps, worst)


def record_schedule(t_final: float, n_records: int, dt: float) -> int:
    """Time steps per record interval ``t_final / n_records``; ``ValueError`` if not whole.

    The interval must be a whole number of steps to a relative tolerance of 1e-6. Errors are
    :class:`~pdekit.errors.PdekitUserError` (a ``ValueError``) naming the argument.

    Examples
    --------
    >>> record_schedule(50.0, 50, 1e-4)
    10000
    """
    if not (isinstance(n_records, (int, np.integer)) and n_records >= 1):
        raise PdekitUserError(f"n_records must be an integer >= 1, got {n_records!r}")
    if not (math.isfinite(t_final) and t_final > 0):
        raise PdekitUserError(f"t_final must be positive and finite, got {t_final!r}")
    if not (math.isfinite(dt) and dt > 0):
        raise PdekitUserError(f"dt must be positive and finite, got {dt!r}")
    interval = t_final / n_records
    steps = round(interval / dt)
    if steps < 1 or abs(steps * dt - interval) > 1e-6 * interval:
        raise PdekitUserError(
            f"the record interval t_final/n_records = {interval:g} is not a whole number of steps "
            f"dt = {dt:g}; choose dt = {interval:g}/m for an integer m"
        )
    return int(steps)


class _Linear(DiagonalEquation):
    """``dy/dt = lam y`` (for the examples)."""

    def __init__(self, lam: float):
        super().__init__(torch.tensor(lam, dtype=torch.float64))

    def explicit_terms(self, y):
        return torch.zeros_like(y)
