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

The physics comes from the PDE families, never from a second assembly:

* :class:`DarcyModel` (``-div(a grad u) = f``, ``a`` from a parameterisation) solves the systems
  of :class:`pdekit.pdes.darcy.DarcyFlow` (``assemble``; its discrete ``residual`` gives the
  linearisation), preconditioned by the family's multigrid V-cycle;
* :class:`HeatSourceModel` (backward-Euler heat equation with an unknown steady source, observed at
  the final time; linear in the parameter, so its Gauss-Newton Hessian is the exact Hessian) steps
  with the step matrix of :meth:`pdekit.pdes.heat.Heat.operator` through
  :func:`pdekit.core.timestepping.backward_euler` and :func:`~pdekit.core.timestepping.trajectory`.

Every solve takes its settings from one :class:`~pdekit.core.solve_config.SolveConfig` (default
:data:`~pdekit.core.solve_config.DIFFERENTIABLE`: CG to ``rtol = 1e-10``) and raises
:class:`~pdekit.core.solve_result.NotConvergedError` when it misses the tolerance.
:class:`pdekit.inverse.surrogate.SurrogateModel` has the same interface with a neural operator in
place of the solver.

References
----------
.. [1] U. Villa, N. Petra, O. Ghattas, "hIPPYlib: an extensible software framework for large-scale
   inverse problems governed by PDEs: Part I", ACM Trans. Math. Softw. 47 (2021) 16
   (incremental forward / adjoint equations of the Gauss-Newton Hessian).
.. [2] R.-E. Plessix, "A review of the adjoint-state method for computing the gradient of a
   functional with geophysical applications", Geophys. J. Int. 167 (2006) 495-503.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from pdekit.core import krylov
from pdekit.core.diffsolve import differentiable_solve
from pdekit.core.grid import Grid
from pdekit.core.sequence import build_preconditioner
from pdekit.core.solve_config import DIFFERENTIABLE, KRYLOV_METHODS, SolveConfig
from pdekit.core.solve_result import NotConvergedError
from pdekit.core.stencils import StencilOperator
from pdekit.core.timestepping import backward_euler, trajectory
from pdekit.errors import PdekitUserError
from pdekit.inverse.parameterisation import Identity, LogCoefficient, Parameterisation
from pdekit.pdes.darcy import DarcyFlow
from pdekit.pdes.heat import Heat

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


def _solve_config(config: SolveConfig | None, rtol: float | None, who: str) -> SolveConfig:
    """The model's settings: ``config`` (default DIFFERENTIABLE) with ``rtol`` replaced if given."""
    if config is None:
        config = DIFFERENTIABLE
    elif not isinstance(config, SolveConfig):
        raise TypeError(f"{who}: config must be a SolveConfig, got {type(config).__name__}")
    if rtol is not None:
        config = SolveConfig.from_dict({"rtol": rtol}, base=config)
    for which, c in (("method", config), ("adjoint.method", config.adjoint or config)):
        if c.method not in KRYLOV_METHODS:
            raise PdekitUserError(f"{who}: SolveConfig.{which} must be one of "
                                  f"{', '.join(KRYLOV_METHODS)}, got {c.method!r}")
        if c.preconditioner is not None:
            raise PdekitUserError(f"{who}: leave SolveConfig.preconditioner unset (the model "
                                  f"uses the family's multigrid V-cycle), got {c.preconditioner!r}")
    return config


def _solve(op: StencilOperator, M, b: torch.Tensor, config: SolveConfig, what: str) -> torch.Tensor:
    """One checked (non-differentiable) incremental solve; ``(1, *interior_shape)``."""
    kw = {"restart": config.restart} if config.method == "gmres" else {}
    res = krylov.solve(op.as_linear_operator(), b.reshape(1, -1), config.method, rtol=config.rtol,
                       atol=config.atol, maxiter=config.maxiter, M=M, **kw)
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
        raise PdekitUserError(
            f"{who}: expected a parameter of shape {tuple(shape)}, got {tuple(m.shape)}"
        )
    if not bool(torch.isfinite(m).all()):
        raise PdekitUserError(f"{who}: the parameter contains NaN or inf")


