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
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.linalg as sla
import torch

from pdekit.core.krylov_base import KrylovRun

__all__ = ["RecycleSpace"]


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
    """:class:`~pdekit.core.krylov_base.KrylovRun` plus the fingerprints of ``A`` and ``M``."""

    def __init__(self, method, A, b, x0, rtol, atol, maxiter, M, callback, strict):
        self.keyA, self.keyM = fingerprint(A), fingerprint(M)
        super().__init__(method, A, b, x0, rtol, atol, maxiter, M, callback, strict)

    def columns(self, fn, X: torch.Tensor, n_cols: int) -> torch.Tensor:
        """Apply ``fn`` to the first ``n_cols`` rows of ``X`` (B, k, n), column by column."""
        out = torch.zeros_like(X)
        for j in range(n_cols):
            out[:, j] = fn(X[:, j])
        return out


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


def export_space(U, C, P, rank, method, pb) -> RecycleSpace:
    """The (B, n, k) public space from internal (B, k, n) blocks, with the fingerprints of ``pb``."""

    def out(T):
        return None if T is None else T.transpose(1, 2).contiguous()

    return RecycleSpace(out(U), out(C), out(P), torch.as_tensor(rank, dtype=torch.long),
                        method, pb.keyA, pb.keyM)


def drop_tol(dtype: torch.dtype) -> float:
    """Relative threshold below which a recycled direction counts as dependent."""
    return float(torch.finfo(dtype).eps) ** (2.0 / 3.0)


def independent_columns(X: np.ndarray, tol: float) -> np.ndarray:
    """Sorted indices of a well-conditioned subset of the columns of ``X`` (pivoted QR)."""
    if X.shape[1] == 0:
        return np.zeros(0, dtype=np.int64)
    _, R, piv = sla.qr(X, mode="economic", pivoting=True)
    d = np.abs(np.diag(R))
    if d.size == 0 or not d[0] > 0:
        return np.zeros(0, dtype=np.int64)
    return np.sort(piv[: int(np.sum(d > tol * d[0]))])




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
