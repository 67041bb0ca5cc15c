"""Step-length selection and Levenberg-Marquardt damping shared by the Gauss-Newton optimizers.

References
----------
.. [1] J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006 (Armijo
   backtracking, sec. 3.1; Levenberg-Marquardt damping by the gain ratio, sec. 10.3).
.. [2] J. Müller, M. Zeinhofer, "Achieving high accuracy with PINNs via energy natural gradient
   descent", ICML 2023 (the grid line search over 2^-k, k = 0..30).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from pdekit.optim._functional import ParamVector, evaluate_loss

__all__ = ["LineSearch", "line_search", "adapt_damping", "StepInfo"]

LineSearch = Literal["armijo", "grid", "none"]


@dataclass
class StepInfo:
    """What one optimizer step did (``optimizer.last_step``).

    Attributes
    ----------
    loss : float
        ``1/2 ||r||^2`` at the start of the step.
    new_loss : float
        The loss after the step (equal to ``loss`` when the step was rejected).
    accepted : bool
        Whether the parameters moved.
    alpha : float
        Step length taken (0 when rejected); the trust-region optimizers report 1.
    damping : float
        Damping (LM lambda) used for the step; the trust-region optimizers report the radius.
    rho : float
        Gain ratio: actual over predicted reduction (nan when no trial point was evaluated).
    inner_iterations : int
        CG / Steihaug iterations (0 for a direct solve).
    evaluations : int
        Closure evaluations in the step (the linearisation included).
    """

    loss: float
    new_loss: float
    accepted: bool
    alpha: float
    damping: float
    rho: float
    inner_iterations: int = 0
    evaluations: int = 1


def line_search(
    closure: Callable[[], torch.Tensor],
    pv: ParamVector,
    theta: torch.Tensor,
    direction: torch.Tensor,
    f0: float,
    slope: float,
    *,
    kind: LineSearch,
    alpha0: float,
    c: float = 0.1,
    shrink: float = 0.8,
    max_tries: int = 15,
    grid_size: int = 31,
) -> tuple[float, float | None, int]:
    """Choose ``alpha`` along ``direction`` from ``theta``; leaves the parameters at the result.

    ``armijo``: backtrack ``alpha0, shrink * alpha0, ...`` until
    ``f(theta + alpha d) <= f0 + c * alpha * slope`` (``slope = g^T d < 0``). ``grid``: the best of
    ``alpha0 * 2^-k``, ``k = 0 .. grid_size - 1`` (ENGD). ``none``: ``alpha0``.

    Returns ``(alpha, f_new, evaluations)``. ``f_new`` is ``None`` and the parameters are restored
    to ``theta`` when no trial point lowers the loss below ``f0`` (a rejected step).
    """

    def trial(alpha: float) -> float:
        pv.set_(theta + alpha * direction)
        f = evaluate_loss(closure)
        return f if f == f else float("inf")  # NaN counts as an increase

    evals = 0
    best_alpha, best_f = 0.0, None
    if kind == "armijo":
        alpha = alpha0
        for _ in range(max_tries):
            f = trial(alpha)
            evals += 1
            if f <= f0 + c * alpha * slope and f < f0:
                best_alpha, best_f = alpha, f
                break
            alpha *= shrink
    elif kind == "grid":
        for k in range(grid_size):
            alpha = alpha0 * 2.0**-k
            f = trial(alpha)
            evals += 1
            if f < f0 and (best_f is None or f < best_f):
                best_alpha, best_f = alpha, f
    elif kind == "none":
        f = trial(alpha0)
        evals += 1
        if f < f0:
            best_alpha, best_f = alpha0, f
    else:
        raise ValueError(f"line_search must be 'armijo', 'grid' or 'none', got {kind!r}")
    pv.set_(theta + best_alpha * direction if best_f is not None else theta)
    return best_alpha, best_f, evals


def adapt_damping(
    damping: float,
    rho: float,
    *,
    increase: float,
    decrease: float,
    bounds: tuple[float, float],
) -> float:
    """Levenberg-Marquardt rule: ``* increase`` if ``rho < 1/4``, ``* decrease`` if ``rho > 3/4``."""
    if not rho == rho or rho < 0.25:  # also NaN
        damping = max(damping, bounds[0]) * increase
    elif rho > 0.75:
        damping *= decrease
    return float(min(max(damping, bounds[0]), bounds[1]))
