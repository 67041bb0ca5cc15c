"""Second-order training of PINNs on fixed collocation points: benchmark problems and a timed loop.

The optimizers of :mod:`pdekit.optim` (Gauss-Newton, GN-CG, trust regions) take a closure that
returns the residual vector. For a PINN that vector is made of per-point residuals: the PDE at the
interior collocation points and the Dirichlet condition at the boundary points, each block scaled
by ``1/sqrt(n_points)`` so that ``1/2 ||r||^2`` is half the sum of the blocks' mean squared
residuals (:func:`pdekit.optim.pointwise_residual`).

* :class:`PINNProblem` holds the points, the point-wise residual functions and the exact solution
  of one problem; :meth:`PINNProblem.residual` builds the closure for a network.
* :func:`pinn_problem` builds the two benchmark problems of
  ``experiments/second_order_benchmark.py`` (Poisson 2D, heat 1D).
* :func:`train_pinn_second_order` runs any optimizer on a problem for a wall-time budget or a
  number of steps and returns the error history (:class:`PINNHistory`).

The networks are plain point-wise torch modules ``(N, 2) -> (N, 1)`` (:class:`pdekit.pinn.kan.KAN`,
:class:`pdekit.pinn.networks.MLP`, a deepxde ``FNN``), not deepxde models.

References
----------
.. [1] M. Raissi, P. Perdikaris, G. E. Karniadakis, "Physics-informed neural networks", J. Comput.
   Phys. 378 (2019) 686-707.
.. [2] J. Müller, M. Zeinhofer, "Achieving high accuracy with PINNs via energy natural gradient
   descent", ICML 2023, arXiv:2302.13163 (Gauss-Newton on the PINN residual).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import nn

from pdekit.errors import PdekitUserError
from pdekit.optim import (
    BoundedTrustRegion,
    GaussNewton,
    GaussNewtonCG,
    Linearization,
    ParamVector,
    PointwiseResidual,
    TrustRegion,
    pointwise_residual,
)

__all__ = ["PINNHistory", "PINNProblem", "ProblemName", "pinn_problem", "train_pinn_second_order"]

ProblemName = Literal["poisson2d", "heat1d"]

#: Optimizers whose ``step(closure)`` takes the residual closure; others take gradient steps.
RESIDUAL_OPTIMIZERS: tuple[type, ...] = (GaussNewton, GaussNewtonCG, TrustRegion, BoundedTrustRegion)


def _dirichlet(model: Callable, point_and_value: torch.Tensor) -> torch.Tensor:
    """Residual ``u(x) - g`` of one boundary row ``(x_1, .., x_d, g)``."""
    return model(point_and_value[:-1])[0] - point_and_value[-1]


@dataclasses.dataclass(frozen=True, eq=False)
class PINNProblem:
    """A PINN problem on fixed points: residual functions, collocation points, exact solution.

    Attributes
    ----------
    name : str
    interior : Tensor, shape ``(n, d)``
        Collocation points of the PDE residual.
    boundary : Tensor, shape ``(m, d)``
        Points of the Dirichlet condition.
    boundary_values : Tensor, shape ``(m,)``
        The exact solution at ``boundary``.
    pde : callable ``(model, x) -> Tensor``
        PDE residual at **one** point ``x`` (``model`` is called on unbatched inputs; derivatives
        through ``torch.func``), as :func:`pdekit.optim.pointwise_residual` takes it.
    pde_deepxde : callable ``(x, u) -> Tensor``
        The same residual in deepxde's batched form (``dde.grad``), for deepxde baselines.
    exact : callable ``x -> u``
        Exact solution on ``(..., d)`` points.
    test : Tensor, shape ``(n_test, d)``
        Points of the error estimate.
    u_test : Tensor, shape ``(n_test,)``
        The exact solution at ``test``.
    """

    name: str
    interior: torch.Tensor
    boundary: torch.Tensor
    boundary_values: torch.Tensor
    pde: Callable[[Callable, torch.Tensor], torch.Tensor]
    pde_deepxde: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    exact: Callable[[torch.Tensor], torch.Tensor]
    test: torch.Tensor
    u_test: torch.Tensor

    def residual(self, net: nn.Module) -> PointwiseResidual:
        """The residual closure of ``net``: PDE rows at ``interior``, then Dirichlet rows."""
        rows = torch.cat([self.boundary, self.boundary_values[:, None]], 1)
        return pointwise_residual(net, (self.pde, self.interior), (_dirichlet, rows))

    def relative_l2_error(self, net: nn.Module) -> float:
        """``||u_net - u|| / ||u||`` over the test points."""
        with torch.no_grad():
            u = net(self.test)[:, 0]
        return float((u - self.u_test).norm() / self.u_test.norm())


def _poisson_residuals() -> tuple[Callable, Callable, Callable]:
    pi = math.pi

    def exact(x):
        return torch.sin(pi * x[..., 0]) * torch.sin(pi * x[..., 1])

    def pde(model, x):
        H = torch.func.hessian(lambda y: model(y)[0])(x)
        return -torch.trace(H) - 2 * pi**2 * torch.sin(pi * x[0]) * torch.sin(pi * x[1])

    def pde_deepxde(x, u):
        from pdekit.pinn.networks import import_deepxde

        dde = import_deepxde()
        lap = dde.grad.hessian(u, x, i=0, j=0) + dde.grad.hessian(u, x, i=1, j=1)
        f = 2 * pi**2 * torch.sin(pi * x[:, 0:1]) * torch.sin(pi * x[:, 1:2])
        return -lap - f

    return pde, pde_deepxde, exact


def _heat_residuals() -> tuple[Callable, Callable, Callable]:
    pi = math.pi

    def exact(x):
        return torch.exp(-(pi**2) * x[..., 1] / 4) * torch.sin(pi * x[..., 0])

    def pde(model, x):
        grad = torch.func.jacrev(lambda y: model(y)[0])
        H = torch.func.jacrev(grad)(x)
        return grad(x)[1] - 0.25 * H[0, 0]

    def pde_deepxde(x, u):
        from pdekit.pinn.networks import import_deepxde

        dde = import_deepxde()
        return dde.grad.jacobian(u, x, i=0, j=1) - 0.25 * dde.grad.hessian(u, x, i=0, j=0)

    return pde, pde_deepxde, exact


def pinn_problem(
    name: ProblemName,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
) -> PINNProblem:
    """One of the two benchmark problems on [0, 1]^2, with random points drawn from ``seed``.

    ``"poisson2d"``
        ``-lap u = 2 pi^2 sin(pi x) sin(pi y)``, ``u = 0`` on the boundary (30 points per side),
        exact ``u = sin(pi x) sin(pi y)``.
    ``"heat1d"``
        ``u_t = u_xx / 4`` in ``(x, t)``, exact ``u = exp(-pi^2 t / 4) sin(pi x)`` imposed on the
        initial line ``t = 0`` and the walls ``x = 0, 1`` (40 points each).

    Both have 900 uniform interior points and 10,000 test points.

    Parameters
    ----------
    name : {"poisson2d", "heat1d"}
    device : torch.device or str, optional
        Where the points live (the CPU by default); they are drawn on the CPU.
    dtype : torch.dtype
        Float type of the points (float64, as the benchmark).
    seed : int
        Seed of the point sampler.

    Returns
    -------
    PINNProblem

    Examples
    --------
    >>> problem = pinn_problem("poisson2d")
    >>> tuple(problem.interior.shape), tuple(problem.boundary.shape)
    ((900, 2), (120, 2))
    >>> float(problem.boundary_values.abs().max()) < 1e-15
    True
    """
    if name not in ("poisson2d", "heat1d"):
        raise PdekitUserError(f"unknown PINN problem {name!r}; choose 'poisson2d' or 'heat1d'")
    g = torch.Generator().manual_seed(seed)
    interior = torch.rand(900, 2, generator=g, dtype=dtype)
    s = torch.rand(4, 30, generator=g, dtype=dtype)
    if name == "poisson2d":
        zero, one = torch.zeros(30, dtype=dtype), torch.ones(30, dtype=dtype)
        sides = ((s[0], zero), (s[1], one), (zero, s[2]), (one, s[3]))
        pde, pde_deepxde, exact = _poisson_residuals()
    else:
        s = torch.rand(3, 40, generator=g, dtype=dtype)
        zero, one = torch.zeros(40, dtype=dtype), torch.ones(40, dtype=dtype)
        sides = ((s[0], zero), (zero, s[1]), (one, s[2]))  # (x, t): t = 0, x = 0, x = 1
        pde, pde_deepxde, exact = _heat_residuals()
    boundary = torch.cat([torch.stack(side, 1) for side in sides])
    test = torch.rand(10_000, 2, generator=g, dtype=dtype)
    return PINNProblem(
        name=name,
        interior=interior.to(device),
        boundary=boundary.to(device),
        boundary_values=exact(boundary).to(device),
        pde=pde,
        pde_deepxde=pde_deepxde,
        exact=exact,
        test=test.to(device),
        u_test=exact(test).to(device),
    )


@dataclasses.dataclass(frozen=True)
class PINNHistory:
    """What :func:`train_pinn_second_order` returns.

    Attributes
    ----------
    rel_l2 : float
        Final relative L2 error on the test points.
    seconds : float
        Wall time of the optimizer steps (error evaluations and the warm-up excluded).
    iterations : int
        Optimizer steps taken.
    history : tuple of (float, float)
        ``(seconds, rel_l2)`` at the start, about every ``log_every`` seconds, and at the end.
    """

    rel_l2: float
    seconds: float
    iterations: int
    history: tuple[tuple[float, float], ...]

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (``history`` as a list of pairs)."""
        return {"rel_l2": self.rel_l2, "seconds": self.seconds, "iterations": self.iterations,
                "history": [list(p) for p in self.history]}


