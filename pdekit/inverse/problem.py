"""The reduced objective ``J(m) = misfit(u(m)) + R(m)``, its adjoint gradient and GN Hessian.

``J(m) = 0.5 ||(O u(m) - d) / sigma||^2 + R(m)`` with ``u(m)`` from a forward model
(:mod:`pdekit.inverse.forward`), ``O, d, sigma`` from :class:`~pdekit.inverse.observations.Observations`
and ``R`` from :mod:`pdekit.inverse.priors`.

* The gradient is taken by autograd through :func:`pdekit.core.diffsolve.differentiable_solve`:
  one forward and one adjoint solve (the forward solve is skipped when the state at ``m`` is cached).
* The Gauss-Newton Hessian action ``H v = J_u^T W J_u v + R'' v`` (``J_u = O du/dm``,
  ``W = sigma^-2``) costs one incremental forward and one incremental adjoint solve.
* :func:`taylor_test` checks the gradient: ``|J(m + h dm) - J(m) - h <g, dm>| = O(h^2)``.

Every solve is counted in :attr:`Objective.counter` (a
:class:`~pdekit.inverse.forward.SolveCounter`).

References
----------
.. [1] U. Villa, N. Petra, O. Ghattas, "hIPPYlib: an extensible software framework for large-scale
   inverse problems governed by PDEs: Part I", ACM Trans. Math. Softw. 47 (2021) 16.
.. [2] J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer, 2006, ch. 10
   (Gauss-Newton).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pdekit.inverse.forward import SolveCounter
from pdekit.inverse.observations import Observations
from pdekit.inverse.priors import Regulariser
from pdekit.optim.steihaug import dot  # re-exported (the inner product of every driver)

__all__ = ["InverseProblem", "Objective", "Evaluation", "taylor_test", "dot"]


@dataclass(frozen=True, eq=False)
class InverseProblem:
    """A forward model and a regulariser (prior); combine with data via :meth:`objective`.

    Examples
    --------
    >>> import torch
    >>> from pdekit.core.grid import Grid
    >>> from pdekit.inverse import DarcyModel, H1Smoothness, InverseProblem, Observations
    >>> from pdekit.inverse import SubsampledObservation
    >>> g = Grid((17, 17))
    >>> problem = InverseProblem(DarcyModel(g), H1Smoothness(g, gamma=1e-3))
    >>> truth = torch.zeros(17, 17, dtype=torch.float64)
    >>> obs = Observations.synthetic(SubsampledObservation(g, 4), problem.model.solve(truth), 0.01,
    ...                              torch.Generator().manual_seed(0))
    >>> J = problem.objective(obs)
    >>> ev, grad = J.value_and_gradient(truth)
    >>> grad.shape, J.counter.forward, J.counter.adjoint
    (torch.Size([17, 17]), 1, 1)
    """

    model: object
    prior: Regulariser

    def __post_init__(self):
        for attr in ("solve", "linearize", "param_shape"):
            if not hasattr(self.model, attr):
                raise TypeError(
                    f"model must be a forward model with .{attr} (see pdekit.inverse.forward)"
                )
        if not isinstance(self.prior, Regulariser):
            raise TypeError(
                f"prior must be a pdekit.inverse Regulariser, got {type(self.prior).__name__}"
            )
        if tuple(self.prior.shape) != tuple(self.model.param_shape):
            raise ValueError(
                f"prior acts on shape {tuple(self.prior.shape)} but the model's parameter has shape "
                f"{tuple(self.model.param_shape)}"
            )

    def objective(
        self, observations: Observations, counter: SolveCounter | None = None
    ) -> Objective:
        return Objective(self, observations, counter)


@dataclass(frozen=True)
class Evaluation:
    """``value = misfit + regulariser`` at one parameter (floats)."""

    value: float
    misfit: float
    regulariser: float


class Objective:
    """``J(m)`` for one data set: values, adjoint gradients and Gauss-Newton Hessian actions."""

    def __init__(self, problem: InverseProblem, observations: Observations, counter=None):
        if not isinstance(observations, Observations):
            raise TypeError(
                f"observations must be pdekit.inverse.Observations, got {type(observations).__name__}"
            )
        grid = getattr(problem.model, "grid", None)
        if grid is not None and observations.operator.grid.shape != grid.shape:
            raise ValueError(
                f"observations live on a grid of shape {observations.operator.grid.shape}, the model "
                f"on {grid.shape}"
            )
        self.problem = problem
        self.model = problem.model
        self.prior = problem.prior
        self.observations = observations
        self.counter = counter if counter is not None else SolveCounter()
        self._m: torch.Tensor | None = None
        self._u: torch.Tensor | None = None

    # ------------------------------------------------------------------ state cache
    def _cached(self, m: torch.Tensor) -> torch.Tensor | None:
        if self._m is not None and self._m.shape == m.shape and torch.equal(self._m, m.detach()):
            return self._u
        return None

    def state(self, m: torch.Tensor) -> torch.Tensor:
        """``u(m)`` (one forward solve unless cached)."""
        u = self._cached(m)
        if u is None:
            with torch.no_grad():
                u = self.model.solve(m.detach(), self.counter)
            self._m, self._u = m.detach().clone(), u.detach()
        return u

    # ------------------------------------------------------------------ values
    def evaluate(self, m: torch.Tensor) -> Evaluation:
        """``J(m)`` (one forward solve unless the state at ``m`` is cached)."""
        u = self.state(m)
        mis = float(self.observations.misfit(u))
        reg = float(self.prior.value(m.detach()))
        return Evaluation(mis + reg, mis, reg)

    def value_and_gradient(self, m: torch.Tensor) -> tuple[Evaluation, torch.Tensor]:
        """``J(m)`` and ``dJ/dm`` by the adjoint method (forward + adjoint solve)."""
        cached = self._cached(m)
        x = m.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            u = self.model.solve(x, self.counter, x0=cached)
            mis = self.observations.misfit(u)
            (g,) = torch.autograd.grad(mis, x)
        self._m, self._u = m.detach().clone(), u.detach()
        reg = self.prior.value(m.detach())
        g = g + self.prior.gradient(m.detach())
        mis, reg = float(mis.detach()), float(reg)
        return Evaluation(mis + reg, mis, reg), g

    def gradient(self, m: torch.Tensor) -> torch.Tensor:
        return self.value_and_gradient(m)[1]

    # ------------------------------------------------------------------ curvature
    def gauss_newton_hessian(self, m: torch.Tensor, *, with_prior: bool = True):
        """``v -> (J_u^T W J_u + R''(m)) v``: 1 incremental forward + 1 incremental adjoint per call."""
        u = self.state(m)
        lin = self.model.linearize(m.detach(), u, self.counter)
        obs = self.observations
        w = 1.0 / obs.noise.sigma.to(u) ** 2
        prior, md = self.prior, m.detach()

        def apply(v: torch.Tensor) -> torch.Tensor:
            du = lin.jvp(v)
            hv = lin.vjp(obs.operator.adjoint(w * obs.operator(du)))
            if with_prior:
                hv = hv + prior.hessian_apply(md, v)
            return hv

        return apply

    def data_jacobian_apply(self, m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``O du/dm v`` (one incremental forward solve)."""
        lin = self.model.linearize(m.detach(), self.state(m), self.counter)
        return self.observations.operator(lin.jvp(v))


