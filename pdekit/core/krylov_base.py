"""Building blocks shared by the Krylov solvers of :mod:`pdekit.core.krylov` and the recycling
solvers of :mod:`pdekit.core.recycling`.

Everything works on batches of ``B`` independent systems, vectors of shape ``(B, n)``:

* :class:`KrylovRun`: validated inputs (``A``, ``b``, ``x0``, tolerances, ``M``) and the per-system
  bookkeeping (iteration counts, matvec count, residual history, convergence, the final
  :class:`~pdekit.core.solve_result.SolveResult` and ``strict`` handling);
* row-wise helpers :func:`dot`, :func:`norm`, :func:`safe_div` and :func:`select`;
* the GMRES kernels :func:`cgs2`, :func:`arnoldi_cgs2`, :func:`givens_step` and
  :func:`cycle_coefficients` (GMRES(m) and GCRO-DR run the same ones, which is why GCRO-DR with
  ``k = 0`` reproduces GMRES(m) bit for bit);
* :func:`fill_doc`, which inserts the shared numpydoc blocks (:data:`PARAMETERS`,
  :data:`RETURNS`) into the docstrings of the public solvers.

These names are public within pdekit (other pdekit modules import them); they are not part of the
user-facing API and are not re-exported by :mod:`pdekit.core`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from pdekit.core.linop import LinearOperator, as_batch, aslinearoperator
from pdekit.core.solve_result import BreakdownError, NotConvergedError, SolveResult

__all__ = [
    "Callback",
    "KrylovRun",
    "dot",
    "norm",
    "safe_div",
    "select",
    "cgs2",
    "arnoldi_cgs2",
    "givens_step",
    "cycle_coefficients",
    "fill_doc",
    "PARAMETERS",
    "RETURNS",
]

Callback = Callable[[torch.Tensor], Any]
_F = TypeVar("_F", bound=Callable[..., Any])


# ----------------------------------------------------------------------------------------------
# Row-wise helpers
# ----------------------------------------------------------------------------------------------


def dot(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Row-wise inner products of two ``(B, n)`` batches."""
    return (u * v).sum(dim=1)


def norm(u: torch.Tensor) -> torch.Tensor:
    """Row-wise Euclidean norms of a ``(B, n)`` batch."""
    return torch.linalg.vector_norm(u, dim=1)


