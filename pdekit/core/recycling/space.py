"""The recycle space handed from one solve to the next, and what both recycling solvers share.

:class:`RecycleSpace` is public. The other names here are shared by :mod:`.gcrodr` and :mod:`.rcg`
(public within pdekit, not re-exported): :class:`RecycleRun` (the
:class:`~pdekit.core.krylov_base.KrylovRun` bookkeeping plus operator fingerprints),
:func:`fingerprint`, :func:`import_space` / :func:`export_space` between the public ``(B, n, k)``
layout and the internal ``(B, k, n)`` one, and the numpydoc blocks :data:`RECYCLE_PARAMETERS` and
:data:`RECYCLE_RETURNS`.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch

from pdekit.core.krylov_base import KrylovRun

__all__ = ["RecycleSpace", "RecycleStats"]


@dataclass(frozen=True)
class RecycleSpace:
    """Recycle space of ``B`` chains, handed from one solve to the next (never modified in place).

    Columns ``0..rank[i]-1`` of chain ``i`` are valid; further columns are zero.

    Attributes
    ----------
    U : torch.Tensor, shape (B, n, k)
        Recycled basis. GCRO-DR: in the right-preconditioned variable ``t`` (``x = M t``).
        Deflated CG: the deflation vectors ``W``, A-orthonormal (``U^T A U = I``).
    C : torch.Tensor, shape (B, n, k)
        GCRO-DR: ``C = A M U`` with orthonormal columns. Deflated CG: ``C = A U``.
    P : torch.Tensor or None, shape (B, n, k)
        GCRO-DR: ``P = M U`` (so that ``C = A P``). Deflated CG: ``P = M C``, used to pick the
        eigenvectors of the preconditioned operator. ``None`` without a preconditioner.
    rank : torch.Tensor, shape (B,)
        Number of valid columns per chain.
    method : {"gcrodr", "rcg"}
        The solver that built the space (the two are not interchangeable).
    stats : RecycleStats or None
        What the adaptive rule measured and decided (``None`` with ``adapt=False``).
    operator_key, preconditioner_key : hashable or None
        Fingerprints of ``A`` and ``M`` when ``C`` (and ``P``) were computed. A solve with a
        different fingerprint rebuilds ``C`` (``k`` matvecs); ``None`` means unknown (callables and
        :class:`~pdekit.core.linop.LinearOperator` without a ``fingerprint`` attribute), which
        always rebuilds unless the solver is told ``same_operator=True``.

    Examples
    --------
    >>> import torch
    >>> from pdekit.core.recycling import rcg
    >>> A = torch.diag(torch.linspace(0.1, 1.0, 20, dtype=torch.float64))
    >>> _, _, space = rcg(A, torch.ones(20, dtype=torch.float64), k=3)
    >>> space.method, space.k, space.n_chains, tuple(space.U.shape)
    ('rcg', 3, 1, (1, 20, 3))
    """

    U: torch.Tensor
    C: torch.Tensor
    P: torch.Tensor | None
    rank: torch.Tensor
    method: Literal["gcrodr", "rcg"]
    operator_key: Any = None
    preconditioner_key: Any = None
    stats: RecycleStats | None = None

    @property
    def recycling_active(self) -> bool:
        """Whether the next solve recycles (``False`` once the adaptive rule switched it off)."""
        return self.stats is None or self.stats.active

    @property
    def reason(self) -> str:
        """What the adaptive rule decided last, and why."""
        return "recycling" if self.stats is None else self.stats.reason

    @property
    def k(self) -> int:
        """Number of columns (the recycle dimension)."""
        return int(self.U.shape[-1])

    @property
    def n_chains(self) -> int:
        """Number of independent chains ``B``."""
        return int(self.U.shape[0])



def fingerprint(op: Any) -> Any:
    """A content fingerprint of a matrix (``None`` when ``op`` is a black-box operator)."""
    if op is None:
        return ("identity",)
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover
        sp = None
    if sp is not None and sp.issparse(op):
        A = op.tocsr()
        h = hashlib.blake2b(digest_size=16)
        for arr in (A.indptr, A.indices, A.data):
            h.update(np.ascontiguousarray(arr).tobytes())
        return ("scipy", A.shape, str(A.dtype), h.hexdigest())
    if isinstance(op, np.ndarray):
        h = hashlib.blake2b(np.ascontiguousarray(op).tobytes(), digest_size=16)
        return ("numpy", op.shape, str(op.dtype), h.hexdigest())
    if isinstance(op, torch.Tensor):
        t = op.detach()
        if t.layout == torch.sparse_coo:
            t = t.coalesce()
            parts = [t.indices(), t.values()]
        elif t.layout == torch.sparse_csr:
            parts = [t.crow_indices(), t.col_indices(), t.values()]
        elif t.layout == torch.strided:
            parts = [t]
        else:
            return None
        sums = []
        for p in parts:
            v = p.reshape(-1).to(torch.float64)
            w = torch.sin(torch.arange(v.numel(), dtype=torch.float64, device=v.device) * 0.618 + 0.5)
            sums.append(torch.stack([v.sum(), (v * w).sum(), (v * v).sum()]))
        return ("torch", tuple(op.shape), str(op.dtype), str(op.layout),
                tuple(torch.cat(sums).tolist()))
    key = getattr(op, "fingerprint", None)
    return None if key is None else ("user", key)




class RecycleRun(KrylovRun):
    """:class:`~pdekit.core.krylov_base.KrylovRun` plus the fingerprints of ``A`` and ``M``, and
    block applications of both to ``k`` columns at once."""

    def __init__(self, method, A, b, x0, rtol, atol, maxiter, M, callback, strict):
        self.t_start = time.perf_counter()
        self.keyA, self.keyM = fingerprint(A), fingerprint(M)
        self.rawA, self.rawM = A, M
        super().__init__(method, A, b, x0, rtol, atol, maxiter, M, callback, strict)

    def block(self, which: str, X: torch.Tensor, n_cols: int) -> torch.Tensor:
        """``A`` (``which="A"``, counted as ``n_cols`` matvecs) or ``M`` applied to the first
        ``n_cols`` rows of every chain of ``X`` (B, k, n), in one batched call where the operator
        allows it (shared operators, stacked dense matrices, batched stencils); rows from
        ``n_cols`` on are zero."""
        out = torch.zeros_like(X)
        if n_cols == 0:
            return out
        raw, op = (self.rawA, self.A) if which == "A" else (self.rawM, self.M)
        if which == "A":
            self.matvecs += n_cols
        if op is None:
            out[:, :n_cols] = X[:, :n_cols]
            return out
        B, _, n = X.shape
        Xc = X[:, :n_cols]
        if isinstance(raw, torch.Tensor) and raw.layout == torch.strided and raw.dim() == 3:
            out[:, :n_cols] = torch.bmm(Xc, raw.to(X).transpose(1, 2))
            return out
        batch = _operator_batch(raw)
        if batch == 1:
            Y = op.matvec(Xc.reshape(B * n_cols, n))
        elif batch == B and hasattr(raw, "take"):  # one coefficient set per column
            idx = torch.arange(B).repeat_interleave(n_cols)
            Y = raw.take(idx).matvec(Xc.reshape(B * n_cols, n))
        else:  # black box acting on (B, n) only
            Y = torch.stack([op.matvec(Xc[:, j]) for j in range(n_cols)], 1)
        out[:, :n_cols] = Y.reshape(B, n_cols, n)
        return out


def _operator_batch(op: Any) -> int | None:
    """1 when ``op`` acts on any number of vectors (shared), its batch size, or ``None``."""
    batch = getattr(op, "batch", None)
    if isinstance(batch, int):
        return batch
    if isinstance(op, (np.ndarray, torch.Tensor)) and op.ndim == 2:
        return 1
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover
        return None
    return 1 if sp.issparse(op) else None


def import_space(recycle, method, B, n, k, like):
    """Internal (B, k, n) copies of U, C, P and the rank, truncated or padded to ``k`` columns."""
    if recycle is None or k == 0:
        z = like.new_zeros(B, k, n)
        return z, z.clone(), None, np.zeros(B, dtype=np.int64)
    if not isinstance(recycle, RecycleSpace):
        raise TypeError(f"{method}: recycle must be a RecycleSpace, got {type(recycle).__name__}")
    if recycle.method != method:
        raise ValueError(f"{method}: the recycle space was built by {recycle.method}, not {method}")
    if recycle.U.dim() != 3 or tuple(recycle.U.shape[:2]) != (B, n):
        raise ValueError(
            f"{method}: recycle space has shape {tuple(recycle.U.shape)}, expected ({B}, {n}, k)"
        )

    def conv(T):
        if T is None:
            return None
        T = T.to(device=like.device, dtype=like.dtype).transpose(1, 2)[:, :k]
        out = like.new_zeros(B, k, n)
        out[:, : T.shape[1]] = T
        return out

    rank = np.minimum(recycle.rank.detach().cpu().numpy().astype(np.int64), k)
    return conv(recycle.U), conv(recycle.C), conv(recycle.P), rank


def export_space(U, C, P, rank, method, pb, stats: RecycleStats | None = None) -> RecycleSpace:
    """The (B, n, k) public space from internal (B, k, n) blocks, with the fingerprints of ``pb``."""

    def out(T):
        return None if T is None else T.transpose(1, 2).contiguous()

    return RecycleSpace(out(U), out(C), out(P), torch.as_tensor(rank, dtype=torch.long),
                        method, pb.keyA, pb.keyM, stats)


def needs_rebuild(pb: RecycleRun, recycle: RecycleSpace | None, same_operator: bool) -> bool:
    """Whether ``A`` or ``M`` differ from those the incoming space was built with."""
    if recycle is None or same_operator or not bool((recycle.rank > 0).any()):
        return False
    return (pb.keyA is None or pb.keyA != recycle.operator_key or pb.keyM is None
            or pb.keyM != recycle.preconditioner_key)


def drop_tol(dtype: torch.dtype) -> float:
    """Relative threshold below which a recycled direction counts as dependent."""
    return float(torch.finfo(dtype).eps) ** (2.0 / 3.0)


def orthonormalize(Y: torch.Tensor, tol: float):
    """Orthonormal rows spanning the rows of ``Y`` (B, k, n), nearly dependent ones dropped.

    Batched QR of ``Y^T`` on ``Y``'s device, then an SVD of the small ``R`` (float64): returns
    ``(Q, T, rank)`` with ``Q = T^T Y`` (B, k, n) orthonormal in its first ``rank[i]`` rows (zero
    below) and ``T`` (B, k, k) in ``Y``'s dtype. Singular values below ``tol`` times the largest are
    dropped (zero rows of ``Y`` are never kept).
    """
    Q0, R = torch.linalg.qr(Y.transpose(1, 2))
    X, S, Vh = torch.linalg.svd(R.to(torch.float64))
    keep = S > tol * S[:, :1]
    inv = torch.where(keep, 1.0 / torch.where(keep, S, torch.ones_like(S)), torch.zeros_like(S))
    T = (Vh.transpose(1, 2) * inv[:, None, :]).to(Y.dtype)
    Xk = (X * keep[:, None, :]).to(Y.dtype)
    Q = torch.bmm(Q0, Xk).transpose(1, 2)
    return Q, T, keep.sum(1).to(torch.long)


def column_mask(rank: torch.Tensor, k: int) -> torch.Tensor:
    """(B, k) boolean mask of the valid columns ``j < rank[i]``."""
    return torch.arange(k, device=rank.device)[None, :] < rank[:, None]


# ----------------------------------------------------------------------------------------------
# Deciding whether recycling pays
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecycleStats:
    """What the adaptive rule measured and decided, carried along a sequence in the space.

    Attributes
    ----------
    active : bool
        Whether the next solve recycles (``False``: the plain method, ``k = 0``).
    k_used : int
        Recycle dimension the next solve uses.
    reason : str
        Why (one line).
    plain_iterations, plain_seconds : float or None
        Mean iterations and seconds per system of the solves without a usable recycle space (the
        first one, and every one after recycling was switched off).
    n_plain : int
        How many solves those means cover.
    trial_seconds, trial_iterations : tuple of float
        The last recycled solves at the current ``k`` (the measured cost; the iterations include
        the columns of ``C = A U`` rebuilt, one operator application each).
    """

    active: bool = True
    k_used: int = 0
    reason: str = "recycling"
    plain_iterations: float | None = None
    plain_seconds: float | None = None
    n_plain: int = 0
    trial_seconds: tuple[float, ...] = ()
    trial_iterations: tuple[float, ...] = ()


@dataclass(frozen=True)
class AdaptOptions:
    """Knobs of the adaptive rule (see :data:`ADAPT_DOC`)."""

    enabled: bool = True
    max_overhead: float | None = None
    n_trial: int = 2
    k_min: int = 4
    rebuild_share: float = 1.0 / 3.0


def plan(stats: RecycleStats | None, k: int, rebuild: bool, opts: AdaptOptions):
    """Recycle dimension of the coming solve: ``(k_eff, stats)`` before it starts.

    Without statistics (first system) the requested ``k`` is used. Switched off stays off. When
    ``C = A U`` must be rebuilt (``k`` operator and preconditioner applications, about ``k``
    iterations), ``k`` is capped at ``rebuild_share`` times the plain iteration count, since the
    rebuild can never cost more than the iterations it saves; below ``k_min`` recycling is off.
    """
    if not opts.enabled or stats is None or k == 0:
        return k, stats
    if not stats.active:
        return 0, stats
    k_eff = min(k, stats.k_used or k)
    if rebuild and stats.plain_iterations is not None:
        cap = int(opts.rebuild_share * stats.plain_iterations)
        if cap < k_eff:
            if cap < opts.k_min:
                why = (f"off: a plain solve takes {stats.plain_iterations:.3g} iterations, fewer than "
                       f"rebuilding C = A U for {opts.k_min} columns costs")
                return 0, replace(stats, active=False, k_used=0, reason=why)
            why = (f"k {k_eff} -> {cap}: rebuilding C costs about k iterations and a plain solve "
                   f"takes {stats.plain_iterations:.3g}")
            k_eff = cap
            stats = replace(stats, k_used=cap, reason=why, trial_seconds=(), trial_iterations=())
    return k_eff, stats


def review(stats: RecycleStats | None, k_eff: int, seconds: float, iterations: float,
           plain: bool, opts: AdaptOptions, rebuilt: int = 0) -> RecycleStats | None:
    """The statistics after a solve that took ``seconds`` and ``iterations`` per system.

    ``rebuilt`` is the number of columns of ``C = A U`` rebuilt (operator applications on top of
    the iterations).
    ``plain`` marks a solve without a usable incoming space (it feeds the baseline). A recycled
    solve is a trial. After ``n_trial`` trials that saved no iterations on average, recycling is
    switched off; when they saved some but cost more than ``1 + max_overhead`` times the plain
    solve per system, ``k`` is halved (while ``k / 2 >= k_min``), else switched off. The last
    ``n_trial`` recycled solves are reviewed after every solve.
    """
    if not opts.enabled:
        return stats
    st = stats if stats is not None else RecycleStats(k_used=k_eff)
    if plain:
        n = st.n_plain
        its = iterations if n == 0 else (st.plain_iterations * n + iterations) / (n + 1)
        sec = seconds if n == 0 else (st.plain_seconds * n + seconds) / (n + 1)
        return replace(st, plain_iterations=its, plain_seconds=sec, n_plain=n + 1,
                       k_used=st.k_used if not st.active else max(k_eff, st.k_used))
    ts = (st.trial_seconds + (seconds,))[-opts.n_trial :]
    ti = (st.trial_iterations + (iterations + rebuilt,))[-opts.n_trial :]
    st = replace(st, trial_seconds=ts, trial_iterations=ti, k_used=k_eff)
    if len(ts) < opts.n_trial or st.plain_seconds is None:
        return st
    ratio = float(np.mean(ts)) / max(st.plain_seconds, 1e-12)
    saved = float(np.mean(ti)) < st.plain_iterations
    if not saved:
        return replace(st, active=False, k_used=0, trial_seconds=(), trial_iterations=(),
                       reason=f"off: no operator applications saved at k={k_eff} "
                       f"({float(np.mean(ti)):.3g} vs {st.plain_iterations:.3g} plain), "
                       f"{ratio:.2f}x the plain cost")
    if opts.max_overhead is None:  # the default: counts only, so a sequence is reproducible
        return replace(st, reason=f"recycling: {float(np.mean(ti)):.3g} operator applications per "
                       f"system vs {st.plain_iterations:.3g} plain at k={k_eff}")
    if ratio <= 1.0 + opts.max_overhead:
        return replace(st, reason=f"recycling: {ratio:.2f}x the plain cost per system at k={k_eff}")
    if k_eff // 2 >= opts.k_min:
        return replace(st, k_used=k_eff // 2, trial_seconds=(), trial_iterations=(),
                       reason=f"k {k_eff} -> {k_eff // 2}: {ratio:.2f}x the plain cost per system")
    return replace(st, active=False, k_used=0, trial_seconds=(), trial_iterations=(),
                   reason=f"off: {ratio:.2f}x the plain cost per system at k={k_eff}")


RECYCLE_PARAMETERS = """
recycle : RecycleSpace, optional
    The space returned by the previous solve of these chains with the same method (``None`` for
    the first system).
