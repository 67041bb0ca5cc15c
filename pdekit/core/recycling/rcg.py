"""Recycled (deflated) preconditioned CG for sequences of SPD systems.

Def-PCG of Saad et al. (2000), with the deflation space refreshed after every solve by a harmonic
Rayleigh-Ritz step on the stored CG directions. With ``k = 0`` this is plain PCG.

References
----------
.. [1] Y. Saad, M. Yeung, J. Erhel, F. Guyomarc'h, "A deflated version of the conjugate gradient
   algorithm", SIAM J. Sci. Comput. 21(5):1909-1926, 2000.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pdekit.core.krylov_base import PARAMETERS, RETURNS, Callback, fill_doc, norm, safe_div, select
from pdekit.core.recycling.space import (
    RECYCLE_PARAMETERS,
    RecycleRun,
    RecycleSpace,
    drop_tol,
    export_space,
    import_space,
)
from pdekit.core.solve_result import SolveResult

__all__ = ["rcg"]


def _refresh(pb: RecycleRun, W, AW, MAW, rank, recycle, same_operator: bool, k: int,
             tol_drop: float):
    """Bring the incoming space to the current ``A`` and ``M`` (``A``-orthonormal ``W``)."""
    B = W.shape[0]
    if rank.any():
        kmax = int(rank.max())
        changed_a = not same_operator and (pb.keyA is None or pb.keyA != recycle.operator_key)
        changed_m = not same_operator and (pb.keyM is None or pb.keyM != recycle.preconditioner_key)
        if changed_a:  # new matrix: AW = A W (k matvecs), then A-orthonormalise W
            AW = pb.columns(pb.matvec, W, kmax)
            E = torch.bmm(W, AW.transpose(1, 2)).detach().to(torch.float64).cpu().numpy()
            T = np.zeros((B, k, k))
            for i in range(B):
                rb = int(rank[i])
                lam, vec = np.linalg.eigh(0.5 * (E[i, :rb, :rb] + E[i, :rb, :rb].T))
                keep = lam > tol_drop * max(lam.max(initial=0.0), 0.0)
                rank[i] = int(keep.sum())
                T[i, :rb, : rank[i]] = vec[:, keep] / np.sqrt(lam[keep])
            Tt = torch.from_numpy(T).to(W)
            W = torch.bmm(Tt.transpose(1, 2), W)
            AW = torch.bmm(Tt.transpose(1, 2), AW)
        if pb.M is not None and (changed_a or changed_m or MAW is None):
            MAW = pb.columns(pb.precond, AW, kmax)
    if pb.M is None:
        MAW = None
    elif MAW is None:  # no valid columns yet: zero rows, excluded from the harvest
        MAW = torch.zeros_like(W)
    return W, AW, MAW, rank


def _gram_inverse(W, AW, rank, k: int, like: torch.Tensor) -> torch.Tensor:
    """``E^{-1}`` of ``E = W^T A W`` per chain (W is A-orthonormal up to rounding: computed, not
    assumed); pseudo-inverse on the valid columns, zero elsewhere."""
    B = W.shape[0]
    Einv = torch.zeros(B, k, k, dtype=like.dtype, device=like.device)
    if rank.any():
        E = torch.bmm(W, AW.transpose(1, 2)).detach().to(torch.float64).cpu().numpy()
        Ei = np.zeros((B, k, k))
        for i in range(B):
            rb = int(rank[i])
            if rb:
                Ei[i, :rb, :rb] = np.linalg.pinv(0.5 * (E[i, :rb, :rb] + E[i, :rb, :rb].T))
        Einv = torch.from_numpy(Ei).to(like)
    return Einv


def run_rcg(pb: RecycleRun, recycle, same_operator: bool, *, k: int = 10,
            n_store: int | None = None) -> SolveResult:
    """Deflated PCG on a validated problem; the engine behind :func:`rcg`."""
    B, n = pb.b.shape
    if int(k) < 0:
        raise ValueError(f"rcg: k must be >= 0, got {k}")
    k = min(int(k), n)
    s = (3 * k if n_store is None else int(n_store)) if k > 0 else 0
    if s < 0:
        raise ValueError(f"rcg: n_store must be >= 0, got {n_store}")
    s = min(s, n)
    W, AW, MAW, rank = import_space(recycle, "rcg", B, n, k, pb.b)
    tol_drop = drop_tol(pb.b.dtype)
    W, AW, MAW, rank = _refresh(pb, W, AW, MAW, rank, recycle, same_operator, k, tol_drop)
    Einv = _gram_inverse(W, AW, rank, k, pb.b)
    has_w = bool(rank.any())

    def deflate(v):  # W E^{-1} AW^T v: the A-projection of v onto range(W)
        mu = torch.einsum("bij,bj->bi", Einv, torch.einsum("bkn,bn->bk", AW, v))
        return torch.einsum("bkn,bk->bn", W, mu)

    def space():
        return export_space(W, AW, MAW, rank, "rcg", pb)

    x, r = pb.x, pb.r
    active = ~pb.conv
    if has_w:  # Galerkin initial guess on range(W)
        mu = torch.einsum("bij,bj->bi", Einv, torch.einsum("bkn,bn->bk", W, r)) * active[:, None]
        x = x + torch.einsum("bkn,bk->bn", W, mu)
        r = r - torch.einsum("bkn,bk->bn", AW, mu)
        pb.rnorm = norm(r)
        claim = active & (pb.rnorm <= pb.tol)
        if bool(claim.any()):
            passed, r_true = pb.confirm(x, claim)
            r = select(claim & ~passed, r_true, r)
            active = ~pb.conv
    z = pb.precond(r)
    rz = (r * z).sum(1)
    bad = active & ~(rz > 0)
    if bool(bad.any()):
        raise pb.breakdown(x, bad, rz, "r^T M r <= 0: the preconditioner M is not SPD", space())
    p = z - deflate(z) if has_w else z
    Pw = r.new_zeros(B, s, n)
    Qw = r.new_zeros(B, s, n)
    MQw = r.new_zeros(B, s, n) if pb.M is not None else None
    valid = torch.zeros(B, s, dtype=torch.bool, device=r.device)
    storing = torch.ones(B, dtype=torch.bool, device=r.device)
    n_active = int(active.sum())
    for it in range(pb.maxiter):
        if n_active == 0:
            break
        q = pb.matvec(p)
        pq = (p * q).sum(1)
        bad = active & ~(pq > 0)
        alpha = torch.where(active & ~bad, safe_div(rz, pq), torch.zeros_like(pq))
        x = select(active, x + alpha[:, None] * p, x)
        r = select(active, r - alpha[:, None] * q, r)
        rn = norm(r)
        pb.step(active, rn)
        if it < s:
            Pw[:, it] = p
            Qw[:, it] = q
            valid[:, it] = active & storing & ~bad
        claim = active & (rn <= pb.tol)
        has_bad, has_claim = torch.stack([bad.any(), claim.any()]).tolist()
        if has_bad:
            raise pb.breakdown(x, bad, pq, "p^T A p <= 0: the matrix A is not symmetric positive "
                               "definite", space())
        if has_claim:
            passed, r_true = pb.confirm(x, claim)
            replaced = claim & ~passed
            r = select(replaced, r_true, r)
            storing = storing & ~replaced
            if it < s:
                valid[:, it] &= ~replaced
            active = ~pb.conv
            n_active = int(active.sum())
        z_new = pb.precond(r)
        if MQw is not None and it < s:  # M q = (z - z_new) / alpha, free
            MQw[:, it] = safe_div(z - z_new, alpha[:, None])
        rz_new = (r * z_new).sum(1)
        bad = active & ~(rz_new > 0)
        if bool(bad.any()):
            raise pb.breakdown(x, bad, rz_new, "r^T M r <= 0: the preconditioner M is not SPD",
                               space())
        beta = safe_div(rz_new, rz)
        p_new = z_new + beta[:, None] * p
        if has_w:
            p_new = p_new - deflate(z_new)
        p = select(active, p_new, p)
        z = z_new
        rz = torch.where(active, rz_new, rz)
        pb.notify(x)
    if k > 0 and bool(valid.any()):
        W, AW, MAW, rank = _harvest(W, AW, MAW, rank, Pw, Qw, MQw, valid, k, tol_drop)
    return pb.result(x, recycle=space())



def _harvest(W, AW, MAW, rank, Pw, Qw, MQw, valid, k, tol):
    """Harmonic Rayleigh-Ritz on S = [W, P_stored]: ``(AS)^T M (AS) y = mu S^T A S y``.

    Keeps the ``k`` smallest ``mu`` (eigenvalues of the preconditioned operator ``M A``); the new
    ``W = S Y`` is A-orthonormal. No operator or preconditioner application is needed.
    """
    B = W.shape[0]
    S = torch.cat([W, Pw], 1)
    AS = torch.cat([AW, Qw], 1)
    MAS = AS if MAW is None else torch.cat([MAW, MQw], 1)
    Ga = torch.bmm(S, AS.transpose(1, 2)).detach().to(torch.float64).cpu().numpy()
    Gm = torch.bmm(AS, MAS.transpose(1, 2)).detach().to(torch.float64).cpu().numpy()
    ok = torch.cat([torch.arange(k, device=W.device)[None, :] < torch.as_tensor(
        rank, device=W.device)[:, None], valid], 1).cpu().numpy()
    T = np.zeros((B, S.shape[1], k))
    new_rank = rank.copy()
    for i in range(B):
        idx = np.nonzero(ok[i])[0]
        if idx.size == 0:
            continue
        ga = Ga[i][np.ix_(idx, idx)]
        gm = Gm[i][np.ix_(idx, idx)]
        lam, vec = np.linalg.eigh(0.5 * (ga + ga.T))
        keep = lam > tol * max(lam.max(initial=0.0), 0.0)
        if not keep.any():
            continue
        Tb = vec[:, keep] / np.sqrt(lam[keep])  # A-orthonormal basis of range(S)
        red = Tb.T @ (0.5 * (gm + gm.T)) @ Tb
        _, Y = np.linalg.eigh(red)
        kn = min(k, Y.shape[1])
        T[i][np.ix_(idx, np.arange(kn))] = Tb @ Y[:, :kn]
        new_rank[i] = kn
    Tt = torch.from_numpy(T).to(W)
    W = torch.bmm(Tt.transpose(1, 2), S)
    AW = torch.bmm(Tt.transpose(1, 2), AS)
    MAW = None if MAW is None else torch.bmm(Tt.transpose(1, 2), MAS)
    return W, AW, MAW, new_rank




@fill_doc(params=PARAMETERS, returns=RETURNS, recycle_params=RECYCLE_PARAMETERS)
def rcg(
    A: Any,
    b: torch.Tensor,
    x0: torch.Tensor | None = None,
    *,
    k: int = 10,
    n_store: int | None = None,
    rtol: float = 1e-5,
    atol: float = 0.0,
    maxiter: int | None = None,
    M: Any = None,
    recycle: RecycleSpace | None = None,
    callback: Callback | None = None,
    strict: bool = False,
    same_operator: bool = False,
) -> tuple[torch.Tensor, int, RecycleSpace]:
    """Recycled (deflated) preconditioned CG for sequences of SPD systems.

    Def-PCG of Saad et al. (2000): with a deflation basis ``W`` (A-orthonormalised on each new
    matrix, ``k`` matvecs), the initial guess is corrected on ``range(W)`` and every search direction
    is made A-orthogonal to ``W`` (``p = z + beta p - W E^{-1} (AW)^T z``, ``E = W^T A W``). The
    first ``n_store`` directions ``p_j`` and ``A p_j`` are kept; after the solve a harmonic
    Rayleigh-Ritz step on ``S = [W, p_0..p_{s-1}]`` (``(AS)^T M (AS) y = mu S^T A S y``, which targets
    the smallest eigenvalues of ``M A``; ``M A p_j`` costs nothing since ``M q_j = (z_j -
    z_{j+1}) / alpha_j``) gives the new ``W``: the ``k`` vectors of smallest ``mu``. ``k = 0`` is
    plain PCG (:func:`pdekit.core.krylov.cg`). ``A`` and ``M`` must be SPD.

    Parameters
    ----------
    {params}
    k : int
        Number of deflation vectors per chain.
    n_store : int, optional
        CG directions kept for the eigenvector update (default ``3 k``).
    {recycle_params}

    Returns
    -------
    {returns}
    recycle : RecycleSpace
        ``U = W`` (A-orthonormal), ``C = A W``, ``P = M A W`` (``None`` without ``M``).

    Raises
    ------
    BreakdownError
        If ``p^T A p <= 0`` (A not SPD) or ``r^T M r <= 0`` (M not SPD).

    Examples
    --------
    >>> import torch
    >>> A = torch.diag(torch.linspace(1e-3, 1.0, 100, dtype=torch.float64))
    >>> b = torch.ones(100, dtype=torch.float64)
    >>> x, info, space = rcg(A, b, k=4, rtol=1e-10)
    >>> info, space.rank.tolist()
    (0, [4])

    References
    ----------
    .. [1] Y. Saad, M. Yeung, J. Erhel, F. Guyomarc'h, "A deflated version of the conjugate
       gradient algorithm", SIAM J. Sci. Comput. 21(5):1909-1926, 2000.
    .. [2] H. Wang et al., ICLR 2024 (SKR), for the sequence setting.
    """
    pb = RecycleRun("rcg", A, b, x0, rtol, atol, maxiter, M, callback, strict)
    res = run_rcg(pb, recycle, same_operator, k=k, n_store=n_store)
    return res.x, res.info, res.recycle
