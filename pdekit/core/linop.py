"""Linear operators acting on batches of vectors.

Every solver in :mod:`pdekit.core` accepts ``A`` (and a preconditioner ``M``) as

* a dense tensor of shape ``(n, n)`` (one matrix for every system) or ``(B, n, n)`` (one per system),
* a torch sparse tensor (COO or CSR) of shape ``(n, n)``,
* a scipy.sparse matrix or numpy array (converted once to a torch sparse/dense tensor),
* a callable ``f(X) -> Y`` mapping a ``(B, n)`` tensor to a ``(B, n)`` tensor,
* a :class:`LinearOperator`.

Vectors are batched along the leading dimension: ``X`` has shape ``(B, n)``, one row per system.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

__all__ = ["LinearOperator", "aslinearoperator", "as_batch"]

MatVec = Callable[[torch.Tensor], torch.Tensor]


class LinearOperator:
    """A square linear map applied to ``(B, n)`` batches of vectors.

    Parameters
    ----------
    shape : tuple of int
        ``(n, n)``.
    matvec : callable
        ``matvec(X)`` with ``X`` of shape ``(B, n)`` returns ``A X`` row-wise, shape ``(B, n)``.
    rmatvec : callable, optional
        The adjoint (transpose) product. Without it, :attr:`T` is obtained by automatic
        differentiation of ``matvec`` (exact for any linear ``matvec`` written in torch).
    symmetric : bool
        Declares ``A = A^T`` (then ``rmatvec`` defaults to ``matvec``).

    Examples
    --------
    >>> import torch
    >>> A = LinearOperator((3, 3), lambda X: 2 * X, symmetric=True)
    >>> (A @ torch.ones(3)).tolist()
    [2.0, 2.0, 2.0]
    """

    def __init__(
        self,
        shape: tuple[int, int],
        matvec: MatVec,
        rmatvec: MatVec | None = None,
        *,
        symmetric: bool = False,
    ):
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"LinearOperator must be square, got shape {tuple(shape)}")
        self.shape = (int(shape[0]), int(shape[1]))
        self._matvec = matvec
        self.symmetric = symmetric
        if rmatvec is None and symmetric:
            rmatvec = matvec
        self._rmatvec = rmatvec

    def matvec(self, X: torch.Tensor) -> torch.Tensor:
        """Apply to a ``(B, n)`` batch; returns ``(B, n)``."""
        return self._matvec(X)

    def rmatvec(self, X: torch.Tensor) -> torch.Tensor:
        """Apply the transpose to a ``(B, n)`` batch."""
        if self._rmatvec is not None:
            return self._rmatvec(X)
        # A linear map's transpose is its vector-Jacobian product.
        with torch.enable_grad():
            probe = torch.zeros_like(X, requires_grad=True)
            out = self._matvec(probe)
            (g,) = torch.autograd.grad(out, probe, grad_outputs=X)
        return g

    @property
    def T(self) -> LinearOperator:  # noqa: N802 (numpy spelling)
        if self.symmetric:
            return self
        return LinearOperator(self.shape, self.rmatvec, self.matvec)

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        X, squeeze = as_batch(x)
        Y = self.matvec(X)
        return Y[0] if squeeze else Y

    __call__ = __matmul__

    def __repr__(self) -> str:
        return f"LinearOperator(shape={self.shape}, symmetric={self.symmetric})"


def as_batch(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Return ``x`` as a ``(B, n)`` tensor and whether it was a single ``(n,)`` vector."""
    if x.dim() == 1:
        return x.unsqueeze(0), True
    if x.dim() == 2:
        return x, False
    raise ValueError(f"expected a vector (n,) or a batch (B, n), got shape {tuple(x.shape)}")


def _from_scipy_or_numpy(A) -> torch.Tensor | None:
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover
        sp = None
    if sp is not None and sp.issparse(A):
        A = A.tocsr()
        return torch.sparse_csr_tensor(
            torch.from_numpy(A.indptr.astype(np.int64)),
            torch.from_numpy(A.indices.astype(np.int64)),
            torch.from_numpy(np.asarray(A.data)),
            size=A.shape,
        )
    if isinstance(A, np.ndarray):
        return torch.from_numpy(A)
    return None


def _tensor_operator(A: torch.Tensor) -> LinearOperator:
    sparse = A.layout != torch.strided
    if A.dim() == 2:
        n0, n1 = A.shape
        if n0 != n1:
            raise ValueError(f"matrix must be square, got shape {tuple(A.shape)}")
        cache: dict = {}

        def on(X: torch.Tensor) -> torch.Tensor:
            key = (X.device, X.dtype)
            if key not in cache:
                cache.clear()
                cache[key] = A.to(device=X.device, dtype=X.dtype)
            return cache[key]

        if sparse:

            def mv(X):
                return (on(X) @ X.T).T

            def rmv(X):
                At = cache.get("T")
                if At is None or At.device != X.device or At.dtype != X.dtype:
                    At = on(X).to_sparse_coo().t().coalesce().to_sparse_csr()
                    cache["T"] = At
                return (At @ X.T).T
        else:

            def mv(X):
                return X @ on(X).T

            def rmv(X):
                return X @ on(X)

        return LinearOperator((n0, n1), mv, rmv)
    if A.dim() == 3 and not sparse:
        b, n0, n1 = A.shape
        if n0 != n1:
            raise ValueError(f"batched matrices must be square, got shape {tuple(A.shape)}")

        def bmv(X):
            if X.shape[0] != b:
                raise ValueError(
                    f"operator holds {b} matrices but the batch has {X.shape[0]} vectors"
                )
            return torch.bmm(A.to(X), X.unsqueeze(-1)).squeeze(-1)

        def brmv(X):
            return torch.bmm(A.to(X).transpose(1, 2), X.unsqueeze(-1)).squeeze(-1)

        return LinearOperator((n0, n1), bmv, brmv)
    raise ValueError(f"cannot use a tensor of shape {tuple(A.shape)} as a linear operator")


def aslinearoperator(A, n: int | None = None) -> LinearOperator:
    """Wrap ``A`` (tensor, sparse tensor, scipy/numpy matrix, callable, operator) as an operator.

    ``n`` is needed only for a bare callable, whose size cannot be inferred.
    """
    if isinstance(A, LinearOperator):
        return A
    converted = _from_scipy_or_numpy(A)
    if converted is not None:
        A = converted
    if isinstance(A, torch.Tensor):
        return _tensor_operator(A)
    if hasattr(A, "as_linear_operator"):
        return A.as_linear_operator()
    if callable(A):
        if n is None:
            raise ValueError("a callable operator needs its size n")
        return LinearOperator((n, n), A)
    raise TypeError(f"cannot use an object of type {type(A).__name__} as a linear operator")
