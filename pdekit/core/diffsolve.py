"""Differentiable linear solves whose gradients come from one adjoint solve.

For ``x = A(p)^{-1} b`` and a loss ``L(x)`` with ``g = dL/dx``, the implicit-function theorem gives

    A(p)^T lam = g,        dL/db = lam,        dL/dp = -(d/dp) <lam, A(p) x>   (x, lam held fixed),

so the backward pass costs one Krylov solve with the transposed operator, never a backpropagation
through the forward iterations (memory independent of the iteration count, exact up to the
adjoint tolerance). ``A(p)`` is given matrix-free as ``matvec(X, *params)``, written in torch: the
transpose is its vector-Jacobian product in ``X`` and the parameter term is its vector-Jacobian
product in ``params``.

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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch.autograd.function import once_differentiable

from pdekit.core import krylov
from pdekit.core.linop import LinearOperator, aslinearoperator
from pdekit.core.solve_result import NotConvergedError, SolveResult

__all__ = ["LinearSolve", "differentiable_solve"]

Method = Literal["cg", "gmres", "bicgstab", "minres"]
ParamMatVec = Callable[..., torch.Tensor]
_METHODS = ("cg", "gmres", "bicgstab", "minres")
_SYMMETRIC_METHODS = ("cg", "minres")


@dataclass(frozen=True, eq=False)
class LinearSolve:
    """One object that describes a differentiable solve: method, tolerances, preconditioners and
    the settings of the adjoint (gradient) solve.

    Calling it solves ``A(params) x = b`` with :func:`pdekit.core.krylov.solve` and returns ``x``;
    its backward solves ``A^T lam = dL/dx`` once (see the module docstring).

    Parameters
    ----------
    method : {"cg", "gmres", "bicgstab", "minres"}
        Krylov method of both the forward and the adjoint solve.
    rtol, atol : float
        Forward tolerance: converged when ``||b - A x|| <= max(rtol ||b||, atol)`` per system.
    adjoint_rtol, adjoint_atol : float, optional
        Tolerance of the adjoint solve, relative to ``||dL/dx||``; ``None`` takes the forward
        value. The gradient error is of the order of ``adjoint_rtol`` (times a condition number).
    maxiter : int, optional
        Iteration cap of each solve (the solver's default when ``None``).
    M : operator-like, optional
        Preconditioner of the forward solve (anything :func:`~pdekit.core.linop.aslinearoperator`
        takes).
    M_adjoint : operator-like, optional
        Preconditioner of the adjoint solve. ``None`` uses ``M`` when the operator is symmetric and
        ``M^T`` otherwise (the transpose of a callable is taken by autograd, so a preconditioner
        that is not written in torch needs an explicit ``M_adjoint``).
    symmetric : bool, optional
        Declares ``A(p) = A(p)^T``: the adjoint then applies ``matvec`` itself instead of its
        vector-Jacobian product. ``None`` assumes symmetry for ``cg`` and ``minres`` (which
        require it) and not for ``gmres`` and ``bicgstab``.

    Examples
    --------
    >>> a = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64, requires_grad=True)
    >>> b = torch.ones(3, dtype=torch.float64)
    >>> solve = LinearSolve("cg", rtol=1e-12)
    >>> x = solve(lambda X, a: a * X, b, a)          # A(a) = diag(a)
    >>> x.sum().backward()                           # d/da sum(1 / a) = -1 / a**2
    >>> torch.allclose(a.grad, -1 / a.detach() ** 2)
    True
    """

    method: Method = "cg"
    rtol: float = 1e-10
    atol: float = 0.0
    adjoint_rtol: float | None = None
    adjoint_atol: float | None = None
    maxiter: int | None = None
    M: Any = None
    M_adjoint: Any = None
    symmetric: bool | None = None

    def __post_init__(self):
        if self.method not in _METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {_METHODS}")

    @property
    def is_symmetric(self) -> bool:
        if self.symmetric is not None:
            return bool(self.symmetric)
        return self.method in _SYMMETRIC_METHODS

    def __call__(
        self,
        matvec: ParamMatVec,
        b: torch.Tensor,
        *params: torch.Tensor,
        x0: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Solve ``A(params) x = b``; ``b`` (and ``x0``) of shape ``(n,)`` or ``(B, n)``."""
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
        X = _AdjointSolve.apply(self, matvec, x0, B, *params)
        return X[0] if single else X


