"""Differentiable linear solves whose gradients come from one adjoint solve.

For ``x = A(p)^{-1} b`` and a loss ``L(x)`` with ``g = dL/dx``, the implicit-function theorem gives

    A(p)^T lam = g,        dL/db = lam,        dL/dp = -(d/dp) <lam, A(p) x>   (x, lam held fixed),

so the backward pass costs one Krylov solve with the transposed operator, never a backpropagation
through the forward iterations (memory independent of the iteration count, exact up to the
adjoint tolerance). ``A(p)`` is given matrix-free as ``matvec(X, *params)``, written in torch: the
transpose is its vector-Jacobian product in ``X`` and the parameter term is its vector-Jacobian
product in ``params``.

The settings are one :class:`~pdekit.core.solve_config.SolveConfig` (default
:data:`~pdekit.core.solve_config.DIFFERENTIABLE`: CG to ``rtol = 1e-10``); the adjoint solve uses
``config.adjoint``, or the forward settings when that is ``None``. Preconditioners are operators
(``M``, ``M_adjoint``), not names: the solve only sees ``matvec``.

Both solves are checked: a forward or adjoint solve that misses its tolerance raises
:class:`~pdekit.core.solve_result.NotConvergedError` (carrying the
:class:`~pdekit.core.solve_result.SolveResult`), so a gradient is never silently wrong.
Double backward (Hessian-vector products through the solve) is not supported: the backward is
``once_differentiable`` and asking for a second derivative raises.

References
----------
.. [1] M. B. Giles and N. A. Pierce, "An introduction to the adjoint approach to design",
   *Flow, Turbulence and Combustion* 65 (2000) 393-415.
.. [2] R.-E. Plessix, "A review of the adjoint-state method for computing the gradient of a
   functional with geophysical applications", *Geophys. J. Int.* 167 (2006) 495-503.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from pdekit.core import krylov
from pdekit.core.linop import LinearOperator, aslinearoperator
from pdekit.core.solve_config import DIFFERENTIABLE, KRYLOV_METHODS, SolveConfig
from pdekit.core.solve_result import NotConvergedError, SolveResult
from pdekit.errors import PdekitUserError

__all__ = ["differentiable_solve"]

ParamMatVec = Callable[..., torch.Tensor]
_SYMMETRIC_METHODS = ("cg", "minres")


@dataclass(frozen=True, eq=False)
class _Plan:
    """What the autograd Function needs: both solves' settings and the preconditioner operators."""

    forward: SolveConfig
    adjoint: SolveConfig
    M: Any
    M_adjoint: Any
    symmetric: bool


def _plan(config, M, M_adjoint, symmetric, adjoint_rtol, adjoint_atol, overrides) -> _Plan:
    if config is None:
        config = DIFFERENTIABLE
    elif not isinstance(config, SolveConfig):
        raise TypeError(f"config must be a SolveConfig, got {type(config).__name__}")
    if overrides:
        config = SolveConfig.from_dict(overrides, base=config)
    adjoint = config.adjoint or dataclasses.replace(config, adjoint=None)
    if adjoint_rtol is not None or adjoint_atol is not None:
        adjoint = SolveConfig.from_dict(
            {k: v for k, v in (("rtol", adjoint_rtol), ("atol", adjoint_atol)) if v is not None},
            base=adjoint,
        )
    for which, c in (("method", config), ("adjoint.method", adjoint)):
        if c.method not in KRYLOV_METHODS:
            raise PdekitUserError(f"differentiable_solve: SolveConfig.{which} must be one of "
                                  f"{', '.join(KRYLOV_METHODS)}, got {c.method!r}")
        if c.preconditioner not in (None, "none"):
            raise PdekitUserError("differentiable_solve: pass the preconditioner as an operator M "
                                  f"(SolveConfig.preconditioner={c.preconditioner!r})")
    sym = config.method in _SYMMETRIC_METHODS if symmetric is None else bool(symmetric)
    return _Plan(config, adjoint, M, M_adjoint, sym)


