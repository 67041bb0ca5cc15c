"""The result every inversion driver returns, and the history bookkeeping they share."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

__all__ = ["InversionResult", "History"]


@dataclass
class InversionResult:
    """What :func:`pdekit.inverse.estimate` returns.

    Attributes
    ----------
    m : torch.Tensor
        The estimated parameter (e.g. the log-coefficient).
    coefficient : torch.Tensor
        The PDE coefficient it maps to (``exp(m)`` for a log-coefficient).
    history : list of dict
        One entry per accepted iterate: ``iteration, objective, misfit, regulariser, grad_norm,
        pde_solves, seconds`` (+ driver-specific keys such as ``cg_iterations``, ``step``).
    diagnostics : dict
        ``method, converged, message, iterations, pde_solves`` (by kind and ``total``), ``seconds``
        and driver-specific entries.
    """

    m: torch.Tensor
    coefficient: torch.Tensor
    history: list[dict] = field(default_factory=list)
    diagnostics: dict = field(default_factory=dict)

    def solves_to_reach(self, objective: float, key: str = "objective") -> int | None:
        """PDE solves spent when ``history[key]`` first dropped to ``objective`` (None: never)."""
        for h in self.history:
            if h[key] <= objective:
                return int(h["pde_solves"])
        return None


class History:
    """Collects per-iteration records with elapsed seconds and cumulative solve counts."""

    def __init__(self, counter):
        self.counter = counter
        self.t0 = time.perf_counter()
        self.records: list[dict] = []

    def add(self, iteration: int, ev, grad_norm: float, **extra) -> dict:
        rec = {
            "iteration": iteration,
            "objective": ev.value,
            "misfit": ev.misfit,
            "regulariser": ev.regulariser,
            "grad_norm": float(grad_norm),
            "pde_solves": self.counter.total,
            "seconds": time.perf_counter() - self.t0,
            **extra,
        }
        self.records.append(rec)
        return rec

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0

    def result(
        self, objective, m: torch.Tensor, method: str, converged: bool, message: str, **diag
    ):
        model = objective.model
        with torch.no_grad():
            coef = model.parameterisation.coefficient(m)
        return InversionResult(
            m=m.detach(),
            coefficient=coef.detach(),
            history=self.records,
            diagnostics={
                "method": method,
                "converged": bool(converged),
                "message": message,
                "iterations": len(self.records) - 1,
                "pde_solves": objective.counter.as_dict(),
                "seconds": self.seconds,
                **diag,
            },
        )