same_operator : bool
    Promise that ``A`` and ``M`` did not change since ``recycle`` was built, skipping the ``k``
    matvecs that rebuild ``C``. Without it the rebuild happens unless both fingerprints match
    (black-box operators have none, so their change cannot be detected).
"""
"""Numpydoc lines for the recycling keywords (``{recycle_params}`` in a docstring)."""

RECYCLE_RETURNS = """
recycle : RecycleSpace
    The new recycle space of the chains (``U``, ``C``, ``P`` of shape ``(B, n, k)``).
"""
"""Numpydoc lines for the space every recycling solver hands back (``{recycle_returns}``)."""

ADAPT_DOC = """
adapt : bool
    Decide from measured cost whether recycling pays (default ``True`` for ``rcg``, whose plain
    counterpart ``k = 0`` is PCG; ``False`` for ``gcrodr``, where ``k = 0`` is GMRES(m), which is
    weaker than GCRO-DR without an incoming space, so switching off can cost iterations). The first solve (no
    space) is the plain-cost baseline; ``k`` is capped at a third of its iterations when ``C = A U``
    must be rebuilt; after two recycled solves costing more than ``1 + max_overhead`` times the
    plain one per system, ``k`` is halved or recycling is switched off (``k = 0``: the plain
    method, exactly); after two recycled solves saving no operator applications (iterations
    plus the rebuild of ``C``) recycling is switched off. What was decided is in
    ``recycle.stats`` (``active``, ``k_used``, ``reason``).
max_overhead : float or None
    Tolerated wall-clock cost over the plain method, e.g. 0.15. The default ``None`` decides on
    operator-application counts alone, so the same sequence always takes the same path; with a
    number the decision also reads wall-clock timings and so depends on the machine's load.
"""
"""Numpydoc lines for the adaptive-recycling keywords (``{adapt_params}`` in a docstring)."""
