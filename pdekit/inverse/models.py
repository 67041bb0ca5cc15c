"""Parameter-to-state maps ("forward models") with counted PDE solves and their linearisations.

A forward model maps a parameter ``m`` (shape ``model.param_shape``) to a state ``u`` on the node
grid (``grid.shape``, boundary included) and exposes

``solve(m, counter)``
    the state, differentiable in ``m`` by the adjoint method: the linear solve goes through
    :func:`pdekit.core.diffsolve.differentiable_solve`, so ``backward`` costs one adjoint solve per
    forward solve (counted by ``counter``);
``linearize(m, u, counter)``
    an object with ``jvp(dm)`` (the incremental forward: one linearised solve
    ``A du = -(d/dm)(A(m) u) dm``) and ``vjp(w)`` (the incremental adjoint: one solve
    ``A^T p = w``, then ``-(d/dm)(A(m) u)^T p``), the two halves of a Gauss-Newton Hessian action.

:class:`DarcyModel` (``-div(a grad u) = f``, ``a`` from a parameterisation, MG-preconditioned CG)
and :class:`HeatSourceModel` (backward-Euler heat equation with an unknown steady source, observed at
the final time; linear in the parameter, so its Gauss-Newton Hessian is the exact Hessian) are
provided; :class:`pdekit.inverse.surrogate.SurrogateModel` has the same interface with a neural
operator in place of the solver.

References
----------
.. [1] U. Villa, N. Petra, O. Ghattas, "hIPPYlib: an extensible software framework for large-scale
   inverse problems governed by PDEs: Part I", ACM Trans. Math. Softw. 47 (2021) 16
   (incremental forward / adjoint equations of the Gauss-Newton Hessian).
.. [2] R.-E. Plessix, "A review of the adjoint-state method for computing the gradient of a
   functional with geophysical applications", Geophys. J. Int. 167 (2006) 495-503.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pdekit.core import krylov
from pdekit.core.diffsolve import differentiable_solve
from pdekit.core.grid import Grid
from pdekit.core.multigrid import multigrid_preconditioner
from pdekit.core.solve_result import NotConvergedError
from pdekit.core.stencils import StencilOperator, diffusion
from pdekit.inverse.parameterisation import Identity, LogCoefficient, Parameterisation

__all__ = ["SolveCounter", "DarcyModel", "HeatSourceModel"]


@dataclass
class SolveCounter:
    """PDE (linear system) solves by kind; ``total`` is what the benchmark reports.

    Examples
    --------
    >>> c = SolveCounter(forward=3, adjoint=2, incremental_forward=5, incremental_adjoint=5)
    >>> c.total
    15
    """

    forward: int = 0
    adjoint: int = 0
    incremental_forward: int = 0
    incremental_adjoint: int = 0

    @property
    def total(self) -> int:
        return self.forward + self.adjoint + self.incremental_forward + self.incremental_adjoint

    def as_dict(self) -> dict[str, int]:
        return {
            "forward": self.forward,
            "adjoint": self.adjoint,
            "incremental_forward": self.incremental_forward,
            "incremental_adjoint": self.incremental_adjoint,
            "total": self.total,
        }


class _CountAdjoint(torch.autograd.Function):
    """Identity whose backward counts one adjoint solve (the one the solve's backward runs)."""

    @staticmethod
    def forward(ctx, x, counter):
        ctx.counter = counter
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        if ctx.counter is not None:
            ctx.counter.adjoint += 1
        return g, None


def _solve(op: StencilOperator, M, b: torch.Tensor, rtol: float, what: str) -> torch.Tensor:
    res = krylov.solve(op.as_linear_operator(), b.reshape(1, -1), "cg", rtol=rtol, M=M)
    if not res.all_converged:
        raise NotConvergedError(
            f"{what} solve did not converge: relative residual {float(res.rel_residual.max()):.3e}",
            res,
        )
    return res.x.reshape(1, *op.grid.interior_shape)


def _check_param(m: torch.Tensor, shape: tuple[int, ...], who: str) -> None:
    if not isinstance(m, torch.Tensor):
        raise TypeError(f"{who}: the parameter must be a torch.Tensor, got {type(m).__name__}")
    if tuple(m.shape) != tuple(shape):
        raise ValueError(
            f"{who}: expected a parameter of shape {tuple(shape)}, got {tuple(m.shape)}"
        )
    if not bool(torch.isfinite(m).all()):
        raise ValueError(f"{who}: the parameter contains NaN or inf")


class DarcyModel:
    """``-div(a grad u) = f`` on the Darcy node grid, ``u = 0`` on the boundary, ``a = a(m)``.

    Parameters
    ----------
    grid : Grid
        Dirichlet node grid (``n x n`` nodes including the boundary).
    source : float or Tensor
        ``f``, a constant or a full-grid field.
    parameterisation : Parameterisation
        ``m -> a``; default :class:`~pdekit.inverse.parameterisation.LogCoefficient`.
    rtol : float
        Relative tolerance of every solve (forward, adjoint, incremental).

    Examples
    --------
    >>> import torch
    >>> from pdekit.core.grid import Grid
    >>> model, counter = DarcyModel(Grid((17, 17))), SolveCounter()
    >>> m = torch.zeros(17, 17, dtype=torch.float64, requires_grad=True)
    >>> u = model.solve(m, counter)           # a = 1: the Poisson problem -lap u = 1
    >>> u.sum().backward()                    # one adjoint solve
    >>> round(float(u.detach().max()), 4), counter.forward, counter.adjoint
    (0.0734, 1, 1)
    """

    def __init__(
        self,
        grid: Grid,
        source: float | torch.Tensor = 1.0,
        parameterisation: Parameterisation | None = None,
        *,
        rtol: float = 1e-10,
    ):
        if not isinstance(grid, Grid) or any(bc.kind != "dirichlet" for bc in grid.bc):
            raise ValueError("DarcyModel needs a pdekit Grid with Dirichlet boundaries")
        self.grid = grid
        self.source = source
        self.parameterisation = (
            parameterisation if parameterisation is not None else LogCoefficient()
        )
        self.param_shape = self.parameterisation.param_shape or grid.shape
        self.rtol = float(rtol)
        self._cache: dict = {}

    def coefficient(self, m: torch.Tensor) -> torch.Tensor:
        return self.parameterisation.coefficient(m)

    def _matvec(self, X: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        # The forward and adjoint solves call this once per CG iteration with the same `a`:
        # build the stencil once (outside autograd) and reuse it.
        if not torch.is_grad_enabled() and self._cache.get("a") is a:
            op = self._cache["op"]
        else:
            op = diffusion(self.grid, a)
            if not torch.is_grad_enabled():
                self._cache = {"a": a, "op": op}
        return op.matvec(X)

    def solve(
        self,
        m: torch.Tensor,
        counter: SolveCounter | None = None,
        *,
        x0: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The state ``u(m)`` on the full grid (differentiable in ``m`` by the adjoint)."""
        _check_param(m, self.param_shape, "DarcyModel")
        a = self.coefficient(m)
        with torch.no_grad():
            op = diffusion(self.grid, a.detach())
            M = multigrid_preconditioner(op)
            b = op.rhs(self.source).reshape(1, -1)
        if x0 is not None:
            x0 = self.grid.interior(x0.detach()).reshape(1, -1)
        u = differentiable_solve(self._matvec, b, a, method="cg", rtol=self.rtol, M=M, x0=x0)
        if counter is not None and x0 is None:
            counter.forward += 1
        u = _CountAdjoint.apply(u, counter)
        return self.grid.extend(u.reshape(*self.grid.interior_shape))

    def linearize(self, m: torch.Tensor, u: torch.Tensor, counter: SolveCounter | None = None):
        """Incremental forward / adjoint solves at ``(m, u(m))`` (see the module docstring)."""
        return _DarcyLinearization(self, m.detach(), u.detach(), counter)


class _DarcyLinearization:
    def __init__(self, model: DarcyModel, m: torch.Tensor, u: torch.Tensor, counter):
        self.model, self.m, self.counter = model, m, counter
        g = model.grid
        self.op = diffusion(g, model.coefficient(m))
        self.M = multigrid_preconditioner(self.op)
        u_int = g.interior(u).unsqueeze(0)
        param = model.parameterisation

        def residual(mm):  # A(a(mm)) u, the m-dependent part of the residual A u - f
            return diffusion(g, param.coefficient(mm)).apply(u_int)

        self._residual = residual

    def jvp(self, dm: torch.Tensor) -> torch.Tensor:
        """Incremental forward: ``du = -A^{-1} (d/dm)(A u) dm`` on the full grid (one solve)."""
        _, q = torch.func.jvp(self._residual, (self.m,), (dm.to(self.m),))
        du = _solve(self.op, self.M, -q, self.model.rtol, "incremental forward")
        if self.counter is not None:
            self.counter.incremental_forward += 1
        return self.model.grid.extend(du[0])

    def vjp(self, w: torch.Tensor) -> torch.Tensor:
        """Incremental adjoint: ``-(d/dm)(A u)^T A^{-T} w`` for a full-grid ``w`` (one solve)."""
        g = self.model.grid
        p = _solve(
            self.op, self.M, g.interior(w).unsqueeze(0), self.model.rtol, "incremental adjoint"
        )
        if self.counter is not None:
            self.counter.incremental_adjoint += 1
        _, pullback = torch.func.vjp(self._residual, self.m)
        (dm,) = pullback(-p)
        return dm


class HeatSourceModel:
    """``u_t = kappa lap u + s(x)``, ``u(0) = 0``, ``u = 0`` on the boundary; state ``u(T)``.

    Backward Euler with ``n_steps`` steps of ``dt``: ``(I + dt kappa L) u^k = u^{k-1} + dt s``,
    ``L = -lap_h`` (MG-preconditioned CG, the same operator every step). The parameter is the source
    ``s`` on the full grid (only interior values act). One forward solve = ``n_steps`` linear
    solves, and so are the adjoint and incremental solves: ``SolveCounter`` counts linear solves.

    Examples
    --------
    >>> import torch
    >>> from pdekit.core.grid import Grid
    >>> model, counter = HeatSourceModel(Grid((9, 9)), n_steps=4), SolveCounter()
    >>> u = model.solve(torch.ones(9, 9, dtype=torch.float64), counter)
    >>> counter.forward, bool(u.max() > 0)
    (4, True)
    """

    def __init__(
        self,
        grid: Grid,
        *,
        kappa: float = 1.0,
        dt: float = 0.01,
        n_steps: int = 10,
        parameterisation: Parameterisation | None = None,
        rtol: float = 1e-10,
    ):
        if not isinstance(grid, Grid) or any(bc.kind != "dirichlet" for bc in grid.bc):
            raise ValueError("HeatSourceModel needs a pdekit Grid with Dirichlet boundaries")
        if not (kappa > 0 and dt > 0 and int(n_steps) >= 1):
            raise ValueError(f"need kappa > 0, dt > 0, n_steps >= 1; got {kappa}, {dt}, {n_steps}")
        self.grid, self.kappa, self.dt, self.n_steps = grid, float(kappa), float(dt), int(n_steps)
        self.parameterisation = parameterisation if parameterisation is not None else Identity()
        self.param_shape = self.parameterisation.param_shape or grid.shape
        self.rtol = float(rtol)
        a = torch.full(grid.shape, self.dt * self.kappa, dtype=torch.float64)
        self.op = diffusion(grid, a, reaction=1.0)
        self.M = multigrid_preconditioner(self.op)

    def _step_matvec(self, X: torch.Tensor) -> torch.Tensor:
        return self.op.matvec(X)

    def _march(self, s_int: torch.Tensor, counter, kind: str | None) -> torch.Tensor:
        u = torch.zeros_like(s_int)
        for _ in range(self.n_steps):
            b = (u + self.dt * s_int).reshape(1, -1)
            if kind == "forward":
                x = differentiable_solve(
                    self._step_matvec, b, method="cg", rtol=self.rtol, M=self.M
                )
                x = _CountAdjoint.apply(x, counter)
            else:
                x = _solve(self.op, self.M, b, self.rtol, "incremental forward").reshape(1, -1)
            if counter is not None:
                if kind == "forward":
                    counter.forward += 1
                else:
                    counter.incremental_forward += 1
            u = x.reshape(s_int.shape)
        return u

    def solve(
        self, m: torch.Tensor, counter: SolveCounter | None = None, *, x0=None
    ) -> torch.Tensor:
        """``u(T)`` on the full grid, differentiable in ``m`` (adjoint solves in backward)."""
        _check_param(m, self.param_shape, "HeatSourceModel")
        s = self.parameterisation.coefficient(m)
        u = self._march(self.grid.interior(s).to(torch.float64), counter, "forward")
        return self.grid.extend(u)

    def linearize(self, m: torch.Tensor, u: torch.Tensor, counter: SolveCounter | None = None):
        return _HeatLinearization(self, m.detach(), counter)


class _HeatLinearization:
    def __init__(self, model: HeatSourceModel, m: torch.Tensor, counter):
        self.model, self.m, self.counter = model, m, counter
        g = model.grid
        self._source = lambda mm: g.interior(model.parameterisation.coefficient(mm))

    def jvp(self, dm: torch.Tensor) -> torch.Tensor:
        _, ds = torch.func.jvp(self._source, (self.m,), (dm.to(self.m),))
        return self.model.grid.extend(self.model._march(ds, self.counter, None))

    def vjp(self, w: torch.Tensor) -> torch.Tensor:
        mdl, g = self.model, self.model.grid
        lam = g.interior(w)
        acc = torch.zeros_like(lam)
        for _ in range(mdl.n_steps):  # A is symmetric: the adjoint march uses the same solves
            lam = _solve(mdl.op, mdl.M, lam.unsqueeze(0), mdl.rtol, "incremental adjoint")[0]
            acc = acc + mdl.dt * lam
            if self.counter is not None:
                self.counter.incremental_adjoint += 1
        _, pullback = torch.func.vjp(self._source, self.m)
        (dm,) = pullback(acc)
        return dm
