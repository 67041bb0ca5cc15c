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
   orthogonalised against ``v_0..v_j`` by :func:`~pdekit.core.krylov_base.arnoldi_cgs2` (classical Gram-Schmidt twice);
   column ``j`` of the Hessenberg matrix is rotated by :func:`~pdekit.core.krylov_base.givens_step`, whose estimate
   ``beta |Omega[j+1, 0]|`` is the residual norm of the cycle's least-squares iterate.
4. A system stops stepping in this cycle right after the step at which its estimate is
   ``<= tol = max(rtol ||b||, atol)`` (a happy breakdown gives estimate 0), or when it has run
   ``m`` steps in the cycle, or when its total count reaches ``maxiter`` (iterations count inner
   steps over all cycles).
5. The cycle ends when no system is stepping. For each system that took ``k > 0`` steps, ``y``
   solves ``R[:k, :k] y = beta Omega[:k, 0]`` (:func:`~pdekit.core.krylov_base.cycle_coefficients`),
   ``x <- x + M (V_k y)`` (``M`` is applied once, to the combination), and ``r = b - A x`` is
   recomputed (one batched matvec). Convergence is decided on this true residual
   only; an unconverged system with iterations left starts the next cycle from it (step 2).

The default ``maxiter`` is ``10 n`` inner iterations for GMRES as for the other methods (scipy's
``maxiter`` for gmres counts restart cycles instead). Input validation and bookkeeping
(:class:`~pdekit.core.krylov_base.KrylovRun`) and the GMRES kernels
(:func:`~pdekit.core.krylov_base.arnoldi_cgs2`, :func:`~pdekit.core.krylov_base.givens_step`,
:func:`~pdekit.core.krylov_base.cycle_coefficients`) live in :mod:`pdekit.core.krylov_base`, where
the recycling solvers of :mod:`pdekit.core.recycling` use the same code.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from pdekit.core.krylov_base import (
    PARAMETERS,
    RETURNS,
    Callback,
    KrylovRun,
    arnoldi_cgs2,
    cycle_coefficients,
    dot,
    fill_doc,
    givens_step,
    norm,
    safe_div,
    select,
)
from pdekit.core.solve_result import SolveResult

__all__ = ["cg", "gmres", "bicgstab", "minres", "solve"]

Method = Literal["cg", "gmres", "bicgstab", "minres"]


# ----------------------------------------------------------------------------------------------
# CG
# ----------------------------------------------------------------------------------------------


def _cg(run: KrylovRun) -> SolveResult:
    x, r = run.x, run.r
    active = ~run.conv
    z = run.precond(r)
    rz = dot(r, z)
    bad = active & ~(rz > 0)
    if bool(bad.any()):
        raise run.breakdown(x, bad, rz, "r^T M r <= 0: the preconditioner M is not SPD")
    p = z
    n_active = int(active.sum())
    for _ in range(run.maxiter):
        if n_active == 0:
            break
        q = run.matvec(p)
        pq = dot(p, q)
        bad = active & ~(pq > 0)  # also catches NaN
        alpha = torch.where(active & ~bad, safe_div(rz, pq), torch.zeros_like(pq))
        x = select(active, x + alpha[:, None] * p, x)
        r = select(active, r - alpha[:, None] * q, r)
        rn = norm(r)
        run.step(active, rn)
        claim = active & (rn <= run.claim_tol)
        has_bad, has_claim = torch.stack([bad.any(), claim.any()]).tolist()
        if has_bad:
            raise run.breakdown(
                x, bad, pq, "p^T A p <= 0: the matrix A is not symmetric positive definite"
            )
        if has_claim:
            passed, r_true = run.confirm(x, claim)
            r = select(claim & ~passed, r_true, r)  # residual replacement
            active = ~run.conv
            n_active = int(active.sum())
        z = run.precond(r)
        rz_new = dot(r, z)
        bad = active & ~(rz_new > 0)
        if bool(bad.any()):
            raise run.breakdown(x, bad, rz_new, "r^T M r <= 0: the preconditioner M is not SPD")
        beta = safe_div(rz_new, rz)
        p = select(active, z + beta[:, None] * p, p)
        rz = torch.where(active, rz_new, rz)
        run.notify(x)
    return run.result(x)



# ----------------------------------------------------------------------------------------------
# GMRES(m): Arnoldi (CGS2) and Givens kernels from pdekit.core.krylov_base
# ----------------------------------------------------------------------------------------------


def _gmres(run: KrylovRun, restart: int) -> SolveResult:
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
        V[:, 0] = select(stepping, safe_div(r, beta[:, None]), torch.zeros_like(r))
        R = r.new_zeros(n_sys, m, m)
        Omega = eye.expand(n_sys, m + 1, m + 1).clone()
        k = torch.zeros_like(run.its)  # steps taken in this cycle, per system
        for j in range(m):
            w = run.matvec(run.precond(V[:, j]))
            h, V[:, j + 1] = arnoldi_cgs2(w, V, j)
            estimate = givens_step(h, R, Omega, beta, j)
            k += stepping
            run.step(stepping, estimate)
            stepping = stepping & (estimate > run.tol) & (run.its < run.maxiter)
            if not bool(stepping.any()):
                break
        # ---- end of cycle: update x, recompute the true residual, decide convergence ----
        y = cycle_coefficients(R, Omega, beta, k)
        moved = k > 0
        x = select(moved, x + run.precond(torch.einsum("bjn,bj->bn", V[:, :m], y)), x)
        r_new = run.b - run.matvec(x)
        r = select(moved, r_new, r)
        run.rnorm = torch.where(moved, norm(r_new), run.rnorm)
        run.conv = run.conv | (moved & (run.rnorm <= run.tol))
        run.notify(x)
    return run.result(x)



