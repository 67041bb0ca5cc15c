"""Train a neural operator with a residual-closure optimizer on mini-batches.

:class:`pdekit.train.Trainer` calls ``loss.backward(); optimizer.step()``, which a Gauss-Newton
optimizer cannot use: it needs a closure that returns the residual *vector*. Until the Trainer
grows that path, :func:`fit_operator` is the loop for these optimizers: it draws mini-batches from
any dataset of ``(x, y)`` pairs (e.g. :class:`~pdekit.data.PDEDataset`), forms the residual
:func:`relative_residual` in physical units (through a
:class:`~pdekit.train.processor.DataProcessor`), and steps the optimizer.

The relative-L2 residual is chosen so that ``1/2 ||r||^2 = 1/2 mean_i (||pred_i - y_i|| / ||y_i||)^2``:
the square of the Trainer's relative L2 loss, whose minimisers are the same.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["relative_residual", "fit_operator"]


def relative_residual(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Residual vector ``(pred_i - y_i) / (||y_i|| sqrt(B))`` of a batch, flattened.

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


def fit_operator(
    model: torch.nn.Module,
    dataset: Dataset,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int = 1,
    batch_size: int = 8,
    processor=None,
    device: torch.device | str = "cpu",
    max_seconds: float | None = None,
    seed: int = 0,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Fit ``model`` with a residual-closure optimizer; returns the loss of every step.

    Parameters
    ----------
    model : torch.nn.Module
        ``(B, C_in, *spatial) -> (B, C_out, *spatial)``.
    dataset : Dataset
        Items ``(x, y)``.
    optimizer : torch.optim.Optimizer
        A :mod:`pdekit.optim` optimizer built on ``model.parameters()``.
    epochs, batch_size, seed : int
    processor : DataProcessor, optional
        Maps (normalised) targets to physical units before the residual; default: identity.
    device : str or torch.device
    max_seconds : float, optional
        Stop after this much wall time.
    on_step : callable, optional
        ``on_step(step, loss)`` after every step.

    Examples
    --------
    >>> from pdekit.optim import GaussNewtonCG
    >>> x = torch.randn(16, 1, 8, 8); data = torch.utils.data.TensorDataset(x, 2 * x + 1)
    >>> model = torch.nn.Conv2d(1, 1, 1)
    >>> losses = fit_operator(model, data, GaussNewtonCG(model.parameters()), epochs=2)
    >>> len(losses), losses[-1] < 1e-3 * losses[0]
    (4, True)
    """
    device = torch.device(device)
    model.to(device)
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=gen)
    decode = (lambda t: t) if processor is None else processor.to(device).decode_targets
    losses: list[float] = []
    start = time.perf_counter()
    for _ in range(epochs):
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            target = decode(y)

            def closure(x=x, target=target):
                return relative_residual(decode(model(x)), target)

            loss = float(optimizer.step(closure))
            losses.append(loss)
            if on_step is not None:
                on_step(len(losses), loss)
            if max_seconds is not None and time.perf_counter() - start > max_seconds:
                return losses
    return losses
