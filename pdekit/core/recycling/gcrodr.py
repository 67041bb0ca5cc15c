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

import time
from typing import Any, Literal, NamedTuple

import numpy as np
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
    ADAPT_DOC,
    RECYCLE_PARAMETERS,
    RECYCLE_RETURNS,
    AdaptOptions,
    RecycleRun,
    RecycleSpace,
    column_mask,
    drop_tol,
    export_space,
    import_space,
    needs_rebuild,
    orthonormalize,
    plan,
    review,
)
from pdekit.core.solve_result import SolveResult

__all__ = ["gcrodr"]


def select_pairs(lam: torch.Tensor, vecs: torch.Tensor, score: torch.Tensor, k: int):
    """Real basis (B, d, k) of the eigenvectors of the ``k`` eigenvalues of highest ``score``.

    ``lam`` (B, d) and ``vecs`` (B, d, d) are complex eigenpairs, ``score`` (B, d) real, with
    ``-inf`` for eigenvalues that must not be chosen. A complex-conjugate pair enters as (Re, Im)
    and is never split: when it straddles ``k``, ``k - 1`` vectors are kept. Returns the basis
    (columns beyond the count are zero) and the count per chain. Batched, on ``lam``'s device.
    """
    d = lam.shape[-1]
    first = torch.argsort(-lam.imag, dim=1, stable=True)  # the +imag member of a pair first
    order = first.gather(1, torch.argsort(-score.gather(1, first), dim=1, stable=True))
    lam_s = lam.gather(1, order)
    ok = torch.isfinite(score.gather(1, order))
    vec_s = vecs.gather(2, order[:, None, :].expand(-1, d, -1))
    kk = min(k, d)
    count = torch.clamp(ok.sum(1), max=kk)
    last = lam_s.imag.gather(1, (count - 1).clamp(min=0)[:, None])[:, 0]
    count = count - ((count > 0) & (last > 0)).long()
    basis = torch.where(lam_s.imag[:, None, :kk] >= 0, vec_s.real[:, :, :kk], vec_s.imag[:, :, :kk])
    out = torch.zeros(lam.shape[0], d, k, dtype=basis.dtype, device=basis.device)
    out[:, :, :kk] = basis * (torch.arange(kk, device=lam.device)[None, :] < count[:, None])[:, None]
    return out, count


def _select(theta, vecs, k: int):
    """:func:`select_pairs` for one chain with numpy inputs, smallest ``|theta|`` first."""
    lam = torch.as_tensor(np.asarray(theta, dtype=complex))[None]
    score = -lam.abs()
    score = torch.where(torch.isfinite(score), score, torch.full_like(score, -torch.inf))
    basis, count = select_pairs(lam, torch.as_tensor(np.asarray(vecs, dtype=complex))[None],
                                score, k)
    return basis[0, :, : int(count[0])].numpy()


def _rebuild_c(pb: RecycleRun, U, C, P, rank, recycle, same_operator):
    """Refresh ``P = M U`` and ``C = qr(A P)`` after a change of ``A`` or ``M``: one batched
    application of ``M`` and one of ``A`` (``k`` matvecs) to all columns, QR + SVD in torch."""
    kmax = int(rank.max())
    changed_a = not same_operator and (pb.keyA is None or pb.keyA != recycle.operator_key)
    changed_m = not same_operator and (pb.keyM is None or pb.keyM != recycle.preconditioner_key)
    if changed_m or (P is None) != (pb.M is None):
        P = None if pb.M is None else pb.block("M", U, kmax)
        changed_a = True
    if not changed_a:
        return U, C, P, rank
    AP = pb.block("A", U if P is None else P, kmax)
    Q, T, r = orthonormalize(AP[:, :kmax], drop_tol(U.dtype))

    def mix(X):
        out = torch.zeros_like(X)
        out[:, :kmax] = torch.bmm(T.transpose(1, 2), X[:, :kmax])
        return out

    C = torch.zeros_like(U)
    C[:, :kmax] = Q
    return mix(U), C, (None if P is None else mix(P)), r.cpu().numpy()


