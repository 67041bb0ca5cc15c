"""Result object and typed errors shared by every iterative solver in :mod:`pdekit.core`."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["SolveResult", "SolverError", "NotConvergedError", "BreakdownError"]


@dataclass
class SolveResult:
    """Everything a Krylov solve knows about itself.

    Solvers return ``(x, info)`` as scipy does; :func:`pdekit.core.krylov.solve` returns this object
    for callers who want more. Batched solves report one entry per system.

    Attributes
    ----------
    x : torch.Tensor
        Solution, same shape as the right-hand side (``(n,)`` or ``(B, n)``).
    iterations : torch.Tensor
        Integer tensor of shape ``(B,)``: iterations each system took (or ran, if not converged).
    converged : torch.Tensor
        Bool tensor of shape ``(B,)``.
    rel_residual : torch.Tensor
        True relative residual ``||b - A x|| / ||b||`` per system, recomputed at exit.
    residual_history : list of torch.Tensor
        Residual norms (as tracked by the method) per iteration, each of shape ``(B,)``.
    matvecs : int
        Number of batched operator applications (one application acts on all B systems).
    method : str
        Name of the method.
    recycle : object, optional
        The recycle space handed back by recycling solvers (:mod:`pdekit.core.recycling`).
    """

    x: torch.Tensor
    iterations: torch.Tensor
    converged: torch.Tensor
    rel_residual: torch.Tensor
    residual_history: list[torch.Tensor] = field(default_factory=list)
    matvecs: int = 0
    method: str = ""
    recycle: object | None = None

    @property
    def all_converged(self) -> bool:
        return bool(self.converged.all())

    @property
    def info(self) -> int:
        """scipy's convention: 0 when every system converged, else the iteration count reached."""
        if self.all_converged:
            return 0
        return max(int(self.iterations.max()), 1)

    def history(self) -> torch.Tensor:
        """Residual history as a ``(n_iter, B)`` tensor (empty when nothing was recorded)."""
        if not self.residual_history:
            return torch.empty(0, self.iterations.numel())
        return torch.stack(self.residual_history)


class SolverError(RuntimeError):
    """Base class of solver failures; carries the :class:`SolveResult` when one exists."""

    def __init__(self, message: str, result: SolveResult | None = None):
        super().__init__(message)
        self.result = result


class NotConvergedError(SolverError):
    """Raised by ``strict=True`` solves that did not reach the tolerance."""


class BreakdownError(SolverError):
    """The method broke down (e.g. CG met ``p^T A p <= 0``: the matrix is not SPD)."""
