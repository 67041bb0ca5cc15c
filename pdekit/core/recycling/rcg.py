"""Recycled (deflated) preconditioned CG for sequences of SPD systems.

Def-PCG of Saad et al. (2000), with the deflation space refreshed after every solve by a harmonic
Rayleigh-Ritz step on the stored CG directions. With ``k = 0`` this is plain PCG.

References
----------
.. [1] Y. Saad, M. Yeung, J. Erhel, F. Guyomarc'h, "A deflated version of the conjugate gradient
   algorithm", SIAM J. Sci. Comput. 21(5):1909-1926, 2000.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from pdekit.core.krylov_base import PARAMETERS, RETURNS, Callback, fill_doc, norm, safe_div, select
from pdekit.core.recycling.space import (
    ADAPT_DOC,
    RECYCLE_PARAMETERS,
    AdaptOptions,
    RecycleRun,
    RecycleSpace,
    column_mask,
    drop_tol,
    export_space,
    import_space,
    plan,
    review,
)
from pdekit.core.solve_result import SolveResult

__all__ = ["rcg"]


def _sym(E: torch.Tensor) -> torch.Tensor:
    return 0.5 * (E + E.transpose(1, 2))


def a_orthonormal(E: torch.Tensor, mask: torch.Tensor, tol: float):
    """``T`` (B, d, d) with ``T^T E T = I`` on the directions kept, and their number per chain.

    ``E`` is a Gram matrix (float64), ``mask`` (B, d) the valid rows; eigenvalues below ``tol``
    times the largest are dropped. Kept columns come first (largest eigenvalue first), the others
    are zero. Batched ``eigh``, on ``E``'s device.
    """
    m2 = mask[:, :, None] & mask[:, None, :]
    lam, vec = torch.linalg.eigh(torch.where(m2, _sym(E), torch.zeros_like(E)))
    lam, vec = lam.flip(-1), vec.flip(-1)
    keep = lam > tol * lam[:, :1].clamp(min=0.0)
    inv = torch.where(keep, torch.where(keep, lam, torch.ones_like(lam)).rsqrt(),
                      torch.zeros_like(lam))
    return vec * inv[:, None, :], keep.sum(1)


def _mix(T: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Rows ``T^T X``: new (B, k', n) block from the float64 (B, d, k') transformation."""
    return torch.bmm(T.transpose(1, 2).to(X.dtype), X)


def _refresh(pb: RecycleRun, W, AW, MAW, rank, changed_a: bool, changed_m: bool, tol_drop):
    """Bring the incoming space to the current ``A`` and ``M`` (``A``-orthonormal ``W``).

    A new matrix costs one batched application of ``A`` to the ``k`` columns, a new
    preconditioner one of ``M`` to ``A W``.
    """
    if rank.any():
        kmax = int(rank.max())
        if changed_a:  # new matrix: AW = A W, then A-orthonormalise W
            AW = pb.block("A", W, kmax)
            E = torch.bmm(W, AW.transpose(1, 2)).to(torch.float64)
            T, r = a_orthonormal(E, column_mask(torch.as_tensor(rank, device=W.device),
                                                W.shape[1]), tol_drop)
            W, AW = _mix(T, W), _mix(T, AW)
            rank = r.cpu().numpy()
        if pb.M is not None and (changed_a or changed_m or MAW is None):
            MAW = pb.block("M", AW, int(rank.max()))
    if pb.M is None:
        MAW = None
    elif MAW is None:  # no valid columns yet: zero rows, excluded from the harvest
        MAW = torch.zeros_like(W)
    return W, AW, MAW, rank


def _gram_inverse(W, AW, rank, tol) -> torch.Tensor:
    """``E^{-1}`` of ``E = W^T A W`` per chain (W is A-orthonormal up to rounding: computed, not
    assumed); pseudo-inverse on the valid columns, zero elsewhere."""
    E = torch.bmm(W, AW.transpose(1, 2)).to(torch.float64)
    T, _ = a_orthonormal(E, column_mask(torch.as_tensor(rank, device=W.device), W.shape[1]), tol)
    return torch.bmm(T, T.transpose(1, 2)).to(W.dtype)


def _cg_loop(pb: RecycleRun, x, r, active, W, AW, Einv, s, space):
    """The (deflated) PCG iterations; returns ``x`` and the stored directions for the harvest."""
    B, n = r.shape
    has_w = W.shape[1] > 0 and bool(Einv.abs().sum() > 0)

    def deflate(v):  # W E^{-1} AW^T v: the A-projection of v onto range(W)
        mu = torch.einsum("bij,bj->bi", Einv, torch.einsum("bkn,bn->bk", AW, v))
        return torch.einsum("bkn,bk->bn", W, mu)

    z = pb.precond(r)
    rz = (r * z).sum(1)
    bad = active & ~(rz > 0)
    if bool(bad.any()):
        raise pb.breakdown(x, bad, rz, "r^T M r <= 0: the preconditioner M is not SPD", space())
    p = z - deflate(z) if has_w else z
    Pw, Qw = r.new_empty(B, s, n), r.new_empty(B, s, n)
    MQw = r.new_empty(B, s, n) if pb.M is not None else None
    valid = torch.zeros(B, s, dtype=torch.bool, device=r.device)
    storing = torch.ones(B, dtype=torch.bool, device=r.device)
    n_active, n_stored = int(active.sum()), 0
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
            Pw[:, it], Qw[:, it] = p, q
            valid[:, it] = active & storing & ~bad
            n_stored = it + 1
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
    ns = n_stored
    stored = (Pw[:, :ns], Qw[:, :ns], None if MQw is None else MQw[:, :ns], valid[:, :ns])
    return x, stored


