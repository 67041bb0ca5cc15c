"""The result every inversion driver returns, and the prologue and bookkeeping they share.

:class:`DriverRun` is what :func:`~pdekit.inverse.gauss_newton_cg`,
:func:`~pdekit.inverse.trust_region` and :func:`~pdekit.inverse.lbfgs` start from: the box bounds
of the model's parameterisation, the prior preconditioner, the :class:`History` and the callback.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

__all__ = ["InversionResult", "History", "DriverRun"]


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


class DriverRun:
    """The prologue every inversion driver shares: bounds, prior preconditioner, history, callback.

    Parameters
    ----------
    objective : Objective
    callback : callable, optional
        Called with each history record.

    Attributes
    ----------
    lower, upper : float
        Box bounds on ``m`` from ``objective.model.parameterisation.bounds`` (``-inf``/``inf``).
    bounded : bool
    history : History

    Examples
    --------
    >>> import torch
    >>> from pdekit.core.grid import Grid
    >>> from pdekit.inverse import DarcyModel, InverseProblem, LogCoefficient, Observations
    >>> from pdekit.inverse import SubsampledObservation, Tikhonov
    >>> g = Grid((5, 5))
    >>> model = DarcyModel(g, parameterisation=LogCoefficient(lower=1.0))
    >>> obs = Observations.synthetic(SubsampledObservation(g, 2), model.solve(
    ...     torch.ones(5, 5, dtype=torch.float64)), 0.01, torch.Generator().manual_seed(0))
    >>> run = DriverRun(InverseProblem(model, Tikhonov(g, 1e-3)).objective(obs))
    >>> run.bounded, float(run.project(-torch.ones(1, dtype=torch.float64)))
    (True, 0.0)
    """

    def __init__(self, objective, callback: Callable[[dict], None] | None = None):
        self.objective = objective
        self.lower, self.upper = (float(b) for b in objective.model.parameterisation.bounds)
        self.bounded = math.isfinite(self.lower) or math.isfinite(self.upper)
        self.history = History(objective.counter)
        self.callback = callback

    def project(self, m: torch.Tensor) -> torch.Tensor:
        """``m`` clamped to the box (unchanged without bounds)."""
        if not self.bounded:
            return m
        lo = self.lower if math.isfinite(self.lower) else None
        hi = self.upper if math.isfinite(self.upper) else None
        return m.clamp(min=lo, max=hi)

    def interior(self, m: torch.Tensor, frac: float = 1e-6) -> torch.Tensor:
        """``m`` clamped to the box shrunk by ``frac`` of its width (1 if unbounded on a side)."""
        width = self.upper - self.lower if math.isfinite(self.upper - self.lower) else 1.0
        lo = self.lower + frac * width if math.isfinite(self.lower) else None
        hi = self.upper - frac * width if math.isfinite(self.upper) else None
        return m if lo is None and hi is None else m.clamp(min=lo, max=hi)

    def start(self, m0: torch.Tensor) -> torch.Tensor:
        """The float64 starting point, projected onto the box."""
        return self.project(m0.detach().to(torch.float64).clone())

    def preconditioner(self, m0: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """The prior's ``R^-1`` action, or ``None`` when the prior has none."""
        prior = self.objective.prior
        return prior.precondition if prior.precondition(torch.zeros_like(m0)) is not None else None

    def record(self, iteration: int, ev, grad_norm: float, **extra) -> dict:
        """Add a history record and pass it to the callback."""
        rec = self.history.add(iteration, ev, grad_norm, **extra)
        if self.callback:
            self.callback(rec)
        return rec

    def result(
        self, m: torch.Tensor, method: str, converged: bool, message: str, **diag
    ) -> InversionResult:
        return self.history.result(self.objective, m, method, converged, message, **diag)