def safe_div(a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """``a / d`` with 0 where ``d == 0`` (used for frozen systems, whose state may be zero)."""
    nz = d != 0
    return torch.where(nz, a / torch.where(nz, d, torch.ones_like(d)), torch.zeros_like(a))


def select(mask: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """Per-system choice: ``new`` where ``mask`` (shape ``(B,)``) holds, else ``old``."""
    return torch.where(mask.view(-1, *([1] * (new.dim() - 1))), new, old)


def _n_matrices(A: Any) -> int | None:
    """Number of stacked matrices in a ``(B, n, n)`` tensor or array, else ``None``."""
    shape = getattr(A, "shape", None)
    if shape is not None and len(shape) == 3:
        return int(shape[0])
    return None


def _ten_n(n: int) -> int:
    return 10 * n


# ----------------------------------------------------------------------------------------------
# Inputs and bookkeeping
# ----------------------------------------------------------------------------------------------


class KrylovRun:
    """Validated inputs and per-system bookkeeping of one batched Krylov solve.

    ``method`` names the solver in messages and in the result. ``default_maxiter(n)`` gives the
    iteration bound when ``maxiter`` is ``None`` (``10 n``). After construction ``x`` and ``r`` hold
    the initial iterate and residual (``r = b`` and no matvec for ``x0=None``), ``tol`` the
    per-system thresholds ``max(rtol ||b||, atol)`` and ``conv`` the systems already converged.
    """

    def __init__(
        self,
        method: str,
        A: Any,
        b: Any,
        x0: Any,
        rtol: float,
        atol: float,
        maxiter: int | None,
        M: Any,
        callback: Callback | None,
        strict: bool,
        default_maxiter: Callable[[int], int] = _ten_n,
    ):
        self.method = method
        if not isinstance(b, torch.Tensor):
            b = torch.as_tensor(b)
        if b.dim() not in (1, 2):
            raise ValueError(f"{method}: b must be (n,) or (B, n), got shape {tuple(b.shape)}")
        if b.is_complex():
            raise ValueError(f"{method}: complex systems are not supported (b is {b.dtype})")
        if not b.is_floating_point():
            b = b.to(torch.get_default_dtype())
        if not bool(torch.isfinite(b).all()):
            raise ValueError(f"{method}: b contains NaN or inf")
        if not (rtol >= 0 and atol >= 0):
            raise ValueError(f"{method}: rtol and atol must be >= 0, got rtol={rtol}, atol={atol}")
        self.b, self.squeeze = as_batch(b)
        n_sys, n = self.b.shape
        self.A = self._operator(A, "A", n, n_sys)
        self.M = None if M is None else self._operator(M, "M", n, n_sys)
        self.maxiter = default_maxiter(n) if maxiter is None else int(maxiter)
        if self.maxiter < 0:
            raise ValueError(f"{method}: maxiter must be >= 0, got {maxiter}")
        self.callback, self.strict = callback, strict
        self.matvecs = 0
        self.history: list[torch.Tensor] = []
        self.its = torch.zeros(n_sys, dtype=torch.long, device=b.device)

        self.bnorm = norm(self.b)
        self.tol = torch.clamp(rtol * self.bnorm, min=atol)
        self.claim_tol = self.tol.clone()
        zero_b = (self.bnorm == 0).unsqueeze(1)
        if x0 is None:
            self.x, self.r = torch.zeros_like(self.b), self.b
        else:
            x = self._initial_guess(x0, b)
            self.x = torch.where(zero_b, torch.zeros_like(x), x)
            self.r = self.b - self.matvec(self.x)
        self.rnorm = norm(self.r)  # true residual norm, last time it was computed
        self.rnorm_is_current = False  # True when rnorm is that of the current x (GMRES)
        self.conv = self.rnorm <= self.tol

    def _initial_guess(self, x0: Any, b: torch.Tensor) -> torch.Tensor:
        if not isinstance(x0, torch.Tensor):
            x0 = torch.as_tensor(x0)
        if tuple(x0.shape) != tuple(b.shape):
            raise ValueError(
                f"{self.method}: x0 has shape {tuple(x0.shape)} but b has shape {tuple(b.shape)}"
            )
        if not bool(torch.isfinite(x0).all()):
            raise ValueError(f"{self.method}: x0 contains NaN or inf")
        return as_batch(x0.to(device=b.device, dtype=b.dtype))[0]

    def _operator(self, A: Any, name: str, n: int, n_sys: int) -> LinearOperator:
        k = _n_matrices(A)
        if k is not None and k != n_sys:
            raise ValueError(
                f"{self.method}: {name} holds {k} matrices but b has {n_sys} system(s)"
            )
        op = aslinearoperator(A, n)
        if op.shape != (n, n):
            raise ValueError(f"{self.method}: {name} has shape {op.shape} but b has length {n}")
        return op

    def matvec(self, X: torch.Tensor) -> torch.Tensor:
        """``A X`` for a ``(B, n)`` batch, counted in ``matvecs``."""
        self.matvecs += 1
        Y = self.A.matvec(X)
        if Y.shape != X.shape:
            raise ValueError(f"{self.method}: A maps shape {tuple(X.shape)} to {tuple(Y.shape)}")
        return Y

    def precond(self, X: torch.Tensor) -> torch.Tensor:
        """``M X`` (``X`` itself without a preconditioner); not counted."""
        return X if self.M is None else self.M.matvec(X)

    def step(self, active: torch.Tensor, estimate: torch.Tensor) -> None:
        """Count one iteration for the ``active`` systems and record the tracked residual."""
        self.its += active
        last = self.history[-1] if self.history else self.rnorm
        self.history.append(torch.where(active, estimate, last))

    def confirm(self, x: torch.Tensor, claim: torch.Tensor):
        """Check the true residual of the systems in ``claim``; returns ``(passed, r_true)``."""
        r = self.b - self.matvec(x)
        rn = norm(r)
        passed = claim & (rn <= self.tol)
        self.conv = self.conv | passed
        self.rnorm = torch.where(claim, rn, self.rnorm)
        return passed, r

    def notify(self, x: torch.Tensor) -> None:
        """Call the user's callback with the current iterate (shape of ``b``)."""
        if self.callback is not None:
            self.callback(x[0] if self.squeeze else x)

    def result(self, x: torch.Tensor, *, check: bool = True, recycle: Any = None) -> SolveResult:
        """Final true residuals, the result object, and ``strict`` handling."""
        if not self.rnorm_is_current and not bool(self.conv.all()):
            rn = norm(self.b - self.matvec(x))
            self.rnorm = torch.where(self.conv, self.rnorm, rn)
            self.conv = self.conv | (rn <= self.tol)
        bn = self.bnorm
        rel = torch.where(
            bn > 0, self.rnorm / torch.where(bn > 0, bn, torch.ones_like(bn)), self.rnorm
        )
        res = SolveResult(
            x=x[0] if self.squeeze else x,
            iterations=self.its,
            converged=self.conv,
            rel_residual=rel,
            residual_history=self.history,
            matvecs=self.matvecs,
            method=self.method,
            recycle=recycle,
        )
        if check and self.strict and not res.all_converged:
            n_bad = int((~res.converged).sum())
            raise NotConvergedError(
                f"{self.method}: {n_bad} of {res.converged.numel()} system(s) did not converge in "
                f"maxiter={self.maxiter} iterations (worst relative residual "
                f"{float(rel.max()):.3g})",
                res,
            )
        return res

    def breakdown(
        self, x: torch.Tensor, bad: torch.Tensor, values: torch.Tensor, what: str, recycle=None
    ) -> BreakdownError:
        """A :class:`BreakdownError` naming the first system in ``bad`` (to be raised)."""
        i = int(torch.nonzero(bad)[0, 0])
        msg = f"{self.method}: system {i}: {what} (value {float(values[i]):.3g})"
        return BreakdownError(msg, self.result(x, check=False, recycle=recycle))


# ----------------------------------------------------------------------------------------------
# GMRES kernels (GMRES(m) and GCRO-DR)
# ----------------------------------------------------------------------------------------------


def cgs2(Q: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthogonalise ``w`` (B, n) against the orthonormal rows of ``Q`` (B, k, n), twice.

    Returns the coefficients ``h`` (B, k) (sum of both passes) and the orthogonalised ``w``.
    """
    h = torch.einsum("bkn,bn->bk", Q, w)
    w = w - torch.einsum("bkn,bk->bn", Q, h)
    h2 = torch.einsum("bkn,bn->bk", Q, w)
    w = w - torch.einsum("bkn,bk->bn", Q, h2)
    return h + h2, w


def arnoldi_cgs2(w: torch.Tensor, V: torch.Tensor, j: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One Arnoldi step: orthogonalise ``w = A M v_j`` against ``V[:, :j+1]`` (CGS2).

    ``V`` is the (B, m+1, n) basis with rows ``0..j`` filled. Returns column ``j`` of the Hessenberg
    matrix, ``h`` of shape (B, j+2) (last entry ``||w_perp||``), and ``v_{j+1}`` (B, n), which is 0
    for a system whose ``||w_perp|| = 0`` (happy breakdown).
    """
    h, w = cgs2(V[:, : j + 1], w)
    h_next = norm(w)
    v_next = safe_div(w, h_next[:, None])
    return torch.cat([h, h_next[:, None]], dim=1), v_next


def givens_step(
    h: torch.Tensor, R: torch.Tensor, Omega: torch.Tensor, beta: torch.Tensor, j: int
) -> torch.Tensor:
    """Rotate Hessenberg column ``j`` (``h``, (B, j+2)) into ``R`` and extend the rotations.

    ``Omega`` (B, m+1, m+1) is the product of the Givens rotations of steps ``0..j-1`` (identity at
    the start of a cycle); this step applies it to ``h``, chooses the rotation that zeroes
    ``h[j+1]``, writes column ``j`` of the triangular factor into ``R`` (B, m, m) and updates rows
    ``j, j+1`` of ``Omega`` in place. Returns the residual estimate ``beta |Omega[:, j+1, 0]|`` of
    the cycle's least-squares iterate.
    """
    col = torch.bmm(Omega[:, : j + 2, : j + 2], h.unsqueeze(-1)).squeeze(-1)
    a, c = col[:, j], col[:, j + 1]
    rho = torch.hypot(a, c)
    cs = torch.where(rho > 0, safe_div(a, rho), torch.ones_like(a))
    sn = safe_div(c, rho)
    R[:, :j, j] = col[:, :j]
    R[:, j, j] = rho
    top, bottom = Omega[:, j, : j + 2].clone(), Omega[:, j + 1, : j + 2].clone()
    Omega[:, j, : j + 2] = cs[:, None] * top + sn[:, None] * bottom
    Omega[:, j + 1, : j + 2] = -sn[:, None] * top + cs[:, None] * bottom
    return beta * Omega[:, j + 1, 0].abs()


def cycle_coefficients(
    R: torch.Tensor, Omega: torch.Tensor, beta: torch.Tensor, k: torch.Tensor
) -> torch.Tensor:
    """Least-squares coefficients ``y`` (B, m) of a cycle in which system ``i`` ran ``k[i]`` steps.

    Solves ``R[:k, :k] y = beta Omega[:k, 0]`` per system and sets ``y[k:] = 0``.
    """
    m = R.shape[-1]
    keep = torch.arange(m, device=R.device)[None, :] < k[:, None]
    Rk = torch.where(keep[:, :, None] & keep[:, None, :], R, torch.diag_embed((~keep).to(R.dtype)))
    g = torch.where(keep, beta[:, None] * Omega[:, :m, 0], torch.zeros_like(R[:, 0]))
    return torch.linalg.solve_triangular(Rk, g.unsqueeze(-1), upper=True).squeeze(-1)


# ----------------------------------------------------------------------------------------------
# Shared docstring blocks
# ----------------------------------------------------------------------------------------------

PARAMETERS = """
A : tensor, sparse tensor, scipy matrix, callable or LinearOperator
    ``(n, n)`` operator shared by all systems, or one per system: a ``(B, n, n)`` tensor or a
    callable mapping ``(B, n)`` to ``(B, n)`` row by row.
b : torch.Tensor
    Right-hand side(s), ``(n,)`` or ``(B, n)``. Sets the device and dtype of the solve.
x0 : torch.Tensor, optional
    Initial guess, same shape as ``b`` (cast to its dtype and device; never modified).
rtol, atol : float
    System ``i`` converges when ``||b_i - A x_i|| <= max(rtol ||b_i||, atol)`` (true residual).
maxiter : int, optional
    Most iterations per system (default ``10 n``).
M : same kinds as ``A``, optional
    Preconditioner approximating ``A^{-1}`` (scipy's convention); ``None`` is the identity.
callback : callable, optional
    Called as ``callback(x)`` with the current iterate (do not modify it) after every
    iteration, or after every cycle for the restarted methods (GMRES, GCRO-DR).
strict : bool
    Raise :class:`~pdekit.core.solve_result.NotConvergedError` instead of returning ``info > 0``.
"""
"""Numpydoc lines for the arguments common to every solver (``{params}`` in a docstring)."""

RETURNS = """
x : torch.Tensor
    Solution, shape of ``b``.
info : int
    0 when every system converged, else the largest iteration count reached.
"""
"""Numpydoc lines for the ``x, info`` pair every solver returns (``{returns}`` in a docstring)."""


def fill_doc(**blocks: str) -> Callable[[_F], _F]:
    """Decorator replacing each docstring line ``{name}`` by the block ``blocks[name]``.

    The block is dedented and re-indented to the placeholder's indentation. A docstring that is
    absent (``python -OO``) is left alone.

    Examples
    --------
    >>> @fill_doc(args="x : int\\n    A number.")
    ... def f(x):
    ...     '''Identity.
    ...
    ...     Parameters
    ...     ----------
    ...     {args}
    ...     '''
    ...     return x
    >>> print(f.__doc__.splitlines()[4].strip())
    x : int
    """

    def decorate(fn: _F) -> _F:
        if fn.__doc__:
            fn.__doc__ = _fill(fn.__doc__, blocks)
        return fn

    return decorate


def _fill(doc: str, blocks: dict[str, str]) -> str:
    out = []
    for line in doc.splitlines():
        key = line.strip()
        if key.startswith("{") and key.endswith("}") and key[1:-1] in blocks:
            indent = line[: len(line) - len(line.lstrip())]
            body = textwrap.dedent(blocks[key[1:-1]]).strip("\n").splitlines()
            out += [indent + text if text else "" for text in body]
        else:
            out.append(line)
    return "\n".join(out)