def run_rcg(pb: RecycleRun, recycle, same_operator: bool, *, k: int = 10,
            n_store: int | None = None, adapt: bool = True,
            max_overhead: float | None = None) -> SolveResult:
    """Deflated PCG on a validated problem; the engine behind :func:`rcg`."""
    B, n = pb.b.shape
    if int(k) < 0:
        raise ValueError(f"rcg: k must be >= 0, got {k}")
    if n_store is not None and int(n_store) < 0:
        raise ValueError(f"rcg: n_store must be >= 0, got {n_store}")
    k = min(int(k), n)
    opts = AdaptOptions(enabled=adapt, max_overhead=max_overhead)
    incoming = recycle is not None and bool((recycle.rank > 0).any())
    stale = not same_operator and recycle is not None
    changed_a = stale and (pb.keyA is None or pb.keyA != recycle.operator_key)
    changed_m = stale and (pb.keyM is None or pb.keyM != recycle.preconditioner_key)
    stats = None if recycle is None else recycle.stats
    k, stats = plan(stats, k, incoming and (changed_a or changed_m), opts)
    s = min((3 * k if n_store is None else int(n_store)) if k > 0 else 0, n)
    W, AW, MAW, rank = import_space(recycle, "rcg", B, n, k, pb.b)
    tol_drop = drop_tol(pb.b.dtype)
    mv0 = pb.matvecs
    W, AW, MAW, rank = _refresh(pb, W, AW, MAW, rank, changed_a, changed_m, tol_drop)
    rebuilt = pb.matvecs - mv0
    plain = not bool(rank.any())
    Einv = W.new_zeros(B, k, k) if plain else _gram_inverse(W, AW, rank, tol_drop)

    def space(st=stats):
        return export_space(W, AW, MAW, rank, "rcg", pb, st)

    x, r = pb.x, pb.r
    active = ~pb.conv
    if not plain:  # Galerkin initial guess on range(W)
        mu = torch.einsum("bij,bj->bi", Einv, torch.einsum("bkn,bn->bk", W, r)) * active[:, None]
        x = x + torch.einsum("bkn,bk->bn", W, mu)
        r = r - torch.einsum("bkn,bk->bn", AW, mu)
        pb.rnorm = norm(r)
        claim = active & (pb.rnorm <= pb.tol)
        if bool(claim.any()):
            passed, r_true = pb.confirm(x, claim)
            r = select(claim & ~passed, r_true, r)
            active = ~pb.conv
    x, stored = _cg_loop(pb, x, r, active, W, AW, Einv, s, space)
    t_loop = time.perf_counter()
    if k > 0 and bool(stored[3].any()):
        W, AW, MAW, rank = _harvest(W, AW, MAW, rank, *stored, k, tol_drop)
    t_end = time.perf_counter()
    if opts.enabled and (k > 0 or stats is not None):
        seconds = (t_loop if plain else t_end) - pb.t_start  # baseline: without the harvest
        stats = review(stats, k, seconds / B, float(pb.its.double().mean()), plain, opts,
                       rebuilt=rebuilt)
    return pb.result(x, recycle=space(stats))


def _harvest(W, AW, MAW, rank, Pw, Qw, MQw, valid, k, tol):
    """Harmonic Rayleigh-Ritz on S = [W, P_stored]: ``(AS)^T M (AS) y = mu S^T A S y``.

    Keeps the ``k`` smallest ``mu`` (eigenvalues of the preconditioned operator ``M A``); the new
    ``W = S Y`` is A-orthonormal. No operator or preconditioner application is needed; the small
    eigenproblems are batched ``eigh`` in float64 on the solve's device.
    """
    S = torch.cat([W, Pw], 1)
    AS = torch.cat([AW, Qw], 1)
    MAS = AS if MAW is None else torch.cat([MAW, MQw], 1)
    Ga = torch.bmm(S, AS.transpose(1, 2)).to(torch.float64)
    Gm = _sym(torch.bmm(AS, MAS.transpose(1, 2)).to(torch.float64))
    ok = torch.cat([column_mask(torch.as_tensor(rank, device=W.device), W.shape[1]), valid], 1)
    Tb, r1 = a_orthonormal(Ga, ok, tol)  # A-orthonormal basis of range(S), kept columns first
    red = _sym(torch.bmm(Tb.transpose(1, 2), torch.bmm(Gm, Tb)))
    d = red.shape[-1]
    dropped = ~column_mask(r1, d)
    big = 10.0 * red.diagonal(dim1=1, dim2=2).abs().amax(1, keepdim=True) + 1.0
    red = red + torch.diag_embed(torch.where(dropped, big, torch.zeros_like(big)))
    _, Y = torch.linalg.eigh(red)  # ascending: the kept directions of smallest mu first
    kn = torch.clamp(r1, max=k)
    kk = min(k, d)
    T = torch.zeros(W.shape[0], d, k, dtype=torch.float64, device=W.device)
    T[:, :, :kk] = torch.bmm(Tb, Y[:, :, :kk]) * column_mask(kn, kk)[:, None, :]
    MAW = None if MAW is None else _mix(T, MAS)
    return _mix(T, S), _mix(T, AS), MAW, kn.cpu().numpy()


@fill_doc(params=PARAMETERS, returns=RETURNS, recycle_params=RECYCLE_PARAMETERS,
          adapt_params=ADAPT_DOC)
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
    adapt: bool = True,
    max_overhead: float | None = None,
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
    {adapt_params}

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
    res = run_rcg(pb, recycle, same_operator, k=k, n_store=n_store, adapt=adapt,
                  max_overhead=max_overhead)
    return res.x, res.info, res.recycle
