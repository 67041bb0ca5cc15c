"""Krylov solvers (CG, GMRES, BiCGStab, MINRES) batched over independent systems.

Every method follows scipy's contract, ``x, info = method(A, b, x0=None, *, rtol, atol, maxiter, M,
callback)``, and :func:`solve` returns the same run as a :class:`~pdekit.core.solve_result.SolveResult`.
``b`` is ``(n,)`` or ``(B, n)``: B independent systems solved at once with batched tensor operations.
``A`` (and the preconditioner ``M``) may be anything :func:`~pdekit.core.linop.aslinearoperator`
accepts, including one ``(B, n, n)`` matrix per system or a callable acting row-wise.

Shared conventions
------------------
* System ``i`` has converged when ``||b_i - A x_i|| <= max(rtol ||b_i||, atol)`` (scipy's definition) for
  the *true* residual. Each method tracks a cheap residual estimate; when the estimate of a system
  meets its threshold, the true residual of the batch is recomputed (one matvec) to confirm. CG and
  BiCGStab then replace the recursive residual of a system that failed the check by the true one;
  MINRES (whose estimate is an M-norm) lowers that system's threshold by the observed ratio.
* A converged system is frozen (``x`` and the method's state stop changing) while the others go on, so
  a batched solve reproduces a loop of single solves. ``b_i = 0`` gives ``x_i = 0`` at iteration 0.
* ``iterations[i]`` counts the iterations that changed system ``i``; ``maxiter`` bounds it per system.
  ``residual_history`` holds one ``(B,)`` entry per batched iteration: the estimate the method
  tracks (CG, BiCGStab: recursive ``||r||``; MINRES: ``||r||_M``; GMRES: the Givens estimate), with
  frozen systems repeating their last value. Its length is ``iterations.max()`` (for GMRES it is
  the number of batched inner steps, larger only if a system waited for the end of a cycle after
  its estimate met the tolerance but its true residual did not).
* ``matvecs`` counts batched applications of ``A`` (preconditioner applications are not counted):
  one for the initial residual when ``x0`` is given; per iteration 1 (CG, MINRES, GMRES) or 2
  (BiCGStab); one per confirmation check (CG, BiCGStab, MINRES: each iteration at which some
  system's estimate first meets its threshold) or one per GMRES cycle; and, except for GMRES, one
  at exit when some system has not converged. So for a single system started from ``x0=None``:
  CG and MINRES use ``iterations + 1``, BiCGStab ``2 iterations + 1``, GMRES(m)
  ``iterations + ceil(iterations / m)`` (when no confirmation fails).
* Breakdowns raise :class:`~pdekit.core.solve_result.BreakdownError` naming the first failing
  system; ``strict=True`` turns non-convergence into
  :class:`~pdekit.core.solve_result.NotConvergedError`. Both carry the result so far.

GMRES(m) conventions (what :mod:`pdekit.core.recycling` must reproduce with k = 0)
----------------------------------------------------------------------------------
Right preconditioning: the iterate is ``x = x0 + M V y`` and the residual is the unpreconditioned
``b - A x``. With ``m = min(restart, n)``:

1. ``r = b - A x`` (one matvec; skipped for ``x0=None``, where ``r = b``). A system is converged
   if ``||r|| <= tol``.
2. A cycle starts for every unconverged system with iterations left: ``beta = ||r||``,
   ``v_0 = r / beta``, rotation product ``Omega = I``.
3. Inner step ``j = 0, 1, ...`` (one *iteration* = one matvec): ``w = A M v_j``; ``w`` is
   orthogonalised against ``v_0..v_j`` by :func:`_arnoldi_cgs2` (classical Gram-Schmidt twice);
   column ``j`` of the Hessenberg matrix is rotated by :func:`_givens_step`, whose estimate
   ``beta |Omega[j+1, 0]|`` is the residual norm of the cycle's least-squares iterate.
4. A system stops stepping in this cycle right after the step at which its estimate is
   ``<= tol = max(rtol ||b||, atol)`` (a happy breakdown gives estimate 0), or when it has run
   ``m`` steps in the cycle, or when its total count reaches ``maxiter`` (iterations count inner
   steps over all cycles).
5. The cycle ends when no system is stepping. For each system that took ``k > 0`` steps, ``y``
   solves ``R[:k, :k] y = beta Omega[:k, 0]`` (:func:`_cycle_coefficients`),
   ``x <- x + M (V_k y)`` (``M`` is applied once, to the combination), and ``r = b - A x`` is
   recomputed (one batched matvec). Convergence is decided on this true residual
   only; an unconverged system with iterations left starts the next cycle from it (step 2).

The default ``maxiter`` is ``10 n`` inner iterations for GMRES as for the other methods (scipy's
``maxiter`` for gmres counts restart cycles instead). The building blocks :func:`_cgs2`,
:func:`_arnoldi_cgs2`, :func:`_givens_step` and :func:`_cycle_coefficients` keep their signatures so
that recycling solvers can share them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch

from pdekit.core.linop import LinearOperator, as_batch, aslinearoperator
from pdekit.core.solve_result import BreakdownError, NotConvergedError, SolveResult

__all__ = ["cg", "gmres", "bicgstab", "minres", "solve"]

Method = Literal["cg", "gmres", "bicgstab", "minres"]
Callback = Callable[[torch.Tensor], Any]


def _dot(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Row-wise inner products of two ``(B, n)`` batches."""
    return (u * v).sum(dim=1)