def _check_budget(seconds: float | None, steps: int | None, first_order_steps: int) -> None:
    if (seconds is None) == (steps is None):
        raise PdekitUserError("give exactly one of seconds and steps")
    if seconds is not None and not (isinstance(seconds, (int, float)) and seconds >= 0):
        raise PdekitUserError(f"seconds must be a number >= 0, got {seconds!r}")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 0):
        raise PdekitUserError(f"steps must be an integer >= 0, got {steps!r}")
    if isinstance(first_order_steps, bool) or not isinstance(first_order_steps, int) \
            or first_order_steps < 1:
        raise PdekitUserError(
            f"first_order_steps must be an integer >= 1, got {first_order_steps!r}"
        )


def train_pinn_second_order(
    net: nn.Module,
    problem: PINNProblem,
    optimizer: torch.optim.Optimizer,
    *,
    seconds: float | None = None,
    steps: int | None = None,
    log_every: float = 1.0,
    first_order_steps: int = 20,
    warm_up: bool = True,
) -> PINNHistory:
    """Train ``net`` on ``problem`` for a wall-time budget or a number of steps.

    The optimizers of :mod:`pdekit.optim` in :data:`RESIDUAL_OPTIMIZERS` take one
    ``optimizer.step(closure)`` per iteration with the residual closure
    (:meth:`PINNProblem.residual`). Any other torch optimizer (Adam, ...) takes gradient steps on
    ``1/2 ||r||^2``, ``first_order_steps`` of them between two looks at the clock.

    Parameters
    ----------
    net : nn.Module
        Point-wise network ``(N, d) -> (N, 1)``, in the points' dtype and device.
    problem : PINNProblem
    optimizer : torch.optim.Optimizer
        Built on ``net.parameters()`` (in their natural order).
    seconds : float, optional
        Wall-time budget of the optimizer steps: the loop stops at the first look at the clock
        past it. Give this or ``steps``.
    steps : int, optional
        Number of optimizer steps.
    log_every : float
        Seconds of training between two error evaluations of the history (0: after every
        look at the clock).
    first_order_steps : int
        Gradient steps between two looks at the clock (first-order optimizers only).
    warm_up : bool
        Build the dense Jacobian once before starting the clock (``torch.func``'s first trace
        takes seconds); the parameters are not changed.

    Returns
    -------
    PINNHistory

    Examples
    --------
    Twenty Gauss-Newton (ENGD) steps take a 2-16-1 tanh network from an error of about 1 to
    below 1e-2 on the Poisson problem:

    >>> from pdekit.optim import GaussNewton
    >>> problem = pinn_problem("poisson2d")
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    >>> net = net.double()
    >>> out = train_pinn_second_order(net, problem, GaussNewton(net.parameters()), steps=20)
    >>> out.iterations, out.history[0][1] > 1.0, out.rel_l2 < 1e-2
    (20, True, True)
    """
    _check_budget(seconds, steps, first_order_steps)
    closure = problem.residual(net)
    residual_step = isinstance(optimizer, RESIDUAL_OPTIMIZERS)
    if warm_up:
        Linearization(closure, ParamVector(list(net.parameters()))).jacobian()
    spent, iterations, next_log = 0.0, 0, 0.0
    history = [(0.0, problem.relative_l2_error(net))]
    while (spent < seconds) if steps is None else (iterations < steps):
        start = time.perf_counter()
        if residual_step:
            optimizer.step(closure)
            taken = 1
        else:
            taken = first_order_steps if steps is None else min(first_order_steps, steps - iterations)
            for _ in range(taken):
                optimizer.zero_grad()
                loss = 0.5 * closure().square().sum()
                loss.backward()
                optimizer.step()
        spent += time.perf_counter() - start
        iterations += taken
        if spent >= next_log:
            history.append((spent, problem.relative_l2_error(net)))
            next_log = spent + log_every
    error = problem.relative_l2_error(net)
    history.append((spent, error))
    return PINNHistory(rel_l2=error, seconds=spent, iterations=iterations, history=tuple(history))