def _pencil(parts, selection: str, k: int):
    """Coefficients ``Pk`` (B, dim, k) of the recycled vectors in ``Vhat`` after one cycle.

    ``parts`` hold, per chain and zero-padded to ``dim = k + Lmax`` (slots ``[U D, V_L]``) and
    ``dim + 1`` rows (``[C, V_{L+1}]``): ``G`` with ``A M Vhat = What G``, ``N = What^T Vhat``,
    the Ritz Gram matrix and the valid columns. Invalid columns are unit vectors at invalid rows,
    so that they decouple and are never selected.
    """
    G, N, gram, col_ok = parts
    if selection == "harmonic":
        # G^T G p = theta G^T N p  <=>  R^{-1} Q^T N p = p / theta  (G = Q R): largest |1/theta|
        Qg, Rg = torch.linalg.qr(G)
        K = torch.linalg.solve_triangular(Rg, Qg.transpose(1, 2) @ N, upper=True)
        lam, vecs = torch.linalg.eig(K)
        score = lam.abs()
        score = torch.where(score > 0, score, torch.full_like(score, -torch.inf))
    else:  # Ritz: Vhat^T A Vhat p = theta Vhat^T Vhat p, with Vhat^T A Vhat = N^T G
        lam, vecs = torch.linalg.eig(torch.linalg.solve(gram, N.transpose(1, 2) @ G))
        score = -lam.abs()
    support = (vecs.abs() ** 2 * col_ok[:, :, None]).sum(1) > 0.5 * (vecs.abs() ** 2).sum(1)
    score = torch.where(support & torch.isfinite(score), score, torch.full_like(score, -torch.inf))
    Pk, _ = select_pairs(lam, vecs, score, k)
    return Pk