def differentiable_solve(
    matvec: ParamMatVec,
    b: torch.Tensor,
    *params: torch.Tensor,
    method: Method = "cg",
    rtol: float = 1e-10,
    atol: float = 0.0,
    adjoint_rtol: float | None = None,
    adjoint_atol: float | None = None,
    maxiter: int | None = None,
    M: Any = None,
    M_adjoint: Any = None,
    x0: torch.Tensor | None = None,
    symmetric: bool | None = None,
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
    method, rtol, atol, adjoint_rtol, adjoint_atol, maxiter, M, M_adjoint, symmetric
        See :class:`LinearSolve`.
    x0 : torch.Tensor, optional
        Initial guess, shaped like ``b`` (not differentiated).

    Returns
    -------
    torch.Tensor
        ``x``, shaped like ``b``.

    Raises
    ------
    NotConvergedError
        When the forward solve, or in ``backward`` the adjoint solve, misses its tolerance.

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
    >>> x = differentiable_solve(laplacian, torch.ones(5, dtype=torch.float64), c, rtol=1e-12)
    >>> x.sum().backward()                           # sum(x) is proportional to 1 / c
    >>> bool(torch.isclose(c.grad, -x.sum().detach() / c.detach()))
    True
    """
    config = LinearSolve(
        method=method,
        rtol=rtol,
        atol=atol,
        adjoint_rtol=adjoint_rtol,
        adjoint_atol=adjoint_atol,
        maxiter=maxiter,
        M=M,
        M_adjoint=M_adjoint,
        symmetric=symmetric,
    )
    return config(matvec, b, *params, x0=x0)


# -- implementation -------------------------------------------------------------------------


def _checked_solve(
    which: str,
    config: LinearSolve,
    A: LinearOperator,
    b: torch.Tensor,
    *,
    x0: torch.Tensor | None,
    rtol: float,
    atol: float,
    M: Any,
) -> torch.Tensor:
    result: SolveResult = krylov.solve(
        A, b, method=config.method, x0=x0, rtol=rtol, atol=atol, maxiter=config.maxiter, M=M
    )
    if not result.all_converged:
        worst = float(result.rel_residual.max())
        raise NotConvergedError(
            f"{which} solve ({config.method}) did not converge: relative residual {worst:.3e} "
            f"after {int(result.iterations.max())} iterations (rtol={rtol:g}, atol={atol:g}, "
            f"maxiter={config.maxiter})",
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
    def forward(ctx, config: LinearSolve, matvec, x0, b, *params):
        n = b.shape[-1]
        A = LinearOperator((n, n), lambda X: matvec(X, *params), symmetric=config.is_symmetric)
        x = _checked_solve(
            "forward", config, A, b, x0=x0, rtol=config.rtol, atol=config.atol, M=config.M
        )
        ctx.config = config
        ctx.matvec = matvec
        ctx.save_for_backward(x, *params)
        return x

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_x):
        config: LinearSolve = ctx.config
        matvec = ctx.matvec
        x, *params = ctx.saved_tensors
        params = tuple(params)
        n = x.shape[-1]
        fixed = tuple(p.detach() for p in params)

        if config.is_symmetric:
            AT = LinearOperator((n, n), lambda X: matvec(X, *fixed), symmetric=True)
            M_adj = config.M if config.M_adjoint is None else config.M_adjoint
        else:
            AT = _transposed(matvec, fixed, n)
            M_adj = config.M_adjoint
            if M_adj is None and config.M is not None:
                M_adj = aslinearoperator(config.M, n).T
        rtol = config.rtol if config.adjoint_rtol is None else config.adjoint_rtol
        atol = config.atol if config.adjoint_atol is None else config.adjoint_atol
        lam = _checked_solve("adjoint", config, AT, grad_x, x0=None, rtol=rtol, atol=atol, M=M_adj)

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
