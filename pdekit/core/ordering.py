"""Order a sequence of PDE samples so that neighbours are similar (for Krylov recycling).

Recycling solvers (:mod:`pdekit.core.recycling`) carry a recycle space from one linear system to the
next, and they gain most when consecutive systems are close. SKR (Wang et al., 2024) therefore sorts
the samples before solving them: a greedy nearest-neighbour chain on the distance between the
parameter fields (their Algorithm 1). For very large sets the paper sketches cheaper orders (App.
E.2.2): a projection on principal components and a space-filling curve. This module provides all
three, plus the helpers to cut the ordered list into independent chains and to restore the original
order.

Restoring the original order
----------------------------
``perm = order_samples(features)`` lists sample indices in solve order: the ``j``-th system solved is
sample ``perm[j]``. Solutions computed in that order, ``x_sorted`` (stacked along the first axis), go
back to the original order with ``x = x_sorted[inverse_permutation(perm)]``, i.e. ``x[perm] =
x_sorted``.

References
----------
.. [1] H. Wang, Z. Hao, J. Wang, Z. Geng, Z. Wang, B. Li, F. Wu, "Accelerating data generation for
   neural operators via Krylov subspace recycling", ICLR 2024, arXiv:2401.09516.
.. [2] J. Skilling, "Programming the Hilbert curve", AIP Conf. Proc. 707, 381 (2004).
"""

from __future__ import annotations

from typing import Literal

import torch

__all__ = [
    "order_samples",
    "inverse_permutation",
    "split_chains",
    "path_length",
]

Method = Literal["greedy", "pca", "hilbert", "none"]

# Largest distance matrix (in float32 entries) the greedy chain precomputes; beyond it the distances
# from the current sample are recomputed at every step (slower, O(N d) memory only).
_MAX_DIST_ENTRIES = 12_000 * 12_000


def _as_features(features) -> torch.Tensor:
    X = torch.as_tensor(features)
    if X.dim() == 0:
        raise ValueError("features must have shape (N, ...), got a scalar")
    if X.shape[0] == 0:
        raise ValueError("features must hold at least one sample, got N = 0")
    X = X.reshape(X.shape[0], -1)
    if X.is_complex():
        X = torch.view_as_real(X).reshape(X.shape[0], -1)
    X = X.to(torch.float64) if not X.is_floating_point() or X.dtype != torch.float32 else X
    if not torch.isfinite(X).all():
        raise ValueError("features contain NaN or Inf")
    return X


def order_samples(
    features,
    method: Method = "greedy",
    start: int = 0,
    *,
    block_size: int = 1024,
) -> torch.Tensor:
    """Return a permutation listing the samples so that consecutive samples are similar.

    Parameters
    ----------
    features : torch.Tensor or array_like, shape (N, ...)
        One feature array per sample (e.g. the coefficient field that defines each system); trailing
        dimensions are flattened, so distances are Euclidean/Frobenius.
    method : {"greedy", "pca", "hilbert", "none"}
        ``"greedy"``: SKR's Algorithm 1, a nearest-neighbour chain from ``start`` that always moves to
        the closest unvisited sample (O(N^2 d) time; the N x N distance matrix is built in row blocks
        and stored in float32 up to N ~ 12,000, beyond that distances are recomputed per step).
        ``"pca"``: sort along the leading principal component (O(N d)). ``"hilbert"``: Hilbert-curve
        order of the first two (three, when ``N >= 4096`` and ``d >= 3``) principal-component
        coordinates, each quantized on a uniform grid. ``"none"``: the identity.
    start : int
        First sample of the greedy chain. For ``"pca"`` and ``"hilbert"`` it only fixes the
        direction: the order is reversed if ``start`` would otherwise lie in its second half.
    block_size : int
        Rows of the distance matrix computed at a time (bounds the temporary memory).

    Returns
    -------
    torch.LongTensor, shape (N,)
        ``perm``: sample ``perm[j]`` is solved ``j``-th. ``x_sorted = x[perm]``; restore with
        ``x_sorted[inverse_permutation(perm)]``.

    Examples
    --------
    >>> import torch
    >>> feats = torch.tensor([[0.0], [10.0], [1.0], [11.0], [2.0]])
    >>> order_samples(feats, "greedy").tolist()
    [0, 2, 4, 1, 3]
    >>> order_samples(feats, "pca").tolist()
    [0, 2, 4, 1, 3]

    References
    ----------
    .. [1] Wang et al., "Accelerating data generation for neural operators via Krylov subspace
       recycling", ICLR 2024 (Algorithm 1; App. E.2.2).
    """
    X = _as_features(features)
    N = X.shape[0]
    if not 0 <= int(start) < N:
        raise ValueError(f"start must be in [0, {N}), got {start}")
    if block_size < 1:
        raise ValueError(f"block_size must be positive, got {block_size}")
    if method == "none":
        return torch.arange(N, device=X.device)
    if method == "greedy":
        return _greedy_chain(X, int(start), block_size)
    if method in ("pca", "hilbert"):
        if method == "pca":
            key = _principal_coordinates(X, 1)[:, 0]
            perm = torch.sort(key, stable=True).indices
        else:
            n_dims = 3 if (N >= 4096 and X.shape[1] >= 3) else 2
            coords = _principal_coordinates(X, min(n_dims, X.shape[1]))
            n_bits = 16 if coords.shape[1] <= 2 else 10
            perm = torch.sort(_hilbert_index(_quantize(coords, n_bits), n_bits), stable=True).indices
        pos = int((perm == int(start)).nonzero()[0, 0])
        if pos > (N - 1) / 2:
            perm = perm.flip(0)
        return perm
    raise ValueError(f"unknown ordering method {method!r}; use 'greedy', 'pca', 'hilbert' or 'none'")