def _update_space(U, C, P, V, Z, H, Bc, rank, L, full, k, tol, selection):
    """New (U, C, P) from the harmonic Ritz vectors of the cycle, for the chains in ``full``.

    All chains at once: the small pencils are padded to a common size, batched in float64 torch
    on the host (where the Hessenberg matrix lives).
    """
    B, _, n = U.shape
    Lmax = V.shape[1] - 1
    dim = k + Lmax
    f64 = {"dtype": torch.float64, "device": "cpu"}
    ka = torch.as_tensor(rank, device="cpu")
    Lt = torch.as_tensor(L, device="cpu")
    u_ok = column_mask(ka, k)
    v_ok = column_mask(Lt, Lmax)
    col_ok = torch.cat([u_ok, v_ok], 1)
    row_ok = torch.cat([u_ok, column_mask(Lt + 1, Lmax + 1)], 1)
    unorm = torch.linalg.vector_norm(U, dim=2).to(**f64)
    d = torch.where(u_ok, 1.0 / torch.where(u_ok, unorm, torch.ones_like(unorm)),
                    torch.ones_like(unorm))
    CtU = torch.bmm(C, U.transpose(1, 2)).to(**f64)
    VtU = torch.bmm(V, U.transpose(1, 2)).to(**f64)
    G = torch.zeros(B, dim + 1, dim, **f64)
    G[:, :k, :k] = torch.diag_embed(d)
    G[:, :k, k:] = torch.as_tensor(Bc, **f64)
    G[:, k:, k:] = torch.as_tensor(H, **f64)
    N = torch.zeros(B, dim + 1, dim, **f64)
    N[:, :k, :k] = CtU * d[:, None, :]
    N[:, k:, :k] = VtU * d[:, None, :]
    N[:, k : k + Lmax, k:] = torch.eye(Lmax, **f64)
    mask = row_ok[:, :, None] & col_ok[:, None, :]
    G, N = G * mask, N * mask
    # invalid column j -> unit entry at an invalid row: U slot j at row j, V slot j at row k+j+1
    rows = torch.cat([torch.arange(k), torch.arange(k + 1, dim + 1)])
    unit = torch.zeros(B, dim + 1, dim, **f64)
    unit[:, rows, torch.arange(dim)] = (~col_ok).to(torch.float64)
    G = G + unit
    gram = None
    if selection != "harmonic":
        UtU = torch.bmm(U, U.transpose(1, 2)).to(**f64)
        gram = torch.zeros(B, dim, dim, **f64)
        gram[:, :k, :k] = UtU * d[:, :, None] * d[:, None, :]
        gram[:, k:, :k] = VtU[:, :Lmax] * d[:, None, :]
        gram[:, :k, k:] = gram[:, k:, :k].transpose(1, 2)
        cm = col_ok[:, :, None] & col_ok[:, None, :]
        gram = gram * cm + torch.diag_embed((~col_ok).to(torch.float64))
        gram[:, k:, k:] += torch.diag_embed(col_ok[:, k:].to(torch.float64))
    Pk = _pencil((G, N, gram, col_ok), selection, k)
    Qn, T, kn = orthonormalize((G @ Pk).transpose(1, 2), tol)  # G Pk T = Qn^T, orthonormal
    TU = Pk @ T
    TU[:, :k] *= d[:, :, None]  # the U rows act on U D (column scaling)
    TC = Qn.transpose(1, 2)
    take = torch.as_tensor(full, device="cpu") & (kn > 0)  # nothing usable: keep the old space
    eye_u = torch.zeros(B, dim, k, **f64)
    eye_u[:, :k] = torch.eye(k, **f64)
    eye_c = torch.zeros(B, dim + 1, k, **f64)
    eye_c[:, :k] = torch.eye(k, **f64)
    TU = torch.where(take[:, None, None], TU, eye_u)
    TC = torch.where(take[:, None, None], TC, eye_c)
    new_rank = torch.where(take, kn, ka).numpy()
    TUt = TU.transpose(1, 2).to(U)
    TCt = TC.transpose(1, 2).to(U)
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
               selection: str = "harmonic", adapt: bool = False,
               max_overhead: float | None = None) -> SolveResult:
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
    opts = AdaptOptions(enabled=adapt, max_overhead=max_overhead)
    stats = None if recycle is None else recycle.stats
    k, stats = plan(stats, k, needs_rebuild(pb, recycle, same_operator), opts)
    x, r = pb.x, pb.r
    U, C, P, rank = import_space(recycle, "gcrodr", B, n, k, pb.b)
    plain = not rank.any()
    if plain:
        P = None if pb.M is None else torch.zeros_like(U)
    tol_drop = drop_tol(pb.b.dtype)
    mv0 = pb.matvecs
    if rank.any():
        U, C, P, rank = _rebuild_c(pb, U, C, P, rank, recycle, same_operator)
    rebuilt = pb.matvecs - mv0
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
    if opts.enabled and (k > 0 or stats is not None):
        seconds = (time.perf_counter() - pb.t_start) / B
        stats = review(stats, k, seconds, float(pb.its.double().mean()), plain, opts,
                       rebuilt=rebuilt)
    return pb.result(x, recycle=export_space(*space, "gcrodr", pb, stats))


@fill_doc(params=PARAMETERS, returns=RETURNS, recycle_params=RECYCLE_PARAMETERS,
          recycle_returns=RECYCLE_RETURNS, adapt_params=ADAPT_DOC)
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
    adapt: bool = False,
    max_overhead: float | None = None,
) -> tuple[torch.Tensor, int, RecycleSpace]:
    """GCRO-DR(m, k): restarted GMRES with deflated restarting and recycling across systems.

    Each cycle runs ``m - k`` Arnoldi steps on ``(I - C C^T) A M`` (CGS2 against ``C`` and the
    Krylov basis), minimises the residual over ``range(U) + K`` and replaces ``U`` by the ``k``
    harmonic Ritz vectors of smallest modulus (strategy A; columns of ``U`` scaled to unit norm
    first; the small generalised eigenproblem is reduced to a standard one, batched in float64 torch; complex
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
    {adapt_params}

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
    res = run_gcrodr(pb, recycle, same_operator, m=m, k=k, selection=selection,
                     adapt=adapt, max_overhead=max_overhead)
    return res.x, res.info, res.recycle
