"""Parameterisations: the map from the optimisation variable ``m`` to a PDE coefficient.

* :class:`LogCoefficient`: ``a = exp(m)`` on every node, so ``a > 0`` without constraints; optional
  bounds ``lower <= a <= upper`` become the box ``log lower <= m <= log upper``, which the drivers
  enforce (trust region: Coleman-Li affine scaling; L-BFGS-B natively; Gauss-Newton: projection).
* :class:`Identity`: ``a = m`` (sources), with optional bounds on ``m``.
* :class:`ModalLogCoefficient`: ``a = exp(m0 + sum_k theta_k phi_k)`` for a few given modes
  ``phi_k`` (low-dimensional problems, e.g. to compare with a PINN's scalar unknowns).

References
----------
.. [1] T. F. Coleman and Y. Li, "An interior trust region approach for nonlinear minimization
   subject to bounds", SIAM J. Optim. 6 (1996) 418-445.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["Parameterisation", "LogCoefficient", "Identity", "ModalLogCoefficient"]


def _check_bounds(lower: float | None, upper: float | None, positive: bool) -> None:
    lo = -math.inf if lower is None else float(lower)
    hi = math.inf if upper is None else float(upper)
    if positive and (lo <= 0 and lower is not None):
        raise ValueError(f"coefficient bounds must be positive, got lower={lower}")
    if not lo < hi:
        raise ValueError(f"need lower < upper, got lower={lower}, upper={upper}")


class Parameterisation:
    """Base class; subclasses define :meth:`coefficient` (in torch) and ``bounds``."""

    param_shape: tuple[int, ...] | None = None  # None: the grid's shape

    def coefficient(self, m: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def bounds(self) -> tuple[float, float]:
        """Box bounds on ``m`` (``-inf``/``inf`` when absent)."""
        return (-math.inf, math.inf)

    @property
    def has_bounds(self) -> bool:
        lo, hi = self.bounds
        return math.isfinite(lo) or math.isfinite(hi)


@dataclass(frozen=True)
class LogCoefficient(Parameterisation):
    """``a = exp(m)``, with optional coefficient bounds ``lower <= a <= upper``.

    Examples
    --------
    >>> import torch
    >>> p = LogCoefficient(lower=0.1, upper=10.0)
    >>> [round(b, 4) for b in p.bounds]
    [-2.3026, 2.3026]
    >>> float(p.coefficient(torch.zeros(())))
    1.0
    """

    lower: float | None = None
    upper: float | None = None

    def __post_init__(self):
        _check_bounds(self.lower, self.upper, positive=True)

    def coefficient(self, m: torch.Tensor) -> torch.Tensor:
        return torch.exp(m)

    def parameter(self, a: torch.Tensor) -> torch.Tensor:
        """Inverse map ``m = log a``."""
        return torch.log(a)

    @property
    def bounds(self) -> tuple[float, float]:
        lo = -math.inf if self.lower is None else math.log(self.lower)
        hi = math.inf if self.upper is None else math.log(self.upper)
        return (lo, hi)


@dataclass(frozen=True)
class Identity(Parameterisation):
    """``a = m`` (a source field), with optional bounds on ``m``.

    Examples
    --------
    >>> Identity(lower=0.0).bounds
    (0.0, inf)
    """

    lower: float | None = None
    upper: float | None = None

    def __post_init__(self):
        _check_bounds(self.lower, self.upper, positive=False)

    def coefficient(self, m: torch.Tensor) -> torch.Tensor:
        return m

    @property
    def bounds(self) -> tuple[float, float]:
        lo = -math.inf if self.lower is None else float(self.lower)
        hi = math.inf if self.upper is None else float(self.upper)
        return (lo, hi)


class ModalLogCoefficient(Parameterisation):
    """``a = exp(m0 + sum_k theta_k phi_k)`` with modes ``phi`` of shape ``(K, *grid.shape)``.

    Examples
    --------
    >>> import torch
    >>> phi = torch.ones(2, 3, 3, dtype=torch.float64)
    >>> p = ModalLogCoefficient(phi)
    >>> p.param_shape, round(float(p.coefficient(torch.tensor([0.5, 0.5]))[0, 0]), 6)
    ((2,), 2.718282)
    """

    def __init__(self, modes: torch.Tensor, mean: torch.Tensor | float = 0.0):
        modes = torch.as_tensor(modes, dtype=torch.float64)
        if modes.dim() < 2:
            raise ValueError(f"modes must have shape (K, *grid.shape), got {tuple(modes.shape)}")
        self.modes = modes
        self.mean = torch.as_tensor(mean, dtype=torch.float64)
        self.param_shape = (int(modes.shape[0]),)

    def coefficient(self, m: torch.Tensor) -> torch.Tensor:
        if tuple(m.shape) != self.param_shape:
            raise ValueError(
                f"expected {self.param_shape[0]} modal weights, got shape {tuple(m.shape)}"
            )
        field = self.mean.to(m) + torch.tensordot(m, self.modes.to(m), dims=1)
        return torch.exp(field)