def _greedy_chain(X: torch.Tensor, start: int, block_size: int) -> torch.Tensor:
    N = X.shape[0]
    X = X.to(torch.float64)
    X = X - X.mean(0)  # centering reduces cancellation in |x|^2 + |y|^2 - 2 x.y
    sq = (X * X).sum(1)
    visited = torch.zeros(N, dtype=torch.bool, device=X.device)
    penalty = torch.zeros(N, dtype=torch.float64, device=X.device)
    perm = torch.empty(N, dtype=torch.long)
    D = None
    if N * N <= _MAX_DIST_ENTRIES:
        D = torch.empty(N, N, dtype=torch.float32, device=X.device)
        for i0 in range(0, N, block_size):
            blk = X[i0 : i0 + block_size]
            d2 = sq[i0 : i0 + block_size, None] + sq[None, :] - 2.0 * (blk @ X.T)
            D[i0 : i0 + block_size] = d2.clamp_min_(0.0).to(torch.float32)
    cur = start
    for j in range(N):
        perm[j] = cur
        visited[cur] = True
        penalty[cur] = float("inf")
        if j == N - 1:
            break
        if D is not None:
            row = D[cur].to(torch.float64)
        else:
            row = torch.empty(N, dtype=torch.float64, device=X.device)
            for i0 in range(0, N, block_size):
                diff = X[i0 : i0 + block_size] - X[cur]
                row[i0 : i0 + block_size] = (diff * diff).sum(1)
        cur = int(torch.argmin(row + penalty))
    return perm.to(X.device)


def _principal_coordinates(X: torch.Tensor, n_comp: int, n_iter: int = 30) -> torch.Tensor:
    """Coordinates of the centred samples on the leading principal directions (deterministic)."""
    X = X.to(torch.float64)
    X = X - X.mean(0)
    N, d = X.shape
    q = min(n_comp + 4, d, N) if N > 1 else 1
    if d <= 64 or N <= 64:  # small: exact SVD
        if N == 1:
            return torch.zeros(1, n_comp, dtype=X.dtype, device=X.device)
        _, _, Vh = torch.linalg.svd(X, full_matrices=False)
        V = Vh[:n_comp].T
    else:  # subspace iteration: O(N d q) per sweep
        gen = torch.Generator(device="cpu").manual_seed(0)
        V = torch.randn(d, q, generator=gen, dtype=torch.float64).to(X.device)
        for _ in range(n_iter):
            V, _ = torch.linalg.qr(X.T @ (X @ V))
        # Rayleigh-Ritz inside the subspace to sort directions by variance
        Y = X @ V
        _, evecs = torch.linalg.eigh(Y.T @ Y)
        V = V @ evecs.flip(1)[:, :n_comp]
    coords = X @ V
    # deterministic sign: the largest-magnitude coordinate of each direction is positive
    idx = coords.abs().argmax(0)
    sign = torch.sign(coords[idx, torch.arange(coords.shape[1])])
    sign[sign == 0] = 1
    out = coords * sign
    if out.shape[1] < n_comp:
        out = torch.cat([out, out.new_zeros(N, n_comp - out.shape[1])], 1)
    return out


def _quantize(coords: torch.Tensor, n_bits: int) -> torch.Tensor:
    """Map each coordinate column to integers in ``[0, 2**n_bits)`` on a uniform grid."""
    lo = coords.min(0).values
    span = coords.max(0).values - lo
    span[span == 0] = 1.0
    levels = (1 << n_bits) - 1
    return torch.round((coords - lo) / span * levels).to(torch.int64).clamp_(0, levels)