def differentiable_solve(
    matvec: ParamMatVec,
    b: torch.Tensor,
    *params: torch.Tensor,
    config: SolveConfig | None = None,
    M: Any = None,
    M_adjoint: Any = None,
    x0: torch.Tensor | None = None,
    symmetric: bool | None = None,
    adjoint_rtol: float | None = None,
    adjoint_atol: float | None = None,
    **overrides: Any,
) -> torch.Tensor:
    """Solve ``A(params) x = b`` so that autograd differentiates through it by the adjoint method.

    Parameters
    ----------
    matvec : callable
        ``matvec(X, *params)`` applies ``A(params)`` to each row of ``X`` (shape ``(B, n)``) and
        returns ``(B, n)``. It must be linear in ``X`` and written in torch, so that autograd can
        differentiate it with respect to ``X`` (for ``A^T``) and ``params``.
    b : torch.Tensor
        Right-hand side(s), ``(n,)`` or ``(B, n)``.
    *params : torch.Tensor
        Tensors the operator depends on (a coefficient field, a velocity, ...); gradients flow to
        those that require them.
    config : SolveConfig, optional
        ``method`` (``"cg"``, ``"gmres"``, ``"bicgstab"`` or ``"minres"``), ``rtol``, ``atol``,
        ``maxiter`` and ``restart`` (GMRES) of the forward solve; ``config.adjoint`` those of the
        adjoint solve (``None``: the same). Default
        :data:`~pdekit.core.solve_config.DIFFERENTIABLE` (CG, ``rtol = 1e-10``). The gradient
        error is of the order of the adjoint ``rtol`` (times a condition number).
    M : operator-like, optional
        Preconditioner of the forward solve (anything :func:`~pdekit.core.linop.aslinearoperator`
        takes).
    M_adjoint : operator-like, optional
        Preconditioner of the adjoint solve. ``None`` uses ``M`` when the operator is symmetric and
        ``M^T`` otherwise (the transpose of a callable is taken by autograd, so a preconditioner
        that is not written in torch needs an explicit ``M_adjoint``).
    x0 : torch.Tensor, optional
        Initial guess, shaped like ``b`` (not differentiated).
    symmetric : bool, optional
        Declares ``A(p) = A(p)^T``: the adjoint then applies ``matvec`` itself instead of its
        vector-Jacobian product. ``None`` assumes symmetry for ``cg`` and ``minres`` (which
        require it) and not for ``gmres`` and ``bicgstab``.
    adjoint_rtol, adjoint_atol : float, optional
        Shorthand for the adjoint solve's ``rtol`` / ``atol`` (replacing those of
        ``config.adjoint``, or of the forward settings).
    **overrides
        Fields of ``config`` to replace, e.g. ``method="gmres", rtol=1e-12`` (validated by
        :class:`~pdekit.core.solve_config.SolveConfig`).

    Returns
    -------
    torch.Tensor
        ``x``, shaped like ``b``.

    Raises
    ------
    NotConvergedError
        When the forward solve, or in ``backward`` the adjoint solve, misses its tolerance.
    PdekitUserError
        For a bad setting or a method that is not one of the four Krylov methods.

    Notes
    -----
    Cost: one forward solve; ``backward`` adds one adjoint solve for the whole batch (whatever
    the number of parameters) plus one vector-Jacobian product of ``matvec`` in ``params``.
    For a nonsymmetric operator each adjoint iteration applies ``A^T`` as a vector-Jacobian
    product of ``matvec`` (about twice the cost of a ``matvec``). Double backward is not supported.

    Examples
    --------
    Gradient of ``sum(x)`` for the 1-D Laplacian ``A = tridiag(-1, 2, -1)`` scaled by ``c``:

    >>> def laplacian(X, c):
    ...     pad = torch.nn.functional.pad(X, (1, 1))
    ...     return c * (2 * X - pad[:, :-2] - pad[:, 2:])
    >>> c = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    >>> cfg = SolveConfig(method="cg", rtol=1e-12)
    >>> x = differentiable_solve(laplacian, torch.ones(5, dtype=torch.float64), c, config=cfg)
    >>> x.sum().backward()                           # sum(x) is proportional to 1 / c
    >>> bool(torch.isclose(c.grad, -x.sum().detach() / c.detach()))
    True

    A diagonal operator ``A(a) = diag(a)``, the adjoint solve tighter than the forward one:

    >>> a = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64, requires_grad=True)
    >>> cfg = SolveConfig(method="cg", rtol=1e-8, adjoint=SolveConfig(method="cg", rtol=1e-12))
    >>> differentiable_solve(lambda X, a: a * X, torch.ones(3, dtype=torch.float64), a,
    ...                      config=cfg).sum().backward()
    >>> torch.allclose(a.grad, -1 / a.detach() ** 2)
    True
    """
    plan = _plan(config, M, M_adjoint, symmetric, adjoint_rtol, adjoint_atol, overrides)
    for p in params:
        if not isinstance(p, torch.Tensor):
            raise TypeError(
                f"params must be tensors, got {type(p).__name__}; close over other values "
                "in matvec instead"
            )
    if b.dim() not in (1, 2):
        raise ValueError(f"b must have shape (n,) or (B, n), got {tuple(b.shape)}")
    single = b.dim() == 1
    B = b.unsqueeze(0) if single else b
    if x0 is not None:
        if x0.numel() != B.numel():
            raise ValueError(f"x0 has shape {tuple(x0.shape)} but b has {tuple(b.shape)}")
        x0 = x0.detach().reshape(B.shape)  # the solution does not depend on the initial guess
    X = _AdjointSolve.apply(plan, matvec, x0, B, *params)
    return X[0] if single else X


