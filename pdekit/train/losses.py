"""Relative L2 and H1 losses for operator learning, per sample over channels and space.

Both losses treat one sample ``(C, *spatial)`` as one vector: the norms run over all channels and
grid points together, then the per-sample ratios are averaged (or summed) over the batch. The
discrete norms are plain sums over grid nodes; the quadrature weight ``h^d`` is the same in the
numerator and the denominator, so it cancels in the relative error.

The H1 loss uses **finite differences** (not FFT) because pdekit grids are mostly non-periodic
(Darcy: Dirichlet nodes including the boundary): ``torch.gradient`` with second-order central
differences inside and first-order one-sided differences on the two end nodes of every dimension.

References
----------
.. [1] Z. Li, N. Kovachki, K. Azizzadenesheli, B. Liu, K. Bhattacharya, A. Stuart,
   A. Anandkumar, "Fourier Neural Operator for Parametric Partial Differential Equations",
   ICLR 2021 (relative L2 test error; arXiv:2010.08895).
"""

from __future__ import annotations

import math
from typing import Literal

import torch

__all__ = ["relative_l2", "relative_h1", "relative_residual", "RelativeL2Loss", "RelativeH1Loss",
           "get_loss"]

Reduction = Literal["mean", "sum", "none"]


def _reduce(values: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check(pred: torch.Tensor, target: torch.Tensor, n_spatial: int) -> None:
    if pred.shape != target.shape:
        raise ValueError(
            f"prediction shape {tuple(pred.shape)} does not match target shape {tuple(target.shape)}"
        )
    if pred.dim() < n_spatial + 2:
        raise ValueError(
            f"expected (batch, channels, *spatial) with {n_spatial} spatial dims, "
            f"got shape {tuple(pred.shape)}"
        )


def relative_l2(
    pred: torch.Tensor, target: torch.Tensor, *, reduction: Reduction = "mean", eps: float = 1e-12
) -> torch.Tensor:
    """Relative L2 error ``||pred - target|| / ||target||`` per sample.

    Parameters
    ----------
    pred, target : Tensor
        ``(B, C, *spatial)``.
    reduction : {"mean", "sum", "none"}
        Over the batch; ``"none"`` returns the ``(B,)`` per-sample errors.
    eps : float
        Added to the denominator (an all-zero target).

    Examples
    --------
    >>> y = torch.ones(2, 1, 4, 4)
    >>> round(float(relative_l2(1.1 * y, y)), 4)
    0.1
    """
    if pred.shape != target.shape:
        _check(pred, target, 0)
    diff = (pred - target).flatten(1)
    num = torch.linalg.vector_norm(diff, dim=1)
    den = torch.linalg.vector_norm(target.flatten(1), dim=1)
    return _reduce(num / (den + eps), reduction)


def relative_residual(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Residual vector ``(pred_i - y_i) / (||y_i|| sqrt(B))`` of a batch, flattened.

    Second-order optimizers (:mod:`pdekit.optim`) step on a residual vector ``r``; this one has
    ``1/2 ||r||^2 = 1/2 mean_i (||pred_i - y_i|| / ||y_i||)^2``, half the mean squared relative L2
    error, whose minimisers are those of the relative L2 loss.

    Examples
    --------
    >>> y = torch.ones(2, 1, 4, 4)
    >>> r = relative_residual(1.1 * y, y)
    >>> round(float(0.5 * r.square().sum()), 6)  # 1/2 mean(rel_l2^2) = 1/2 * 0.1^2
    0.005
    """
    B = pred.shape[0]
    scale = target.flatten(1).norm(dim=1).clamp(min=eps) * math.sqrt(B)
    return ((pred - target).flatten(1) / scale[:, None]).flatten()


def _sq_grad_norm(u: torch.Tensor, n_spatial: int, spacing: tuple[float, ...]) -> torch.Tensor:
    """Per-sample ``sum |grad u|^2`` by finite differences over the last ``n_spatial`` dims."""
    dims = tuple(range(u.dim() - n_spatial, u.dim()))
    grads = torch.gradient(u, spacing=list(spacing), dim=dims, edge_order=1)
    return sum(g.flatten(1).pow(2).sum(1) for g in grads)


def relative_h1(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    n_spatial: int | None = None,
    length: float | tuple[float, ...] = 1.0,
    reduction: Reduction = "mean",
    eps: float = 1e-12,
) -> torch.Tensor:
    """Relative H1 error per sample, gradients by finite differences.

    .. math:: \\frac{\\sqrt{\\|e\\|^2 + \\|\\nabla e\\|^2}}{\\sqrt{\\|v\\|^2 + \\|\\nabla v\\|^2}},
       \\quad e = u - v,

    with ``u = pred``, ``v = target``, sums over all channels and nodes, and the gradient from
    ``torch.gradient`` (central inside, one-sided on the end nodes) on a node grid that includes
    both ends: spacing ``length / (n - 1)`` along a dimension of ``n`` nodes.

    Parameters
    ----------
    pred, target : Tensor
        ``(B, C, *spatial)``.
    n_spatial : int, optional
        Number of spatial dimensions (default: ``pred.dim() - 2``).
    length : float or tuple of float
        Domain length per spatial dimension.
    reduction : {"mean", "sum", "none"}
    eps : float

    Examples
    --------
    >>> x = torch.linspace(0, 1, 9)
    >>> v = torch.sin(torch.pi * x)[None, None]
    >>> float(relative_h1(v, v))
    0.0
    """
    n_spatial = pred.dim() - 2 if n_spatial is None else int(n_spatial)
    _check(pred, target, n_spatial)
    lengths = length if isinstance(length, tuple) else (float(length),) * n_spatial
    shape = pred.shape[pred.dim() - n_spatial :]
    if any(n < 2 for n in shape):
        raise ValueError(f"the H1 loss needs at least 2 nodes per spatial dim, got {tuple(shape)}")
    spacing = tuple(L / (n - 1) for L, n in zip(lengths, shape))
    e = pred - target
    num = e.flatten(1).pow(2).sum(1) + _sq_grad_norm(e, n_spatial, spacing)
    den = target.flatten(1).pow(2).sum(1) + _sq_grad_norm(target, n_spatial, spacing)
    return _reduce(num.sqrt() / (den.sqrt() + eps), reduction)


class RelativeL2Loss(torch.nn.Module):
    """Module form of :func:`relative_l2` (the FNO paper's training and test metric [1]_).

    References
    ----------
    .. [1] Z. Li et al., "Fourier Neural Operator for Parametric Partial Differential Equations",
       ICLR 2021.

    Examples
    --------
    >>> loss = RelativeL2Loss()
    >>> float(loss(torch.zeros(1, 1, 3), torch.ones(1, 1, 3)))
    1.0
    """

    name = "l2"

    def __init__(self, reduction: Reduction = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return relative_l2(pred, target, reduction=self.reduction)


class RelativeH1Loss(torch.nn.Module):
    """Module form of :func:`relative_h1` (finite-difference gradients, non-periodic).

    Examples
    --------
    >>> loss = RelativeH1Loss()
    >>> float(loss(torch.zeros(1, 1, 5, 5), torch.ones(1, 1, 5, 5)))
    1.0
    """

    name = "h1"

    def __init__(self, reduction: Reduction = "mean", length: float | tuple[float, ...] = 1.0):
        super().__init__()
        self.reduction = reduction
        self.length = length

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return relative_h1(pred, target, length=self.length, reduction=self.reduction)


def get_loss(name: Literal["l2", "h1"], reduction: Reduction = "mean") -> torch.nn.Module:
    """The loss called ``name`` (``"l2"`` or ``"h1"``)."""
    table = {"l2": RelativeL2Loss, "h1": RelativeH1Loss}
    if name not in table:
        raise ValueError(f"unknown loss {name!r}; choose from {', '.join(table)}")
    return table[name](reduction=reduction)
