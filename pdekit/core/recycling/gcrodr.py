"""GCRO-DR(m, k): restarted GMRES with deflated restarting and recycling across systems.

Parks et al. (2006), right preconditioned, with harmonic-Ritz (or Ritz) recycling. Each chain of the
batch carries its own recycle space; with ``k = 0`` this is GMRES(m) and reproduces
:func:`pdekit.core.krylov.gmres` exactly (the Arnoldi bookkeeping, Givens rotations and
least-squares solve are those of :mod:`pdekit.core.krylov_base`).

References
----------
.. [1] M. L. Parks, E. de Sturler, G. Mackey, D. D. Johnson, S. Maiti, "Recycling Krylov subspaces
   for sequences of linear systems", SIAM J. Sci. Comput. 28(5):1651-1674, 2006.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np
import scipy.linalg as sla
import torch

from pdekit.core.krylov_base import (
    PARAMETERS,
    RETURNS,
    Callback,
    cycle_coefficients,
    fill_doc,
    givens_step,
    norm,
    safe_div,
    select,
)
from pdekit.core.recycling.space import (
    RECYCLE_PARAMETERS,
    RECYCLE_RETURNS,
    RecycleRun,
    RecycleSpace,
    drop_tol,
    export_space,
    import_space,
    independent_columns,
)
from pdekit.core.solve_result import SolveResult

__all__ = ["gcrodr"]


def _select(theta: np.ndarray, vecs: np.ndarray, k: int) -> np.ndarray:
    """Real basis of the eigenvectors of the ``k`` eigenvalues of smallest modulus.

    A complex-conjugate pair enters as (Re, Im) and is never split: when it straddles ``k``, only
    ``k - 1`` vectors are returned. Infinite or NaN eigenvalues are never selected.
    """
    mod = np.abs(theta)
    mod[~np.isfinite(mod)] = np.inf
    cols: list[np.ndarray] = []
    for i in np.argsort(mod, kind="stable"):
        if len(cols) >= k or not np.isfinite(mod[i]):
            break
        if theta[i].imag == 0:
            cols.append(vecs[:, i].real)
        elif theta[i].imag > 0:  # the conjugate (imag < 0) is represented by the same pair
            if len(cols) + 2 > k:
                break
            cols += [vecs[:, i].real, vecs[:, i].imag]
    if not cols:
        return np.zeros((vecs.shape[0], 0))
    return np.stack(cols, axis=1)



def _rebuild_c(pb: RecycleRun, U, C, P, rank, recycle, same_operator):
    """Refresh ``P = M U`` and ``C = qr(A P)`` after a change of ``A`` or ``M`` (k matvecs)."""
    kmax = int(rank.max())
    changed_a = not same_operator and (pb.keyA is None or pb.keyA != recycle.operator_key)
    changed_m = not same_operator and (pb.keyM is None or pb.keyM != recycle.preconditioner_key)
    if changed_m or (P is None) != (pb.M is None):
        P = None if pb.M is None else pb.columns(pb.precond, U, kmax)
        changed_a = True
    if not changed_a:
        return U, C, P, rank
    AP = pb.columns(pb.matvec, U if P is None else P, kmax)
    Q, R = torch.linalg.qr(AP[:, :kmax].transpose(1, 2))
    Rn = R.detach().to(torch.float64).cpu().numpy()
    B = U.shape[0]
    T = np.zeros((B, kmax, kmax))
    S = np.zeros((B, kmax, kmax))
    new_rank = np.zeros_like(rank)
    tol = drop_tol(U.dtype)
    for i in range(B):
        rb = int(rank[i])
        keep = independent_columns(Rn[i, :rb, :rb], tol)
        if keep.size == 0:
            continue
        Q2, R2 = np.linalg.qr(Rn[i, :rb][:, keep])
        T[i, keep, : keep.size] = np.linalg.inv(R2)
        S[i, :rb, : keep.size] = Q2
        new_rank[i] = keep.size
    Tt = torch.from_numpy(T).to(U)
    St = torch.from_numpy(S).to(U)

    def mix(X, M):
        out = torch.zeros_like(X)
        out[:, :kmax] = torch.bmm(M.transpose(1, 2), X[:, :kmax])
        return out

    C = torch.zeros_like(U)
    C[:, :kmax] = torch.bmm(St.transpose(1, 2), Q.transpose(1, 2))
    return mix(U, Tt), C, (None if P is None else mix(P, Tt)), new_rank



def _cycle_update(G_parts, k, tol, selection):
    """Transformations (TU, TC) of the recycle update of one chain after a cycle.

    With ``Vhat = [U D, V_L]`` and ``What = [C, V_{L+1}]``, ``A M Vhat = What G`` and
    ``N = What^T Vhat``. The chosen coefficient vectors ``Pk`` give ``U = Vhat Pk R^{-1}`` and
    ``C = What Q`` with ``G Pk = Q R``, so that ``C = A M U`` and ``C^T C = I``.
    """
    ka, L, d, Bc, H, CtU, VtU, UtU = G_parts
    dim = ka + L
    G = np.zeros((dim + 1, dim))
    G[:ka, :ka] = np.diag(d)
    G[:ka, ka:] = Bc
    G[ka:, ka:] = H
    N = np.zeros((dim + 1, dim))
    N[:ka, :ka] = CtU * d
    N[ka:, :ka] = VtU * d
    N[ka : ka + L, ka:] = np.eye(L)
    if selection == "harmonic":
        # G^T G p = theta G^T N p, solved as the better conditioned pencil (R, Q^T N), G = Q R
        Qg, Rg = np.linalg.qr(G)
        theta, vecs = sla.eig(Rg, Qg.T @ N)
    else:  # Ritz: Vhat^T A Vhat p = theta Vhat^T Vhat p, with Vhat^T A Vhat = N^T G
        gram = np.eye(dim)
        gram[:ka, :ka] = UtU * np.outer(d, d)
        gram[ka:, :ka] = VtU[:L] * d
        gram[:ka, ka:] = gram[ka:, :ka].T
        theta, vecs = sla.eig(N.T @ G, gram)
    Pk = _select(theta, vecs, k)
    keep = independent_columns(G @ Pk, tol)
    if keep.size == 0:
        return None
    Pk = Pk[:, keep]
    Q, R = np.linalg.qr(G @ Pk)
    TU = np.linalg.solve(R.T, Pk.T).T  # Pk R^{-1} (R is small and well conditioned)
    TU[:ka] *= d[:, None]  # the U rows act on U D (column scaling)
    return TU, Q



def _update_space(U, C, P, V, Z, H, Bc, rank, L, full, k, tol, selection):
    """New (U, C, P) from the harmonic Ritz vectors of the cycle, for the chains in ``full``."""
    B, _, n = U.shape
    Lmax = V.shape[1] - 1
    unorm = torch.linalg.vector_norm(U, dim=2).detach().to(torch.float64).cpu().numpy()
    CtU = torch.bmm(C, U.transpose(1, 2)).detach().to(torch.float64).cpu().numpy()
    VtU = torch.bmm(V, U.transpose(1, 2)).detach().to(torch.float64).cpu().numpy()
    UtU = torch.bmm(U, U.transpose(1, 2)).detach().to(torch.float64).cpu().numpy()
    TU = np.zeros((B, k + Lmax, k))
    TC = np.zeros((B, k + Lmax + 1, k))
    new_rank = rank.copy()
    for i in range(B):
        ka = int(rank[i])
        if not full[i]:
            TU[i, :k, :k] = np.eye(k)
            TC[i, :k, :k] = np.eye(k)
            continue
        Li = int(L[i])
        d = 1.0 / unorm[i, :ka]
        parts = (ka, Li, d, Bc[i, :ka, :Li], H[i, : Li + 1, :Li], CtU[i, :ka, :ka],
                 VtU[i, : Li + 1, :ka], UtU[i, :ka, :ka])
        out = _cycle_update(parts, k, tol, selection)
        if out is None:  # nothing usable: keep the old space
            TU[i, :k, :k] = np.eye(k)
            TC[i, :k, :k] = np.eye(k)
            continue
        tu, tc = out
        kn = tu.shape[1]
        TU[i, :ka, :kn] = tu[:ka]
        TU[i, k : k + Li, :kn] = tu[ka:]
        TC[i, :ka, :kn] = tc[:ka]
        TC[i, k : k + Li + 1, :kn] = tc[ka:]
        new_rank[i] = kn
    TUt = torch.from_numpy(TU).to(U)
    TCt = torch.from_numpy(TC).to(U)
    TUt, TCt = TUt.transpose(1, 2), TCt.transpose(1, 2)
    U_new = torch.bmm(TUt[:, :, :k], U) + torch.bmm(TUt[:, :, k:], V[:, :Lmax])
    C_new = torch.bmm(TCt[:, :, :k], C) + torch.bmm(TCt[:, :, k:], V)
    if P is None:
        P_new = None
    else:
        P_new = torch.bmm(TUt[:, :, :k], P) + torch.bmm(TUt[:, :, k:], Z)
    return U_new, C_new, P_new, new_rank



_F64 = {"dtype": torch.float64, "device": "cpu"}


class _Cycle(NamedTuple):
    """What one Arnoldi cycle leaves for its end: bases, small matrices and step counts."""

    V: torch.Tensor  # (B, L+1, n) Krylov basis
    Z: torch.Tensor | None  # (B, L, n) preconditioned basis M V (flexible form, k > 0 with M)
    H: np.ndarray  # (B, L+1, L) Hessenberg matrix of (I - C C^T) A M
    Bc: np.ndarray  # (B, k, L) C^T A M V
    Rg: torch.Tensor  # (B, L, L) Givens-rotated triangular factor (float64, host)
    Omega: torch.Tensor  # (B, L+1, L+1) product of the rotations
    beta64: torch.Tensor  # (B,) ||r|| at the start of the cycle
    steps: torch.Tensor  # (B,) steps each chain took
    L: np.ndarray  # (B,) cycle length per chain


def _project(x, r, U, C, P, mask):
    """``x += P C^T r`` and ``r -= C C^T r`` for the chains in ``mask``: minimise over range(U)."""
    c = torch.einsum("bkn,bn->bk", C, r) * mask[:, None]
    x = x + torch.einsum("bkn,bk->bn", U if P is None else P, c)
    r = r - torch.einsum("bkn,bk->bn", C, c)
    return x, r


def _arnoldi_step(pb: RecycleRun, basis, V, Z, kc: int, j: int):
    """``w = A M v_j`` orthogonalised by CGS2 against ``[C, V_0..V_j]`` (the rows of ``basis``).

    Stores ``v_{j+1}`` (and ``z_j = M v_j`` in ``Z``); returns the float64 host column
    ``[H[:j+2, j], C^T w]`` and ``||w_perp||``.
    """
    z = pb.precond(V[:, j])
    if Z is not None:
        Z[:, j] = z
    w = pb.matvec(z)
    Qj = basis[:, : kc + j + 1]
    QjT = Qj.transpose(1, 2)
    h = torch.bmm(Qj, w.unsqueeze(-1))
    w = w - torch.bmm(QjT, h).squeeze(-1)
    h2 = torch.bmm(Qj, w.unsqueeze(-1))
    w = w - torch.bmm(QjT, h2).squeeze(-1)
    h = (h + h2).squeeze(-1)
    hn = norm(w)
    V[:, j + 1] = safe_div(w, hn[:, None])
    col = torch.cat([h[:, kc:], hn[:, None], h[:, :kc]], 1).detach().to(**_F64)
    return col, hn


def _arnoldi_cycle(pb: RecycleRun, stepping, x, r, space, m: int, k: int) -> _Cycle:
    """Arnoldi on ``(I - C C^T) A M`` from ``r`` with Givens rotations, for the chains stepping."""
    U, C, P, rank = space
    B, n = pb.b.shape
    has_c = bool(rank.any())
    L = np.where(rank > 0, m - k, m)  # cycle length per chain
    Lmax = int(L[stepping.cpu().numpy()].max())
    L_t = torch.as_tensor(L, device=r.device)
    beta = pb.rnorm
    kc = k if has_c else 0
    basis = r.new_zeros(B, kc + Lmax + 1, n)  # rows [C; V]: one CGS2 pass covers both
    if has_c:
        basis[:, :kc] = C
    V = basis[:, kc:]
    V[:, 0] = select(stepping, safe_div(r, beta[:, None]), torch.zeros_like(r))
    Z = r.new_zeros(B, Lmax, n) if (pb.M is not None and k > 0) else None
    H = np.zeros((B, Lmax + 1, Lmax))
    Bc = np.zeros((B, k, Lmax))
    beta64 = beta.detach().to(**_F64)
    Rg = torch.zeros(B, Lmax, Lmax, **_F64)
    Omega = torch.eye(Lmax + 1, **_F64).expand(B, Lmax + 1, Lmax + 1).clone()
    steps = torch.zeros_like(pb.its)
    for j in range(Lmax):
        stepping = stepping & (j < L_t)
        if not bool(stepping.any()):
            break
        col, hn = _arnoldi_step(pb, basis, V, Z, kc, j)
        if not bool(torch.isfinite(col).all()):
            bad = ~torch.isfinite(col).all(1).to(r.device) & stepping
            recyc = export_space(U, C, P, rank, "gcrodr", pb)
            raise pb.breakdown(x, bad | stepping, hn, "non-finite Arnoldi vector", recyc)
        H[:, : j + 2, j] = col[:, : j + 2].numpy()
        if has_c:
            Bc[:, :, j] = col[:, j + 2 :].numpy()
        est = givens_step(col[:, : j + 2], Rg, Omega, beta64, j).to(r)
        steps += stepping
        pb.step(stepping, est)
        stepping = stepping & (est > pb.tol) & (pb.its < pb.maxiter)
    return _Cycle(V, Z, H, Bc, Rg, Omega, beta64, steps, L)


def _end_cycle(pb: RecycleRun, cy: _Cycle, x, r, space, k: int, tol_drop: float, selection):
    """Update ``x`` on ``[P, Z]``, refresh the recycle space and the residual after a cycle."""
    U, C, P, rank = space
    has_c = bool(rank.any())
    Lmax = cy.H.shape[2]
    steps_np = cy.steps.cpu().numpy()
    Y64 = cycle_coefficients(cy.Rg, cy.Omega, cy.beta64, cy.steps.cpu())
    Yt, Y = Y64.to(r), Y64.numpy()
    moved = cy.steps > 0
    if cy.Z is None:
        dx = pb.precond(torch.einsum("bjn,bj->bn", cy.V[:, :Lmax], Yt))
    else:
        dx = torch.einsum("bjn,bj->bn", cy.Z, Yt)
    if has_c:  # the range(U) part: y_U = -D^{-1} B y, i.e. x -= P (B y)
        cyU = torch.from_numpy(np.einsum("bkj,bj->bk", cy.Bc, Y)).to(r)
        dx = dx - torch.einsum("bkn,bk->bn", U if P is None else P, cyU)
    x = select(moved, x + dx, x)
    # ---- recycle update (harmonic Ritz, strategy A) after full cycles ----
    moved_np = moved.cpu().numpy()
    full = moved_np & (steps_np == cy.L)
    # short-solve rule: an existing space is replaced only after a complete cycle; a chain
    # without one takes what its (possibly short) first cycle offers
    upd = moved_np & (full | (rank == 0)) & (k > 0)
    if upd.any():
        U, C, P, rank = _update_space(U, C, P, cy.V, cy.Z, cy.H, cy.Bc, rank, steps_np, upd, k,
                                      tol_drop, selection)
    if k == 0:  # GMRES(m): true residual every cycle, exactly as krylov.gmres
        r_new = pb.b - pb.matvec(x)
        r = select(moved, r_new, r)
        pb.rnorm = torch.where(moved, norm(r_new), pb.rnorm)
        pb.conv = pb.conv | (moved & (pb.rnorm <= pb.tol))
    else:  # r = V_{L+1} (beta e1 - Hbar y); the true residual only confirms convergence
        coef = -np.einsum("bij,bj->bi", cy.H, Y)
        coef[:, 0] += cy.beta64.numpy()
        r_new = torch.einsum("bjn,bj->bn", cy.V, torch.from_numpy(coef).to(r))
        r = select(moved, r_new, r)
        pb.rnorm = torch.where(moved, norm(r_new), pb.rnorm)
        claim = moved & (pb.rnorm <= pb.tol)
        if bool(claim.any()):
            passed, r_true = pb.confirm(x, claim)
            r = select(claim & ~passed, r_true, r)
    go_on = ~pb.conv & (pb.its < pb.maxiter) & moved
    if bool(rank.any()) and bool(go_on.any()):  # keep r orthogonal to C (rounding drift)
        x, r = _project(x, r, U, C, P, go_on)
        pb.rnorm = torch.where(go_on, norm(r), pb.rnorm)
    return x, r, (U, C, P, rank)


def run_gcrodr(pb: RecycleRun, recycle, same_operator: bool, *, m: int = 40, k: int = 20,
               selection: str = "harmonic") -> SolveResult:
    """GCRO-DR(m, k) on a validated problem; the engine behind :func:`gcrodr`."""
    B, n = pb.b.shape
    if selection not in ("harmonic", "ritz"):
        raise ValueError(f"gcrodr: selection must be 'harmonic' or 'ritz', got {selection!r}")
    if int(m) < 1:
        raise ValueError(f"gcrodr: m must be >= 1, got {m}")
    if not 0 <= int(k) < int(m):
        raise ValueError(f"gcrodr: k must satisfy 0 <= k < m, got k={k}, m={m}")
    m = min(int(m), n)
    k = min(int(k), m - 1)
    x, r = pb.x, pb.r
    U, C, P, rank = import_space(recycle, "gcrodr", B, n, k, pb.b)
    if not rank.any():
        P = None if pb.M is None else torch.zeros_like(U)
    tol_drop = drop_tol(pb.b.dtype)
    if rank.any():
        U, C, P, rank = _rebuild_c(pb, U, C, P, rank, recycle, same_operator)
    if rank.any():  # minimise over range(U) first
        act = ~pb.conv
        x, r = _project(x, r, U, C, P, act)
        pb.rnorm = norm(r)
        claim = act & (pb.rnorm <= pb.tol)
        if bool(claim.any()):
            passed, r_true = pb.confirm(x, claim)
            r = select(claim & ~passed, r_true, r)
    space = (U, C, P, rank)
    while True:
        stepping = ~pb.conv & (pb.its < pb.maxiter)
        if not bool(stepping.any()):
            break
        cycle = _arnoldi_cycle(pb, stepping, x, r, space, m, k)
        x, r, space = _end_cycle(pb, cycle, x, r, space, k, tol_drop, selection)
        pb.notify(x)
    return pb.result(x, recycle=export_space(*space, "gcrodr", pb))


@fill_doc(params=PARAMETERS, returns=RETURNS, recycle_params=RECYCLE_PARAMETERS,
          recycle_returns=RECYCLE_RETURNS)
def gcrodr(
    A: Any,
    b: torch.Tensor,
    x0: torch.Tensor | None = None,
    *,
    m: int = 40,
    k: int = 20,
    selection: Literal["harmonic", "ritz"] = "harmonic",
    rtol: float = 1e-5,
    atol: float = 0.0,
    maxiter: int | None = None,
    M: Any = None,
    recycle: RecycleSpace | None = None,
    callback: Callback | None = None,
    strict: bool = False,
    same_operator: bool = False,
) -> tuple[torch.Tensor, int, RecycleSpace]:
    """GCRO-DR(m, k): restarted GMRES with deflated restarting and recycling across systems.

    Each cycle runs ``m - k`` Arnoldi steps on ``(I - C C^T) A M`` (CGS2 against ``C`` and the
    Krylov basis), minimises the residual over ``range(U) + K`` and replaces ``U`` by the ``k``
    harmonic Ritz vectors of smallest modulus (strategy A; columns of ``U`` scaled to unit norm
    first; the small generalised eigenproblem is solved in float64 by ``scipy.linalg.eig``; complex
    pairs kept whole, so ``k - 1`` vectors when a pair straddles ``k``). Without a recycle space
    the first cycle is a GMRES(m) cycle whose harmonic Ritz vectors seed ``U``. A solve that never
    completes a cycle keeps its incoming ``U`` (no new spectral data). Given a space from the
    previous system, ``C = qr(A M U)`` is rebuilt first when ``A`` or ``M`` changed (``k``
    matvecs; ``U <- U R^{-1}``, nearly dependent columns dropped), and ``x0`` is corrected on
    ``range(U)``. Convergence is always confirmed on the true residual ``b - A x``.

    Parameters
    ----------
    {params}
    m : int
        Subspace dimension per cycle (``m - k`` new Krylov vectors plus ``k`` recycled ones).
    k : int
        Recycle dimension, ``0 <= k < m``. ``k = 0`` is GMRES(m), identical to
        :func:`pdekit.core.krylov.gmres` with ``restart=m``.
    selection : {"harmonic", "ritz"}
        Which approximate eigenvectors are recycled: harmonic Ritz vectors (Parks et al., the
        default, robust for indefinite and nonnormal ``A``) or Ritz vectors (Rayleigh-Ritz on
        ``range([U, V])``), which approximate the smallest eigenvalues of SPD-like problems better
        (see ``docs/benchmarks.md``).
    {recycle_params}

    Returns
    -------
    {returns}
    {recycle_returns}

    Raises
    ------
    ValueError
        Bad shapes, NaN/inf in ``b`` or ``x0``, or ``k >= m``.

    Examples
    --------
    >>> import torch
    >>> n = 200
    >>> A = torch.diag(torch.logspace(-3, 0, n, dtype=torch.float64))
    >>> A = A + torch.diag(torch.full((n - 1,), 0.01, dtype=torch.float64), 1)
    >>> b = torch.ones(n, dtype=torch.float64)
    >>> x, info, space = gcrodr(A, b, m=20, k=8, rtol=1e-8)
    >>> x2, info2, space = gcrodr(A, 2 * b - 0.5, m=20, k=8, rtol=1e-8, recycle=space)
    >>> info, info2, tuple(space.U.shape)
    (0, 0, (1, 200, 8))

    References
    ----------
    .. [1] M. L. Parks, E. de Sturler, G. Mackey, D. D. Johnson, S. Maiti, "Recycling Krylov
       subspaces for sequences of linear systems", SIAM J. Sci. Comput. 28(5):1651-1674, 2006.
    .. [2] H. Wang et al., "Accelerating data generation for neural operators via Krylov subspace
       recycling", ICLR 2024 (App. B: GCRO-DR as used by SKR).
    """
    pb = RecycleRun("gcrodr", A, b, x0, rtol, atol, maxiter, M, callback, strict)
    res = run_gcrodr(pb, recycle, same_operator, m=m, k=k, selection=selection)
    return res.x, res.info, res.recycle
