"""Step-length selection and Levenberg-Marquardt damping shared by every Gauss-Newton driver.

:class:`LineSearch` and :class:`Damping` are the settings; :func:`line_search` is the one line
search of the package (:class:`~pdekit.optim.GaussNewton`, :class:`~pdekit.optim.GaussNewtonCG`
and :func:`pdekit.inverse.gauss_newton_cg` all call it); :meth:`Damping.update` is the
gain-ratio rule.

References
----------
.. [1] J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006 (Armijo
   backtracking, sec. 3.1; Levenberg-Marquardt damping by the gain ratio, sec. 10.3).
.. [2] J. Müller, M. Zeinhofer, "Achieving high accuracy with PINNs via energy natural gradient
   descent", ICML 2023 (the grid line search over 2^-k, k = 0..30).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import torch

from pdekit.errors import PdekitUserError
from pdekit.optim.steihaug import dot

__all__ = [
    "Damping",
    "LineSearch",
    "LineSearchKind",
    "SearchResult",
    "StepInfo",
    "as_damping",
    "as_line_search",
    "line_search",
]

LineSearchKind = Literal["armijo", "grid", "none"]


@dataclass(frozen=True)
class LineSearch:
    """How the step length ``alpha`` along a descent direction is chosen.

    Parameters
    ----------
    kind : {"armijo", "grid", "none"}
        ``"armijo"``: backtrack ``alpha0, shrink alpha0, ...`` until
        ``f(x + alpha d) <= f(x) + c alpha g^T d`` (at most ``max_steps`` trials). ``"grid"``: the
        best of ``alpha0 2^-k``, ``k = 0 .. grid_size - 1`` (ENGD). ``"none"``: ``alpha0``.
    c : float
        Sufficient-decrease constant of the Armijo rule.
    shrink : float
        Backtracking factor, in (0, 1).
    grow : float
        The torch optimizers start a search from ``min(grow alpha_prev, lr)``.
    max_steps : int
        Most Armijo trials.
    grid_size : int
        Trials of the grid search.
    strict : bool
        Also require ``f(x + alpha d) < f(x)`` (a step that does not lower the loss is rejected,
        as the training optimizers promise). ``False`` accepts an equal value when the Armijo
        bound rounds to ``f(x)`` (the inverse driver then stops with "no further decrease").

    Examples
    --------
    >>> LineSearch(c=1e-4, shrink=0.5, max_steps=12)
    LineSearch(kind='armijo', c=0.0001, shrink=0.5, grow=1.5, max_steps=12, grid_size=31, strict=True)
    """

    kind: LineSearchKind = "armijo"
    c: float = 0.1
    shrink: float = 0.8
    grow: float = 1.5
    max_steps: int = 15
    grid_size: int = 31
    strict: bool = True

    def __post_init__(self):
        if self.kind not in ("armijo", "grid", "none"):
            raise PdekitUserError(
                f"line_search must be 'armijo', 'grid' or 'none', got {self.kind!r}"
            )
        if not (0 <= self.c < 1 and 0 < self.shrink < 1 and self.grow >= 1):
            raise PdekitUserError(
                "line_search needs 0 <= c < 1, 0 < shrink < 1 and grow >= 1, got "
                f"c={self.c}, shrink={self.shrink}, grow={self.grow}"
            )
        if self.max_steps < 1 or self.grid_size < 1:
            raise PdekitUserError(
                f"line_search needs max_steps >= 1 and grid_size >= 1, got {self.max_steps}, "
                f"{self.grid_size}"
            )


@dataclass(frozen=True)
class Damping:
    """Levenberg-Marquardt damping ``lambda`` and its gain-ratio adaptation.

    Parameters
    ----------
    initial : float
        Starting ``lambda`` (absolute; compare it with the eigenvalues of ``J J^T``).
    adaptive : bool
        Apply :meth:`update` after every step.
    increase, decrease : float
        ``lambda *= increase`` when ``rho < 1/4`` or the step is rejected, ``*= decrease`` when
        ``rho > 3/4``.
    min, max : float
        Clamp of the adapted ``lambda``.

    Examples
    --------
    >>> rule = Damping(1e-3, increase=2.0, decrease=0.5)
    >>> rule.update(1e-3, rho=0.1), rule.update(1e-3, rho=0.9)
    (0.002, 0.0005)
    """

    initial: float = 1e-3
    adaptive: bool = True
    increase: float = 2.0
    decrease: float = 0.5
    min: float = 1e-12
    max: float = 1e6

    def __post_init__(self):
        if not self.initial >= 0:
            raise PdekitUserError(f"damping must be >= 0, got {self.initial}")
        if not (self.increase >= 1 and 0 < self.decrease <= 1):
            raise PdekitUserError(
                "damping needs increase >= 1 and 0 < decrease <= 1, got "
                f"increase={self.increase}, decrease={self.decrease}"
            )
        if not 0 <= self.min <= self.max:
            raise PdekitUserError(f"damping needs 0 <= min <= max, got {self.min}, {self.max}")

    def update(self, damping: float, rho: float) -> float:
        """The next ``lambda`` after a step with gain ratio ``rho`` (NaN: a rejected step)."""
        if not rho == rho or rho < 0.25:
            damping = max(damping, self.min) * self.increase
        elif rho > 0.75:
            damping *= self.decrease
        return float(min(max(damping, self.min), self.max))


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


@dataclass(frozen=True)
class SearchResult:
    """Outcome of :func:`line_search`: ``x`` and ``value`` are ``None`` when no trial was accepted."""

    alpha: float
    x: torch.Tensor | None
    value: float | None
    evaluations: int

    @property
    def accepted(self) -> bool:
        return self.x is not None


def line_search(
    evaluate: Callable[[torch.Tensor], float],
    x: torch.Tensor,
    direction: torch.Tensor,
    f0: float,
    slope: float,
    *,
    rule: LineSearch,
    alpha0: float,
    project: Callable[[torch.Tensor], torch.Tensor] | None = None,
    gradient: torch.Tensor | None = None,
) -> SearchResult:
    """Choose ``alpha`` along ``direction`` from ``x``.

    Parameters
    ----------
    evaluate : callable
        ``x -> f(x)`` (a float; NaN counts as an increase).
    x, direction : Tensor
    f0, slope : float
        ``f(x)`` and ``g^T d < 0``.
    rule : LineSearch
    alpha0 : float
        The first (largest) trial length.
    project : callable, optional
        Trial points are ``project(x + alpha d)`` (box bounds); the Armijo bound then uses the
        actual change ``g^T (x_alpha - x)``, which needs ``gradient``.
    gradient : Tensor, optional
        ``g``; only with ``project``.

    Returns
    -------
    SearchResult

    Examples
    --------
    >>> f = lambda x: float((x - 3.0).square().sum())
    >>> x = torch.zeros(1, dtype=torch.float64)
    >>> out = line_search(f, x, torch.ones(1, dtype=torch.float64), 9.0, -6.0, rule=LineSearch(),
    ...                   alpha0=10.0)
    >>> round(out.alpha, 4), out.evaluations
    (5.12, 4)
    """
    if project is not None and gradient is None:
        raise PdekitUserError("line_search with project= needs gradient=")

    def point(alpha: float) -> torch.Tensor:
        y = x + alpha * direction
        return project(y) if project is not None else y

    def trial(alpha: float) -> float:
        f = evaluate(point(alpha))
        return f if f == f else float("inf")

    evals, best_alpha, best_f = 0, 0.0, None
    if rule.kind == "armijo":
        alpha = alpha0
        for _ in range(rule.max_steps):
            f = trial(alpha)
            evals += 1
            if project is None:
                bound = f0 + rule.c * alpha * slope
            else:
                bound = f0 + rule.c * float(dot(gradient, point(alpha) - x))
            if f <= bound and (f < f0 or not rule.strict):
                best_alpha, best_f = alpha, f
                break
            alpha *= rule.shrink
    elif rule.kind == "grid":
        for k in range(rule.grid_size):
            alpha = alpha0 * 2.0**-k
            f = trial(alpha)
            evals += 1
            if f < f0 and (best_f is None or f < best_f):
                best_alpha, best_f = alpha, f
    else:
        f = trial(alpha0)
        evals += 1
        if f < f0:
            best_alpha, best_f = alpha0, f
    if best_f is None:
        return SearchResult(best_alpha, None, None, evals)
    return SearchResult(best_alpha, point(best_alpha), best_f, evals)


def as_damping(value: float | Damping, default: Damping) -> Damping:
    """A :class:`Damping` from a rule or from a number (the initial ``lambda`` of ``default``)."""
    if isinstance(value, Damping):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PdekitUserError(f"damping must be a float or a Damping, got {type(value).__name__}")
    return replace(default, initial=float(value))


def as_line_search(value: LineSearchKind | LineSearch, default: LineSearch) -> LineSearch:
    """A :class:`LineSearch` from a rule or from a kind (the other settings of ``default``)."""
    if isinstance(value, LineSearch):
        return value
    return replace(default, kind=value)


def group_options(damping: Damping, rule: LineSearch) -> dict:
    """The flat ``param_groups`` entries of both rules (plain values: ``state_dict`` friendly)."""
    return dict(
        damping=damping.initial, adaptive_damping=damping.adaptive,
        damping_increase=damping.increase, damping_decrease=damping.decrease,
        damping_bounds=(damping.min, damping.max), line_search=rule.kind, c=rule.c,
        shrink=rule.shrink, grow=rule.grow, max_backtracks=rule.max_steps,
        grid_size=rule.grid_size, strict_decrease=rule.strict,
    )


def rules_from_group(group: dict) -> tuple[Damping, LineSearch]:
    """Inverse of :func:`group_options` (entries added later fall back to their defaults)."""
    lo, hi = group["damping_bounds"]
    damping = Damping(group["damping"], group["adaptive_damping"], group["damping_increase"],
                      group["damping_decrease"], lo, hi)
    rule = LineSearch(group["line_search"], group["c"], group["shrink"], group["grow"],
                      group["max_backtracks"], group.get("grid_size", 31),
                      group.get("strict_decrease", True))
    return damping, rule


def initial_step(rule: LineSearch, state: dict, lr: float) -> float:
    """The first trial length: ``min(grow alpha_prev, lr)`` for Armijo, else ``lr``."""
    return min(rule.grow * state["alpha"], lr) if rule.kind == "armijo" else lr


def after_search(rule: LineSearch, state: dict, alpha0: float, result: SearchResult) -> None:
    """Remember the accepted length, or start the next Armijo search below the failed ones."""
    if result.accepted:
        state["alpha"] = result.alpha
    elif rule.kind == "armijo":
        state["alpha"] = alpha0 * rule.shrink**rule.max_steps
