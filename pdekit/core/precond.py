"""Preconditioners: Jacobi (any device), and adapters to pyamg and scipy's ILU (CPU).

Every preconditioner follows scipy's convention: ``M`` approximates ``A^{-1}`` and is applied as
``z = M r`` to ``(B, n)`` batches. The geometric multigrid V-cycle lives in
:mod:`pdekit.core.multigrid`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from pdekit.core.linop import LinearOperator
from pdekit.core.stencils import StencilOperator

__all__ = ["jacobi", "pyamg_preconditioner", "ilu_preconditioner"]


def jacobi(A) -> LinearOperator:
    """Diagonal (Jacobi) preconditioner ``M = diag(A)^{-1}``.

    ``A`` is a :class:`~pdekit.core.stencils.StencilOperator` (batched diagonals kept per system),
    a dense ``(n, n)`` / ``(B, n, n)`` tensor, a torch sparse matrix or a scipy sparse matrix.

    Examples
    --------
    >>> import torch
    >>> M = jacobi(torch.diag(torch.tensor([2.0, 4.0])))
    >>> (M @ torch.ones(2)).tolist()
    [0.5, 0.25]
    """
    if isinstance(A, StencilOperator):
        d = A.diagonal().reshape(A.batch, -1)
    elif isinstance(A, torch.Tensor) and A.layout == torch.strided:
        d = torch.diagonal(A, dim1=-2, dim2=-1)
        d = d.unsqueeze(0) if d.dim() == 1 else d
    elif isinstance(A, torch.Tensor):
        coo = A.to_sparse_coo().coalesce()
        i, j = coo.indices()
        keep = i == j
        d = torch.zeros(A.shape[0], dtype=A.dtype, device=A.device)
        d.index_add_(0, i[keep], coo.values()[keep])
        d = d.unsqueeze(0)
    else:
        try:
            import scipy.sparse as sp
        except ImportError as exc:  # pragma: no cover
            raise TypeError(f"jacobi: unsupported operator {type(A).__name__}") from exc
        if not sp.issparse(A):
            raise TypeError(f"jacobi: unsupported operator {type(A).__name__}")
        d = torch.from_numpy(np.asarray(A.diagonal())).unsqueeze(0)
    if not torch.isfinite(d).all() or (d == 0).any():
        raise ValueError("jacobi: the diagonal has zeros or non-finite entries")
    inv = 1.0 / d

    def mv(X: torch.Tensor) -> torch.Tensor:
        return X * inv.to(X)

    return LinearOperator((inv.shape[-1], inv.shape[-1]), mv, symmetric=True)


def _scipy_mats(A) -> list:
    import scipy.sparse as sp

    if isinstance(A, StencilOperator):
        return [A.to_scipy(i) for i in range(A.batch)]
    if sp.issparse(A):
        return [A.tocsr()]
    if isinstance(A, Sequence) and all(sp.issparse(m) for m in A):
        return [m.tocsr() for m in A]
    raise TypeError(
        "expected a StencilOperator, a scipy.sparse matrix or a list of them, "
        f"got {type(A).__name__}"
    )


def _per_system(solvers: list, n: int) -> LinearOperator:
    def mv(X: torch.Tensor) -> torch.Tensor:
        if len(solvers) > 1 and X.shape[0] != len(solvers):
            raise ValueError(
                f"preconditioner holds {len(solvers)} systems but got a batch of {X.shape[0]}"
            )
        Xn = X.detach().cpu().to(torch.float64).numpy()
        out = np.empty_like(Xn)
        for i in range(Xn.shape[0]):
            out[i] = solvers[i if len(solvers) > 1 else 0](Xn[i])
        return torch.from_numpy(out).to(device=X.device, dtype=X.dtype)

    return LinearOperator((n, n), mv)


def pyamg_preconditioner(A, kind: str = "sa", cycle: str = "V", **kwargs) -> LinearOperator:
    """Algebraic multigrid from pyamg (CPU) as a batched preconditioner.

    Parameters
    ----------
    A : StencilOperator, scipy.sparse matrix, or list of them
        One hierarchy is built per system of a batched operator.
    kind : {"sa", "rs"}
        Smoothed aggregation or classical Ruge-Stueben.
    cycle : str
        pyamg cycle type.

    References
    ----------
    .. [1] N. Bell, L. Olson, J. Schroder, "PyAMG: Algebraic Multigrid Solvers in Python",
       JOSS 7(72), 2022.
    """
    import pyamg

    mats = _scipy_mats(A)
    if kind == "sa":
        build = pyamg.smoothed_aggregation_solver
    elif kind == "rs":
        build = pyamg.ruge_stuben_solver
    else:
        raise ValueError(f"unknown pyamg kind {kind!r}: use 'sa' or 'rs'")
    solvers = [build(m, **kwargs).aspreconditioner(cycle=cycle) for m in mats]
    return _per_system([s.matvec for s in solvers], mats[0].shape[0])


def ilu_preconditioner(A, drop_tol: float = 1e-4, fill_factor: float = 10.0) -> LinearOperator:
    """Incomplete LU from ``scipy.sparse.linalg.spilu`` (CPU), one factorisation per system."""
    import scipy.sparse.linalg as spla

    mats = _scipy_mats(A)
    solvers = [
        spla.spilu(m.tocsc(), drop_tol=drop_tol, fill_factor=fill_factor).solve for m in mats
    ]
    return _per_system(solvers, mats[0].shape[0])