def _hilbert_index(coords: torch.LongTensor, n_bits: int) -> torch.LongTensor:
    """Hilbert-curve index of integer points ``coords`` (N, n_dims) in ``[0, 2**n_bits)^n_dims``.

    Skilling's (2004) transpose algorithm, vectorized over points; ``n_dims * n_bits <= 62``.
    """
    n_dims = coords.shape[1]
    if n_dims * n_bits > 62:
        raise ValueError("n_dims * n_bits must be at most 62 for an int64 Hilbert index")
    X = [coords[:, i].clone() for i in range(n_dims)]
    M = 1 << (n_bits - 1)
    Q = M
    while Q > 1:  # inverse undo
        P = Q - 1
        for i in range(n_dims):
            hi = (X[i] & Q) != 0
            t = (X[0] ^ X[i]) & P
            if i == 0:
                X[0] = torch.where(hi, X[0] ^ P, X[0])
            else:
                X0_new = torch.where(hi, X[0] ^ P, X[0] ^ t)
                X[i] = torch.where(hi, X[i], X[i] ^ t)
                X[0] = X0_new
        Q >>= 1
    for i in range(1, n_dims):  # Gray encode
        X[i] = X[i] ^ X[i - 1]
    t = torch.zeros_like(X[0])
    Q = M
    while Q > 1:
        t = torch.where((X[n_dims - 1] & Q) != 0, t ^ (Q - 1), t)
        Q >>= 1
    X = [xi ^ t for xi in X]
    h = torch.zeros_like(X[0])
    for bit in range(n_bits - 1, -1, -1):  # interleave the transposed bits
        for i in range(n_dims):
            h = (h << 1) | ((X[i] >> bit) & 1)
    return h


def inverse_permutation(perm) -> torch.Tensor:
    """Return ``inv`` with ``inv[perm[j]] = j``, so that ``x_sorted[inv]`` restores ``x``.

    Examples
    --------
    >>> import torch
    >>> perm = torch.tensor([2, 0, 1])
    >>> inverse_permutation(perm).tolist()
    [1, 2, 0]
    >>> x = torch.tensor([10, 20, 30])
    >>> x[perm][inverse_permutation(perm)].tolist()
    [10, 20, 30]
    """
    perm = torch.as_tensor(perm, dtype=torch.long)
    if perm.dim() != 1:
        raise ValueError(f"perm must be one-dimensional, got shape {tuple(perm.shape)}")
    N = perm.numel()
    inv = torch.full((N,), -1, dtype=torch.long, device=perm.device)
    if N and (perm.min() < 0 or perm.max() >= N):
        raise ValueError("perm is not a permutation of 0..N-1")
    inv[perm] = torch.arange(N, device=perm.device)
    if N and (inv < 0).any():
        raise ValueError("perm is not a permutation of 0..N-1 (repeated entries)")
    return inv


def split_chains(perm, n_chains: int) -> list[torch.Tensor]:
    """Cut an ordered list into ``n_chains`` contiguous chunks (SKR App. E.2.2).

    Each chunk is one recycling chain; chunk lengths differ by at most one (the first chunks are the
    longer ones). The chunks concatenate back to ``perm``.

    Examples
    --------
    >>> import torch
    >>> [c.tolist() for c in split_chains(torch.arange(7), 3)]
    [[0, 1, 2], [3, 4], [5, 6]]

    References
    ----------
    .. [1] Wang et al., ICLR 2024, App. E.2.2 (parallel chains of sorted systems).
    """
    perm = torch.as_tensor(perm, dtype=torch.long)
    if perm.dim() != 1:
        raise ValueError(f"perm must be one-dimensional, got shape {tuple(perm.shape)}")
    if not 1 <= int(n_chains) <= max(perm.numel(), 1):
        raise ValueError(f"n_chains must be in [1, {perm.numel()}], got {n_chains}")
    return list(torch.tensor_split(perm, int(n_chains)))


def path_length(features, perm) -> float:
    """Total Euclidean distance ``sum_j ||f[perm[j+1]] - f[perm[j]]||`` along an ordering.

    Examples
    --------
    >>> import torch
    >>> path_length(torch.tensor([[0.0], [3.0], [1.0]]), torch.tensor([0, 2, 1]))
    3.0
    """
    X = _as_features(features).to(torch.float64)
    perm = torch.as_tensor(perm, dtype=torch.long, device=X.device)
    if perm.numel() < 2:
        return 0.0
    return float((X[perm[1:]] - X[perm[:-1]]).norm(dim=1).sum())