# ----------------------------------------------------------------------------------------------
# BiCGStab and MINRES
# ----------------------------------------------------------------------------------------------


def _bicgstab(run: KrylovRun) -> SolveResult:
    x, r = run.x, run.r
    eps = torch.finfo(r.dtype).eps
    r_hat = r  # shadow residual
    r_hat_norm = norm(r_hat)
    ones = torch.ones_like(run.rnorm)
    rho_old, alpha, omega = ones, ones, ones
    p = v = torch.zeros_like(r)
    active = ~run.conv
    n_active = int(active.sum())
    for it in range(run.maxiter):
        if n_active == 0:
            break
        rho = dot(r_hat, r)
        bad_rho = active & ~(rho.abs() > eps * r_hat_norm * norm(r))
        if it == 0:
            p_new = r
        else:
            beta = safe_div(rho, rho_old) * safe_div(alpha, omega)
            p_new = r + beta[:, None] * (p - omega[:, None] * v)
        p = select(active, p_new, p)
        p_hat = run.precond(p)
        v = run.matvec(p_hat)
        rv = dot(r_hat, v)
        bad_rv = active & ~bad_rho & ~(rv.abs() > eps * r_hat_norm * norm(v))
        alpha = select(active, safe_div(rho, rv), alpha)
        s = r - alpha[:, None] * v
        half = active & (norm(s) <= run.claim_tol)  # converged after the first half-step
        s_hat = run.precond(s)
        t = run.matvec(s_hat)
        ts = dot(t, s)
        omega_new = safe_div(ts, dot(t, t))
        bad_om = active & ~half & ~(ts.abs() > eps * norm(t) * norm(s))
        omega = select(active & ~half, omega_new, omega)
        x_half = x + alpha[:, None] * p_hat
        x = select(active, select(half, x_half, x_half + omega[:, None] * s_hat), x)
        r = select(active, select(half, s, s - omega[:, None] * t), r)
        rho_old = select(active, rho, rho_old)
        rn = norm(r)
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
            r = select(claim & ~passed, r_true, r)
            active = ~run.conv
            n_active = int(active.sum())
        run.notify(x)
    return run.result(x)


def _minres(run: KrylovRun) -> SolveResult:
    x, r1 = run.x, run.r
    active = ~run.conv
    y = run.precond(r1)
    beta1 = dot(r1, y)
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
        v = safe_div(y, beta[:, None])
        y_new = run.matvec(v)
        if it > 0:
            y_new = y_new - safe_div(beta, oldb)[:, None] * r1
        alfa = dot(v, y_new)
        y_new = y_new - safe_div(alfa, beta)[:, None] * r2
        r1_new, r2_new = r2, y_new
        y_new = run.precond(r2_new)
        bsq = dot(r2_new, y_new)
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
        x = select(active, x + phi[:, None] * w_new, x)
        # freeze every state of the systems that were already done
        oldb, beta = select(active, beta, oldb), select(active, beta_new, beta)
        dbar, epsln = select(active, dbar_new, dbar), select(active, epsln_new, epsln)
        cs, sn = select(active, cs_new, cs), select(active, sn_new, sn)
        phibar = select(active, sn_new * phibar, phibar)
        w2, w = select(active, w, w2), select(active, w_new, w)
        r1, r2, y = select(active, r1_new, r1), select(active, r2_new, r2), select(active, y_new, y)
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
# Public API: one dispatcher behind solve() and the four scipy-shaped wrappers
# ----------------------------------------------------------------------------------------------

_ALGORITHMS = {"cg": _cg, "gmres": _gmres, "bicgstab": _bicgstab, "minres": _minres}


def _dispatch(
    method: str,
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
    **extra: Any,
) -> SolveResult:
    """Validate the inputs of ``method`` and run it; ``extra`` is ``restart`` for GMRES only."""
    if method not in _ALGORITHMS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(_ALGORITHMS)}")
    allowed = {"restart"} if method == "gmres" else set()
    for key in extra:
        if key not in allowed:
            raise TypeError(f"{method}() got an unexpected keyword argument {key!r}")
    restart = extra.get("restart", 20)
    if method == "gmres" and int(restart) < 1:
        raise ValueError(f"gmres: restart must be >= 1, got {restart}")
    run = KrylovRun(method, A, b, x0, rtol, atol, maxiter, M, callback, strict)
    return _gmres(run, restart) if method == "gmres" else _ALGORITHMS[method](run)


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
    return _dispatch(method, A, b, **kwargs)


@fill_doc(params=PARAMETERS, returns=RETURNS)
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
    ----------
    {params}

    Returns
    -------
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
    res = _dispatch("cg", A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=M,
                    callback=callback, strict=strict)
    return res.x, res.info


@fill_doc(params=PARAMETERS, returns=RETURNS)
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
    ----------
    {params}
    restart : int
        Cycle length ``m`` (Arnoldi steps between restarts), capped at ``n``.

    Returns
    -------
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
    res = _dispatch("gmres", A, b, x0, rtol=rtol, atol=atol, restart=restart, maxiter=maxiter,
                    M=M, callback=callback, strict=strict)
    return res.x, res.info


@fill_doc(params=PARAMETERS, returns=RETURNS)
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
    ----------
    {params}

    Returns
    -------
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
    res = _dispatch("bicgstab", A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=M,
                    callback=callback, strict=strict)
    return res.x, res.info


@fill_doc(params=PARAMETERS, returns=RETURNS)
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
    ----------
    {params}

    Returns
    -------
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
    res = _dispatch("minres", A, b, x0, rtol=rtol, atol=atol, maxiter=maxiter, M=M,
                    callback=callback, strict=strict)
    return res.x, res.info