def taylor_test(
    objective: Objective,
    m: torch.Tensor,
    dm: torch.Tensor,
    hs: tuple[float, ...] = (1e-1, 5e-2, 2.5e-2, 1.25e-2, 6.25e-3),
) -> dict:
    """Taylor remainders of ``J`` at ``m`` along ``dm``.

    ``r0(h) = |J(m + h dm) - J(m)|`` decays as ``h`` and ``r1(h) = |J(m + h dm) - J(m) - h <g, dm>|``
    as ``h^2`` when the gradient ``g`` is right. Returns the remainders and the fitted slopes of
    ``log r`` against ``log h``.

    Examples
    --------
    >>> import torch
    >>> from pdekit.core.grid import Grid
    >>> from pdekit.inverse import DarcyModel, InverseProblem, Observations, PointObservation, Tikhonov
    >>> g = Grid((9, 9))
    >>> problem = InverseProblem(DarcyModel(g), Tikhonov(g, 1e-3))
    >>> pts = torch.tensor([[0.3, 0.4], [0.6, 0.7], [0.5, 0.2]])
    >>> obs = Observations.synthetic(PointObservation(g, pts), problem.model.solve(
    ...     torch.full((9, 9), 0.5, dtype=torch.float64)), 0.01, torch.Generator().manual_seed(0))
    >>> gen = torch.Generator().manual_seed(1)
    >>> dm = torch.randn(9, 9, dtype=torch.float64, generator=gen)
    >>> out = taylor_test(problem.objective(obs), torch.zeros(9, 9, dtype=torch.float64), dm)
    >>> abs(out["slope_r1"] - 2) < 0.1
    True
    """
    j0, g = objective.value_and_gradient(m)
    gd = float(dot(g, dm))
    r0, r1 = [], []
    for h in hs:
        jh = objective.evaluate(m + h * dm).value
        r0.append(abs(jh - j0.value))
        r1.append(abs(jh - j0.value - h * gd))
    lh = np.log(np.asarray(hs))
    return {
        "h": list(hs),
        "r0": r0,
        "r1": r1,
        "slope_r0": float(np.polyfit(lh, np.log(r0), 1)[0]),
        "slope_r1": float(np.polyfit(lh, np.log(r1), 1)[0]),
    }