def _norm(u: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(u, dim=1)


def _div(a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """``a / d`` with 0 where ``d == 0`` (used for frozen systems, whose state may be zero)."""
    nz = d != 0
    return torch.where(nz, a / torch.where(nz, d, torch.ones_like(d)), torch.zeros_like(a))


def _sel(mask: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """Per-system choice: ``new`` where ``mask`` (shape ``(B,)``) holds, else ``old``."""
    return torch.where(mask.view(-1, *([1] * (new.dim() - 1))), new, old)


def _n_matrices(A: Any) -> int | None:
    """Number of stacked matrices in a ``(B, n, n)`` tensor or array, else ``None``."""
    shape = getattr(A, "shape", None)
    if shape is not None and len(shape) == 3:
        return int(shape[0])
    return None


class _Run:
    """Validated inputs and per-system bookkeeping shared by the four methods."""

    def __init__(self, method, A, b, x0, rtol, atol, maxiter, M, callback, strict, default_maxiter):
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

        self.bnorm = _norm(self.b)
        self.tol = torch.clamp(rtol * self.bnorm, min=atol)
        self.claim_tol = self.tol.clone()
        zero_b = (self.bnorm == 0).unsqueeze(1)
        if x0 is None:
            self.x, self.r = torch.zeros_like(self.b), self.b
        else:
            if not isinstance(x0, torch.Tensor):
                x0 = torch.as_tensor(x0)
            if tuple(x0.shape) != tuple(b.shape):
                raise ValueError(
                    f"{method}: x0 has shape {tuple(x0.shape)} but b has shape {tuple(b.shape)}"
                )
            if not bool(torch.isfinite(x0).all()):
                raise ValueError(f"{method}: x0 contains NaN or inf")
            x = as_batch(x0.to(device=b.device, dtype=b.dtype))[0]
            self.x = torch.where(zero_b, torch.zeros_like(x), x)
            self.r = self.b - self.matvec(self.x)
        self.rnorm = _norm(self.r)  # true residual norm, last time it was computed
        self.rnorm_is_current = False  # True when rnorm is that of the current x (GMRES)
        self.conv = self.rnorm <= self.tol

    def _operator(self, A, name, n, n_sys) -> LinearOperator:
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
        self.matvecs += 1
        Y = self.A.matvec(X)
        if Y.shape != X.shape:
            raise ValueError(f"{self.method}: A maps shape {tuple(X.shape)} to {tuple(Y.shape)}")
        return Y

    def precond(self, X: torch.Tensor) -> torch.Tensor:
        return X if self.M is None else self.M.matvec(X)

    def step(self, active: torch.Tensor, estimate: torch.Tensor) -> None:
        """Count one iteration for the ``active`` systems and record the tracked residual."""
        self.its += active
        last = self.history[-1] if self.history else self.rnorm
        self.history.append(torch.where(active, estimate, last))

    def confirm(self, x: torch.Tensor, claim: torch.Tensor):
        """Check the true residual of the systems in ``claim``; returns ``(passed, r_true)``."""
        r = self.b - self.matvec(x)
        rn = _norm(r)
        passed = claim & (rn <= self.tol)
        self.conv = self.conv | passed
        self.rnorm = torch.where(claim, rn, self.rnorm)
        return passed, r

    def notify(self, x: torch.Tensor) -> None:
        if self.callback is not None:
            self.callback(x[0] if self.squeeze else x)

    def result(self, x: torch.Tensor, *, check: bool = True, recycle=None) -> SolveResult:
        """Final true residuals, the result object, and ``strict`` handling."""
        if not self.rnorm_is_current and not bool(self.conv.all()):
            rn = _norm(self.b - self.matvec(x))
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

    def breakdown(self, x: torch.Tensor, bad: torch.Tensor, values: torch.Tensor, what: str):
        """A :class:`BreakdownError` naming the first system in ``bad``."""
        i = int(torch.nonzero(bad)[0, 0])
        msg = f"{self.method}: system {i}: {what} (value {float(values[i]):.3g})"
        return BreakdownError(msg, self.result(x, check=False))


# ----------------------------------------------------------------------------------------------
# CG
# ----------------------------------------------------------------------------------------------


def _cg(run: _Run) -> SolveResult:
    x, r = run.x, run.r
    active = ~run.conv
    z = run.precond(r)
    rz = _dot(r, z)
    bad = active & ~(rz > 0)
    if bool(bad.any()):
        raise run.breakdown(x, bad, rz, "r^T M r <= 0: the preconditioner M is not SPD")
    p = z
    n_active = int(active.sum())
    for _ in range(run.maxiter):
        if n_active == 0:
            break
        q = run.matvec(p)
        pq = _dot(p, q)
        bad = active & ~(pq > 0)  # also catches NaN
        alpha = torch.where(active & ~bad, _div(rz, pq), torch.zeros_like(pq))
        x = _sel(active, x + alpha[:, None] * p, x)
        r = _sel(active, r - alpha[:, None] * q, r)
        rn = _norm(r)
        run.step(active, rn)
        claim = active & (rn <= run.claim_tol)
        has_bad, has_claim = torch.stack([bad.any(), claim.any()]).tolist()
        if has_bad:
            raise run.breakdown(
                x, bad, pq, "p^T A p <= 0: the matrix A is not symmetric positive definite"
            )
        if has_claim:
            passed, r_true = run.confirm(x, claim)
            r = _sel(claim & ~passed, r_true, r)  # residual replacement
            active = ~run.conv
            n_active = int(active.sum())
        z = run.precond(r)
        rz_new = _dot(r, z)
        bad = active & ~(rz_new > 0)
        if bool(bad.any()):
            raise run.breakdown(x, bad, rz_new, "r^T M r <= 0: the preconditioner M is not SPD")
        beta = _div(rz_new, rz)
        p = _sel(active, z + beta[:, None] * p, p)
        rz = torch.where(active, rz_new, rz)
        run.notify(x)
    return run.result(x)


# ----------------------------------------------------------------------------------------------
# GMRES(m): building blocks (stable signatures, imported by pdekit.core.recycling)
# ----------------------------------------------------------------------------------------------


def _cgs2(Q: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthogonalise ``w`` (B, n) against the orthonormal rows of ``Q`` (B, k, n), twice.

    Returns the coefficients ``h`` (B, k) (sum of both passes) and the orthogonalised ``w``.
    """
    h = torch.einsum("bkn,bn->bk", Q, w)
    w = w - torch.einsum("bkn,bk->bn", Q, h)
    h2 = torch.einsum("bkn,bn->bk", Q, w)
    w = w - torch.einsum("bkn,bk->bn", Q, h2)
    return h + h2, w


def _arnoldi_cgs2(w: torch.Tensor, V: torch.Tensor, j: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One Arnoldi step: orthogonalise ``w = A M v_j`` against ``V[:, :j+1]`` (CGS2).

    ``V`` is the (B, m+1, n) basis with rows ``0..j`` filled. Returns column ``j`` of the Hessenberg
    matrix, ``h`` of shape (B, j+2) (last entry ``||w_perp||``), and ``v_{j+1}`` (B, n), which is 0
    for a system whose ``||w_perp|| = 0`` (happy breakdown).
    """
    h, w = _cgs2(V[:, : j + 1], w)
    h_next = _norm(w)
    v_next = _div(w, h_next[:, None])
    return torch.cat([h, h_next[:, None]], dim=1), v_next


def _givens_step(
    h: torch.Tensor, R: torch.Tensor, Omega: torch.Tensor, beta: torch.Tensor, j: int
) -> torch.Tensor:
    """Rotate Hessenberg column ``j`` (``h``, (B, j+2)) into ``R`` and extend the rotations.

    ``Omega`` (B, m+1, m+1) is the product of the Givens rotations of steps ``0..j-1`` (identity at
    the start of a cycle); this step applies it to ``h``, chooses the rotation that zeroes
    ``h[j+1]``, writes column ``j`` of the triangular factor into ``R`` (B, m, m) and updates rows
    ``j, j+1`` of ``Omega`` in place. Returns the residual estimate ``beta |Omega[:, j+1, 0]|``.
    """
    col = torch.bmm(Omega[:, : j + 2, : j + 2], h.unsqueeze(-1)).squeeze(-1)
    a, c = col[:, j], col[:, j + 1]
    rho = torch.hypot(a, c)
    cs = torch.where(rho > 0, _div(a, rho), torch.ones_like(a))
    sn = _div(c, rho)
    R[:, :j, j] = col[:, :j]
    R[:, j, j] = rho
    top, bottom = Omega[:, j, : j + 2].clone(), Omega[:, j + 1, : j + 2].clone()
    Omega[:, j, : j + 2] = cs[:, None] * top + sn[:, None] * bottom
    Omega[:, j + 1, : j + 2] = -sn[:, None] * top + cs[:, None] * bottom
    return beta * Omega[:, j + 1, 0].abs()


def _cycle_coefficients(
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


def _gmres(run: _Run, restart: int) -> SolveResult:
    n_sys, n = run.b.shape
    m = min(int(restart), n)
    x, r = run.x, run.r
    run.rnorm_is_current = True  # r = b - A x is recomputed at every restart
    V = r.new_zeros(n_sys, m + 1, n)
    eye = torch.eye(m + 1, dtype=r.dtype, device=r.device)
    while True:
        stepping = ~run.conv & (run.its < run.maxiter)
        if not bool(stepping.any()):
            break
        # ---- one restart cycle: Arnoldi (CGS2) + Givens on the residual r = b - A x ----
        beta = run.rnorm
        V.zero_()
        V[:, 0] = _sel(stepping, _div(r, beta[:, None]), torch.zeros_like(r))
        R = r.new_zeros(n_sys, m, m)
        Omega = eye.expand(n_sys, m + 1, m + 1).clone()
        k = torch.zeros_like(run.its)  # steps taken in this cycle, per system
        for j in range(m):
            w = run.matvec(run.precond(V[:, j]))
            h, V[:, j + 1] = _arnoldi_cgs2(w, V, j)
            estimate = _givens_step(h, R, Omega, beta, j)
            k += stepping
            run.step(stepping, estimate)
            stepping = stepping & (estimate > run.tol) & (run.its < run.maxiter)
            if not bool(stepping.any()):
                break
        # ---- end of cycle: update x, recompute the true residual, decide convergence ----
        y = _cycle_coefficients(R, Omega, beta, k)
        moved = k > 0
        x = _sel(moved, x + run.precond(torch.einsum("bjn,bj->bn", V[:, :m], y)), x)
        r_new = run.b - run.matvec(x)
        r = _sel(moved, r_new, r)
        run.rnorm = torch.where(moved, _norm(r_new), run.rnorm)
        run.conv = run.conv | (moved & (run.rnorm <= run.tol))
        run.notify(x)
    return run.result(x)


# ----------------------------------------------------------------------------------------------
# BiCGStab and MINRES
# ----------------------------------------------------------------------------------------------


def _bicgstab(run: _Run) -> SolveResult:
    x, r = run.x, run.r
    eps = torch.finfo(r.dtype).eps
    r_hat = r  # shadow residual
    r_hat_norm = _norm(r_hat)
    ones = torch.ones_like(run.rnorm)
    rho_old, alpha, omega = ones, ones, ones
    p = v = torch.zeros_like(r)
    active = ~run.conv
    n_active = int(active.sum())
    for it in range(run.maxiter):
        if n_active == 0:
            break
        rho = _dot(r_hat, r)
        bad_rho = active & ~(rho.abs() > eps * r_hat_norm * _norm(r))
        if it == 0:
            p_new = r
        else:
            beta = _div(rho, rho_old) * _div(alpha, omega)
            p_new = r + beta[:, None] * (p - omega[:, None] * v)
        p = _sel(active, p_new, p)
        p_hat = run.precond(p)
        v = run.matvec(p_hat)
        rv = _dot(r_hat, v)
        bad_rv = active & ~bad_rho & ~(rv.abs() > eps * r_hat_norm * _norm(v))
        alpha = _sel(active, _div(rho, rv), alpha)
        s = r - alpha[:, None] * v
        half = active & (_norm(s) <= run.claim_tol)  # converged after the first half-step
        s_hat = run.precond(s)
        t = run.matvec(s_hat)
        ts = _dot(t, s)
        omega_new = _div(ts, _dot(t, t))
        bad_om = active & ~half & ~(ts.abs() > eps * _norm(t) * _norm(s))
        omega = _sel(active & ~half, omega_new, omega)
        x_half = x + alpha[:, None] * p_hat
        x = _sel(active, _sel(half, x_half, x_half + omega[:, None] * s_hat), x)
        r = _sel(active, _sel(half, s, s - omega[:, None] * t), r)
        rho_old = _sel(active, rho, rho_old)
        rn = _norm(r)
        run.step(active, rn)
        claim = active & (rn <= run.claim_tol)
        flags = torch.stack([bad_rho.any(), bad_rv.any(), bad_om.any(), claim.any()]).tolist()
        if flags[0]:
            raise run.breakdown(x, bad_rho, rho, "breakdown rho = r_hat^T r = 0; try gmres")
        if flags[1]:
            raise run.breakdown(x, bad_rv, rv, "breakdown r_hat^T A p = 0; try gmres")
        if flags[2]:
            raise run.breakdown(x, bad_om, ts, "breakdown omega = t^T s / t^T t = 0; try gmres")
        if flags[3]:
            passed, r_true = run.confirm(x, claim)
            r = _sel(claim & ~passed, r_true, r)
            active = ~run.conv
            n_active = int(active.sum())
        run.notify(x)
    return run.result(x)


def _minres(run: _Run) -> SolveResult:
    x, r1 = run.x, run.r
    active = ~run.conv
    y = run.precond(r1)
    beta1 = _dot(r1, y)
    bad = active & ~(beta1 > 0)
    if bool(bad.any()):
        raise run.breakdown(x, bad, beta1, "r^T M r <= 0: the preconditioner M is not SPD")
    beta1 = beta1.clamp(min=0).sqrt()
    zero = torch.zeros_like(beta1)
    oldb, dbar, epsln, sn = zero, zero, zero, zero
    beta, phibar, cs = beta1, beta1, -torch.ones_like(zero)
    r2 = r1
    w = w2 = torch.zeros_like(r1)
    tiny = torch.finfo(r1.dtype).tiny
    n_active = int(active.sum())
    for it in range(run.maxiter):
        if n_active == 0:
            break
        # Lanczos step (Paige & Saunders 1975; the layout follows scipy.sparse.linalg.minres)
        v = _div(y, beta[:, None])
        y_new = run.matvec(v)
        if it > 0:
            y_new = y_new - _div(beta, oldb)[:, None] * r1
        alfa = _dot(v, y_new)
        y_new = y_new - _div(alfa, beta)[:, None] * r2
        r1_new, r2_new = r2, y_new
        y_new = run.precond(r2_new)
        bsq = _dot(r2_new, y_new)
        bad = active & (bsq < 0)
        beta_new = bsq.clamp(min=0).sqrt()
        # QR of the tridiagonal matrix by one more Givens rotation
        delta = cs * dbar + sn * alfa
        gbar = sn * dbar - cs * alfa
        epsln_new = sn * beta_new
        dbar_new = -cs * beta_new
        gamma = torch.hypot(gbar, beta_new).clamp(min=tiny)
        cs_new, sn_new = gbar / gamma, beta_new / gamma
        phi = cs_new * phibar
        w_new = (v - epsln[:, None] * w2 - delta[:, None] * w) / gamma[:, None]
        x = _sel(active, x + phi[:, None] * w_new, x)
        # freeze every state of the systems that were already done
        oldb, beta = _sel(active, beta, oldb), _sel(active, beta_new, beta)
        dbar, epsln = _sel(active, dbar_new, dbar), _sel(active, epsln_new, epsln)
        cs, sn = _sel(active, cs_new, cs), _sel(active, sn_new, sn)
        phibar = _sel(active, sn_new * phibar, phibar)
        w2, w = _sel(active, w, w2), _sel(active, w_new, w)
        r1, r2, y = _sel(active, r1_new, r1), _sel(active, r2_new, r2), _sel(active, y_new, y)
        run.step(active, phibar)
        claim = active & (phibar <= run.claim_tol)
        has_bad, has_claim = torch.stack([bad.any(), claim.any()]).tolist()
        if has_bad:
            raise run.breakdown(x, bad, bsq, "r^T M r < 0: the preconditioner M is not SPD")
        if has_claim:
            passed, _ = run.confirm(x, claim)
            # the estimate is ||r||_M: lower the threshold by the observed ratio and go on
            failed = claim & ~passed
            lowered = 0.9 * phibar * run.tol / run.rnorm.clamp(min=tiny)
            run.claim_tol = torch.where(
                failed, torch.minimum(run.claim_tol, lowered), run.claim_tol
            )
            active = ~run.conv
            n_active = int(active.sum())
        run.notify(x)
    return run.result(x)


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------


def _ten_n(n: int) -> int:
    return 10 * n


def _run_cg(
    A, b, x0=None, *, rtol=1e-5, atol=0.0, maxiter=None, M=None, callback=None, strict=False
):
    return _cg(_Run("cg", A, b, x0, rtol, atol, maxiter, M, callback, strict, _ten_n))


def _run_gmres(
    A,
    b,
    x0=None,
    *,
    rtol=1e-5,
    atol=0.0,
    restart=20,
    maxiter=None,
    M=None,
    callback=None,
    strict=False,
):
    if int(restart) < 1:
        raise ValueError(f"gmres: restart must be >= 1, got {restart}")
    run = _Run("gmres", A, b, x0, rtol, atol, maxiter, M, callback, strict, _ten_n)
    return _gmres(run, restart)


def _run_bicgstab(
    A, b, x0=None, *, rtol=1e-5, atol=0.0, maxiter=None, M=None, callback=None, strict=False
):
    return _bicgstab(_Run("bicgstab", A, b, x0, rtol, atol, maxiter, M, callback, strict, _ten_n))


def _run_minres(
    A, b, x0=None, *, rtol=1e-5, atol=0.0, maxiter=None, M=None, callback=None, strict=False
):
    return _minres(_Run("minres", A, b, x0, rtol, atol, maxiter, M, callback, strict, _ten_n))


_METHODS = {"cg": _run_cg, "gmres": _run_gmres, "bicgstab": _run_bicgstab, "minres": _run_minres}


def solve(A: Any, b: torch.Tensor, method: Method = "cg", **kwargs: Any) -> SolveResult:
    """Solve ``A x = b`` with a Krylov method and return the full :class:`SolveResult`.

    Parameters
    ----------
    A : tensor, sparse tensor, scipy matrix, callable or LinearOperator
        ``(n, n)`` operator shared by all systems, or one per system (``(B, n, n)`` tensor or a
        callable acting row-wise on ``(B, n)``).
    b : torch.Tensor
        ``(n,)`` or ``(B, n)``; its device and dtype are those of the solve.
    method : {"cg", "gmres", "bicgstab", "minres"}
        CG needs A SPD, MINRES A symmetric; GMRES and BiCGStab take any nonsingular A.
    **kwargs
        The keywords of the method (``x0, rtol, atol, maxiter, M, callback, strict``; ``restart``
        for GMRES).

    Returns
    -------
    SolveResult
        ``x``, per-system ``iterations`` and ``converged``, the true relative residual
        ``||b - A x|| / ||b||`` recomputed at exit, ``residual_history`` and ``matvecs``.

    Raises
    ------
    NotConvergedError
        With ``strict=True`` when a system did not converge (the result is attached).
    BreakdownError
        When the method broke down (e.g. CG on a matrix that is not SPD).

    Examples
    --------
    >>> import torch
    >>> A = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    >>> res = solve(A, torch.tensor([1.0, 2.0], dtype=torch.float64), "minres", rtol=1e-10)
    >>> res.converged.tolist(), res.iterations.tolist(), res.matvecs
    ([True], [2], 3)
    >>> [round(v, 6) for v in res.x.tolist()]
    [0.090909, 0.636364]
    """
    if method not in _METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(_METHODS)}")
    return _METHODS[method](A, b, **kwargs)


_PARAMETERS = """
    A : tensor, sparse tensor, scipy matrix, callable or LinearOperator
        ``(n, n)`` operator shared by all systems, or one per system: a ``(B, n, n)`` tensor or a
        callable mapping ``(B, n)`` to ``(B, n)`` row by row.
    b : torch.Tensor
        Right-hand side(s), ``(n,)`` or ``(B, n)``. Sets the device and dtype of the solve.
    x0 : torch.Tensor, optional
        Initial guess, same shape as ``b`` (cast to its dtype and device; never modified).
    rtol, atol : float
        System ``i`` converges when ``||b_i - A x_i|| <= max(rtol ||b_i||, atol)``.
    maxiter : int, optional
        Most iterations per system (default ``10 n``).
    M : same kinds as ``A``, optional
        Preconditioner approximating ``A^{-1}`` (scipy's convention); ``None`` is the identity.
    callback : callable, optional
        Called as ``callback(x)`` with the current iterate (do not modify it) after every
        iteration (after every restart cycle for GMRES).
    strict : bool
        Raise :class:`NotConvergedError` instead of returning ``info > 0``."""

_RETURNS = """
    Returns
    -------
    x : torch.Tensor
        Solution, shape of ``b``.
    info : int
        0 when every system converged, else the largest iteration count reached.
"""


def cg(
    A: Any,
    b: torch.Tensor,
    x0: torch.Tensor | None = None,
    *,
    rtol: float = 1e-5,
    atol: float = 0.0,
    maxiter: int | None = None,
    M: Any = None,
    callback: Callback | None = None,
    strict: bool = False,
) -> tuple[torch.Tensor, int]:
    """Conjugate gradients (preconditioned when ``M`` is given) for SPD ``A``.

        Parameters
        ----------{params}
    {returns}
        Raises
        ------
        BreakdownError
            If ``p^T A p <= 0`` (A is not SPD) or ``r^T M r <= 0`` (M is not SPD) for an unconverged
            system; the message names the system.

        References
        ----------
        Hestenes & Stiefel (1952), J. Res. NBS 49(6); Saad (2003), *Iterative Methods for Sparse
        Linear Systems*, 2nd ed., SIAM, Alg. 6.18 and 9.1.

        Examples
        --------
        >>> import torch
        >>> A = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
        >>> x, info = cg(A, torch.tensor([1.0, 2.0], dtype=torch.float64), rtol=1e-12)
        >>> info, [round(v, 6) for v in x.tolist()]
        (0, [0.090909, 0.636364])
    """
    res = _run_cg(
        A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=M, callback=callback, strict=strict
    )
    return res.x, res.info


def gmres(
    A: Any,
    b: torch.Tensor,
    x0: torch.Tensor | None = None,
    *,
    rtol: float = 1e-5,
    atol: float = 0.0,
    restart: int = 20,
    maxiter: int | None = None,
    M: Any = None,
    callback: Callback | None = None,
    strict: bool = False,
) -> tuple[torch.Tensor, int]:
    """Restarted GMRES(m), right preconditioned, with CGS2 Arnoldi and Givens rotations.

        The exact cycle, iteration and restart conventions are in the module docstring. Here
        ``maxiter`` counts *inner* iterations (matvecs) over all cycles, not cycles as in scipy,
        ``restart`` is the cycle length ``m`` (capped at ``n``), and ``callback(x)`` is called at the
        end of every cycle.

        Parameters
        ----------{params}
        restart : int
            Cycle length ``m`` (Arnoldi steps between restarts), capped at ``n``.
    {returns}
        References
        ----------
        Saad & Schultz (1986), GMRES, SIAM J. Sci. Stat. Comput. 7(3):856-869; Saad (2003),
        *Iterative Methods for Sparse Linear Systems*, 2nd ed., SIAM, Alg. 6.9 and 9.5.

        Examples
        --------
        >>> import torch
        >>> A = torch.tensor([[2.0, 1.0], [0.0, 3.0]], dtype=torch.float64)
        >>> x, info = gmres(A, torch.tensor([3.0, 3.0], dtype=torch.float64), rtol=1e-12)
        >>> info, [round(v, 6) for v in x.tolist()]
        (0, [1.0, 1.0])
    """
    res = _run_gmres(
        A,
        b,
        x0,
        rtol=rtol,
        atol=atol,
        restart=restart,
        maxiter=maxiter,
        M=M,
        callback=callback,
        strict=strict,
    )
    return res.x, res.info


def bicgstab(
    A: Any,
    b: torch.Tensor,
    x0: torch.Tensor | None = None,
    *,
    rtol: float = 1e-5,
    atol: float = 0.0,
    maxiter: int | None = None,
    M: Any = None,
    callback: Callback | None = None,
    strict: bool = False,
) -> tuple[torch.Tensor, int]:
    """BiCGStab (right preconditioned, as scipy) for general nonsingular ``A``.

        One iteration is a full BiCGStab step (two matvecs); a system whose half-step residual ``s``
        already meets the tolerance stops there.

        Parameters
        ----------{params}
    {returns}
        Raises
        ------
        BreakdownError
            If ``rho = r_hat^T r``, ``r_hat^T A p`` or ``omega`` vanishes (to rounding) for an
            unconverged system; the message names the system and the quantity.

        References
        ----------
        van der Vorst (1992), Bi-CGSTAB, SIAM J. Sci. Stat. Comput. 13(2):631-644; Saad (2003),
        *Iterative Methods for Sparse Linear Systems*, 2nd ed., SIAM, Alg. 7.7.

        Examples
        --------
        >>> import torch
        >>> A = torch.tensor([[2.0, 1.0], [0.0, 3.0]], dtype=torch.float64)
        >>> x, info = bicgstab(A, torch.tensor([3.0, 3.0], dtype=torch.float64), rtol=1e-12)
        >>> info, [round(v, 6) for v in x.tolist()]
        (0, [1.0, 1.0])
    """
    res = _run_bicgstab(
        A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=M, callback=callback, strict=strict
    )
    return res.x, res.info


def minres(
    A: Any,
    b: torch.Tensor,
    x0: torch.Tensor | None = None,
    *,
    rtol: float = 1e-5,
    atol: float = 0.0,
    maxiter: int | None = None,
    M: Any = None,
    callback: Callback | None = None,
    strict: bool = False,
) -> tuple[torch.Tensor, int]:
    """MINRES for symmetric, possibly indefinite ``A`` (``M`` must be SPD).

        The tracked estimate is ``||r||_M``; convergence is always confirmed on ``||b - A x||_2``.
        Symmetry of ``A`` is assumed, not checked.

        Parameters
        ----------{params}
    {returns}
        Raises
        ------
        BreakdownError
            If ``r^T M r < 0`` for an unconverged system (M is not SPD).

        References
        ----------
        Paige & Saunders (1975), Solution of sparse indefinite systems of linear equations, SIAM J.
        Numer. Anal. 12(4):617-629; Saad (2003), *Iterative Methods for Sparse Linear Systems*, SIAM.

        Examples
        --------
        >>> import torch
        >>> A = torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=torch.float64)  # indefinite
        >>> x, info = minres(A, torch.tensor([3.0, 3.0], dtype=torch.float64), rtol=1e-12)
        >>> info, [round(v, 6) for v in x.tolist()]
        (0, [1.0, 1.0])
    """
    res = _run_minres(
        A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=M, callback=callback, strict=strict
    )
    return res.x, res.info


for _f in (cg, gmres, bicgstab, minres):
    if _f.__doc__:  # absent under python -OO
        _f.__doc__ = _f.__doc__.replace("{params}", _PARAMETERS).replace("{returns}", _RETURNS)
del _f