def _check_grid(grid: Grid, family_grid: Callable[[int], Grid], who: str) -> None:
    ok = isinstance(grid, Grid) and len(set(grid.shape)) == 1
    if not ok or grid != family_grid(grid.shape[0]):
        raise PdekitUserError(
            f"{who}: grid must be the family's node grid (n nodes per dimension on the unit box, "
            f"Dirichlet u = 0), e.g. Grid((n, n)); got {grid!r}"
        )


class DarcyModel:
    """``-div(a grad u) = f`` on the Darcy node grid, ``u = 0`` on the boundary, ``a = a(m)``.

    The systems are :class:`~pdekit.pdes.darcy.DarcyFlow`'s (``model.family``), solved in float64
    by multigrid-preconditioned Krylov iterations (CG by default).

    Parameters
    ----------
    grid : Grid
        Dirichlet node grid of ``DarcyFlow(resolution=n)``: ``n x n`` nodes on the unit square,
        boundary included.
    source : float or Tensor
        ``f``, a constant or a field on the full grid ``grid.shape`` (or on the interior nodes).
    parameterisation : Parameterisation
        ``m -> a``; default :class:`~pdekit.inverse.parameterisation.LogCoefficient`.
    rtol : float, optional
        Relative tolerance of every solve (forward, adjoint, incremental), replacing that of
        ``config``.
    config : SolveConfig, optional
        Settings of every solve (default :data:`~pdekit.core.solve_config.DIFFERENTIABLE`, CG to
        ``rtol = 1e-10``); ``config.adjoint`` those of the adjoint and incremental adjoint solves.
        ``preconditioner`` stays unset: the model uses the family's multigrid V-cycle.

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
        rtol: float | None = None,
        config: SolveConfig | None = None,
    ):
        _check_grid(grid, lambda n: DarcyFlow(resolution=n).grid, "DarcyModel")
        self.grid = grid
        self.family = DarcyFlow(resolution=grid.shape[0])
        self.source = source
        self._f = self._source_field(source)
        self.parameterisation = (
            parameterisation if parameterisation is not None else LogCoefficient()
        )
        self.param_shape = self.parameterisation.param_shape or grid.shape
        self.config = _solve_config(config, rtol, "DarcyModel")
        self.rtol = self.config.rtol
        self._cache: dict = {}

    def _source_field(self, source) -> torch.Tensor | None:
        """``f`` as the family's input field ``(1, n, n)`` (``None``: the family's ``f = 1``)."""
        g = self.grid
        if not isinstance(source, torch.Tensor):
            if float(source) == 1.0:
                return None
            return torch.full((1, *g.shape), float(source), dtype=torch.float64)
        f = source.detach().to(torch.float64)
        if tuple(f.shape) == g.interior_shape:
            f = g.extend(f)
        if tuple(f.shape) != g.shape:
            raise PdekitUserError(f"DarcyModel: source must be a number or a field of shape "
                                  f"{g.shape} or {g.interior_shape}, got {tuple(source.shape)}")
        return f.unsqueeze(0)

    def _inputs(self, a: torch.Tensor) -> dict[str, torch.Tensor]:
        """The family's inputs for one coefficient field ``a`` ``(n, n)``."""
        inputs = {"a": a.unsqueeze(0)}
        if self._f is not None:
            inputs["f"] = self._f.to(a.device)
        return inputs

    def coefficient(self, m: torch.Tensor) -> torch.Tensor:
        """``a(m)`` on the full grid (the parameterisation's)."""
        return self.parameterisation.coefficient(m)

    def _matvec(self, X: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        # The forward and adjoint solves call this once per CG iteration with the same `a`:
        # assemble once (outside autograd) and reuse it.
        if not torch.is_grad_enabled() and self._cache.get("a") is a:
            op = self._cache["op"]
        else:
            op = self.family.operator(self._inputs(a))
            if not torch.is_grad_enabled():
                self._cache = {"a": a, "op": op}
        return op.matvec(X)

    def _system(self, a: torch.Tensor):
        """``(A, M, b)`` of the family for ``a`` (detached): operator, V-cycle, right-hand side."""
        system = self.family.assemble(self._inputs(a))
        M = build_preconditioner("mg", system.op, system.mg_coefficient)
        return system.op, M, system.b

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
            _, M, b = self._system(a.detach())
            b = b.reshape(1, -1)
        if x0 is not None:
            x0 = self.grid.interior(x0.detach()).reshape(1, -1)
        u = differentiable_solve(self._matvec, b, a, config=self.config, M=M, x0=x0)
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
        self.op, self.M, _ = model._system(model.coefficient(m))
        outputs = {"u": u.unsqueeze(0)}

        def residual(mm):  # the family's discrete residual A(a(mm)) u - f; f does not depend on mm
            return model.family.residual(model._inputs(model.coefficient(mm)), outputs)

        self._residual = residual

    def jvp(self, dm: torch.Tensor) -> torch.Tensor:
        """Incremental forward: ``du = -A^{-1} (d/dm)(A u) dm`` on the full grid (one solve)."""
        _, q = torch.func.jvp(self._residual, (self.m,), (dm.to(self.m),))
        du = _solve(self.op, self.M, -q, self.model.config, "incremental forward")
        if self.counter is not None:
            self.counter.incremental_forward += 1
        return self.model.grid.extend(du[0])

    def vjp(self, w: torch.Tensor) -> torch.Tensor:
        """Incremental adjoint: ``-(d/dm)(A u)^T A^{-T} w`` for a full-grid ``w`` (one solve)."""
        mdl = self.model
        p = _solve(self.op, self.M, mdl.grid.interior(w).unsqueeze(0),
                   mdl.config.adjoint or mdl.config, "incremental adjoint")
        if self.counter is not None:
            self.counter.incremental_adjoint += 1
        _, pullback = torch.func.vjp(self._residual, self.m)
        (dm,) = pullback(-p)
        return dm


class _HeatStep:
    """``u_t = kappa lap u + s`` as an IMEX equation: explicit ``F = s``, implicit ``G = -kappa L``.

    ``implicit_solve`` solves with the backward-Euler step matrix ``I + dt kappa L`` of
    :meth:`Heat.operator` (the only step size :func:`backward_euler` asks for) and counts the solve.
    """

    def __init__(self, model: HeatSourceModel, source: torch.Tensor | None,
                 solve: Callable[[torch.Tensor], torch.Tensor]):
        self.model, self.source, self._solve = model, source, solve

    def explicit_terms(self, u: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(u) if self.source is None else self.source

    def implicit_terms(self, u: torch.Tensor) -> torch.Tensor:
        return -self.model.kappa * self.model.laplacian.apply(u.unsqueeze(0))[0]

    def implicit_solve(self, x: torch.Tensor, step_size: float) -> torch.Tensor:
        if step_size != self.model.dt:
            raise PdekitUserError(f"HeatSourceModel steps with dt = {self.model.dt}, "
                                  f"got a solve for step size {step_size}")
        return self._solve(x.reshape(1, -1)).reshape(x.shape)


class HeatSourceModel:
    """``u_t = kappa lap u + s(x)``, ``u(0) = 0``, ``u = 0`` on the boundary; state ``u(T)``.

    Backward Euler with ``n_steps`` steps of ``dt``: ``(I + dt kappa L) u^k = u^{k-1} + dt s``,
    ``L = -lap_h``: the step matrix of ``Heat(scheme="backward-euler")`` (``model.family``),
    MG-preconditioned CG, the same operator every step. The parameter is the source ``s`` on the
    full grid (only interior values act). One forward solve = ``n_steps`` linear solves, and so are
    the adjoint and incremental solves: ``SolveCounter`` counts linear solves.

    Parameters
    ----------
    grid : Grid
        Dirichlet node grid of the heat family: ``n`` nodes per dimension on the unit box (1-D or
        2-D), boundary included.
    kappa, dt : float
        Diffusivity and time step (positive).
    n_steps : int
        Backward-Euler steps to the observation time ``T = n_steps dt``.
    parameterisation : Parameterisation
        ``m -> s``; default :class:`~pdekit.inverse.parameterisation.Identity`.
    rtol : float, optional
        Relative tolerance of every solve, replacing that of ``config``.
    config : SolveConfig, optional
        Settings of every solve (default :data:`~pdekit.core.solve_config.DIFFERENTIABLE`).

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
        rtol: float | None = None,
        config: SolveConfig | None = None,
    ):
        if not (kappa > 0 and dt > 0 and int(n_steps) >= 1):
            raise PdekitUserError(
                f"need kappa > 0, dt > 0, n_steps >= 1; got {kappa}, {dt}, {n_steps}"
            )
        self.grid, self.kappa, self.dt, self.n_steps = grid, float(kappa), float(dt), int(n_steps)
        ndim = grid.ndim if isinstance(grid, Grid) else 0
        if ndim not in (1, 2):
            raise PdekitUserError(f"HeatSourceModel: grid must be 1-D or 2-D, got {grid!r}")

        def family(n: int) -> Heat:
            return Heat(ndim=ndim, resolution=n, kappa=self.kappa, scheme="backward-euler",
                        dt=self.dt, n_steps=self.n_steps, record_every=1)

        _check_grid(grid, lambda n: family(n).grid, "HeatSourceModel")
        self.family = family(grid.shape[0])
        self.parameterisation = parameterisation if parameterisation is not None else Identity()
        self.param_shape = self.parameterisation.param_shape or grid.shape
        self.config = _solve_config(config, rtol, "HeatSourceModel")
        self.rtol = self.config.rtol
        self.op, self.laplacian = self.family.operator()
        self.M = self.family.step_preconditioner("mg")

    def _step_matvec(self, X: torch.Tensor) -> torch.Tensor:
        return self.op.matvec(X)

    def _forward_solve(self, counter: SolveCounter | None) -> Callable[[torch.Tensor], torch.Tensor]:
        def solve(b: torch.Tensor) -> torch.Tensor:
            x = differentiable_solve(self._step_matvec, b, config=self.config, M=self.M)
            x = _CountAdjoint.apply(x, counter)
            if counter is not None:
                counter.forward += 1
            return x

        return solve

    def _incremental_solve(self, counter: SolveCounter | None, kind: str):
        config = self.config if kind == "forward" else (self.config.adjoint or self.config)

        def solve(b: torch.Tensor) -> torch.Tensor:
            x = _solve(self.op, self.M, b, config, f"incremental {kind}")
            if counter is not None:
                setattr(counter, f"incremental_{kind}", getattr(counter, f"incremental_{kind}") + 1)
            return x

        return solve

    def _march(self, source: torch.Tensor, solve) -> torch.Tensor:
        """``u(T)`` on the unknowns: backward Euler from ``u(0) = 0`` with a steady ``source``."""
        step = backward_euler(_HeatStep(self, source, solve), self.dt)
        u0 = torch.zeros_like(source)
        return trajectory(step, u0, self.n_steps, record_every=self.n_steps).final

    def solve(
        self, m: torch.Tensor, counter: SolveCounter | None = None, *, x0=None
    ) -> torch.Tensor:
        """``u(T)`` on the full grid, differentiable in ``m`` (adjoint solves in backward)."""
        _check_param(m, self.param_shape, "HeatSourceModel")
        s = self.grid.interior(self.parameterisation.coefficient(m)).to(torch.float64)
        return self.grid.extend(self._march(s, self._forward_solve(counter)))

    def linearize(self, m: torch.Tensor, u: torch.Tensor, counter: SolveCounter | None = None):
        """Incremental forward / adjoint marches at ``m`` (the model is linear in ``s``)."""
        return _HeatLinearization(self, m.detach(), counter)


class _HeatLinearization:
    def __init__(self, model: HeatSourceModel, m: torch.Tensor, counter):
        self.model, self.m, self.counter = model, m, counter
        g = model.grid
        self._source = lambda mm: g.interior(model.parameterisation.coefficient(mm))

    def jvp(self, dm: torch.Tensor) -> torch.Tensor:
        """``du(T)``: the forward march with the source ``ds`` (``n_steps`` solves)."""
        mdl = self.model
        _, ds = torch.func.jvp(self._source, (self.m,), (dm.to(self.m),))
        return mdl.grid.extend(mdl._march(ds, mdl._incremental_solve(self.counter, "forward")))

    def vjp(self, w: torch.Tensor) -> torch.Tensor:
        """``dt sum_k A^{-k} w``: the source-free march from ``w`` (A is symmetric), ``n_steps`` solves."""
        mdl = self.model
        step = backward_euler(_HeatStep(mdl, None, mdl._incremental_solve(self.counter, "adjoint")),
                              mdl.dt)
        levels = trajectory(step, mdl.grid.interior(w), mdl.n_steps).records
        acc = torch.zeros_like(levels[0])
        for lam in levels:
            acc = acc + mdl.dt * lam
        _, pullback = torch.func.vjp(self._source, self.m)
        (dm,) = pullback(acc)
        return dm