# -- implementation -------------------------------------------------------------------------


def _checked_solve(
    which: str, config: SolveConfig, A: LinearOperator, b: torch.Tensor, *,
    x0: torch.Tensor | None, M: Any,
) -> torch.Tensor:
    kw = {"restart": config.restart} if config.method == "gmres" else {}
    result: SolveResult = krylov.solve(
        A, b, method=config.method, x0=x0, rtol=config.rtol, atol=config.atol,
        maxiter=config.maxiter, M=M, **kw,
    )
    if not result.all_converged:
        worst = float(result.rel_residual.max())
        raise NotConvergedError(
            f"{which} solve ({config.method}) did not converge: relative residual {worst:.3e} "
            f"after {int(result.iterations.max())} iterations (rtol={config.rtol:g}, "
            f"atol={config.atol:g}, maxiter={config.maxiter})",
            result,
        )
    return result.x


def _transposed(matvec: ParamMatVec, params: tuple[torch.Tensor, ...], n: int) -> LinearOperator:
    """``A^T`` as the vector-Jacobian product of ``X -> matvec(X, *params)``.

    ``matvec`` is linear in ``X``, so its Jacobian does not depend on the point: the graph is built
    once per batch shape and reused for every product of the adjoint solve.
    """
    graph: dict = {}

    def forward(X: torch.Tensor) -> torch.Tensor:
        return matvec(X, *params)

    def rmatvec(V: torch.Tensor) -> torch.Tensor:
        key = (tuple(V.shape), V.dtype, V.device)
        with torch.enable_grad():
            if key not in graph:
                graph.clear()
                probe = torch.zeros(V.shape, dtype=V.dtype, device=V.device, requires_grad=True)
                graph[key] = (probe, forward(probe))
            probe, out = graph[key]
            (g,) = torch.autograd.grad(out, probe, grad_outputs=V, retain_graph=True)
        return g

    return LinearOperator((n, n), rmatvec, forward)


class _AdjointSolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, plan: _Plan, matvec, x0, b, *params):
        n = b.shape[-1]
        A = LinearOperator((n, n), lambda X: matvec(X, *params), symmetric=plan.symmetric)
        x = _checked_solve("forward", plan.forward, A, b, x0=x0, M=plan.M)
        ctx.plan = plan
        ctx.matvec = matvec
        ctx.save_for_backward(x, *params)
        return x

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_x):
        plan: _Plan = ctx.plan
        matvec = ctx.matvec
        x, *params = ctx.saved_tensors
        params = tuple(params)
        n = x.shape[-1]
        fixed = tuple(p.detach() for p in params)

        if plan.symmetric:
            AT = LinearOperator((n, n), lambda X: matvec(X, *fixed), symmetric=True)
            M_adj = plan.M if plan.M_adjoint is None else plan.M_adjoint
        else:
            AT = _transposed(matvec, fixed, n)
            M_adj = plan.M_adjoint
            if M_adj is None and plan.M is not None:
                M_adj = aslinearoperator(plan.M, n).T
        lam = _checked_solve("adjoint", plan.adjoint, AT, grad_x, x0=None, M=M_adj)

        wants = ctx.needs_input_grad[4:]
        grads_p: list[torch.Tensor | None] = [None] * len(params)
        if any(wants):
            with torch.enable_grad():
                leaves = [p.detach().requires_grad_(w) for p, w in zip(params, wants)]
                Ax = matvec(x.detach(), *leaves)
                wanted = [leaf for leaf, w in zip(leaves, wants) if w]
                found = torch.autograd.grad(Ax, wanted, grad_outputs=lam, allow_unused=True)
            it = iter(found)
            for i, w in enumerate(wants):
                if w:
                    g = next(it)
                    grads_p[i] = None if g is None else -g
        grad_b = lam if ctx.needs_input_grad[3] else None
        return (None, None, None, grad_b, *grads_p)
