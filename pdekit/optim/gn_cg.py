"""Matrix-free Gauss-Newton-CG (Hessian-free with Gauss-Newton curvature).

The damped Gauss-Newton system ``(J^T J + lambda I) d = -J^T r`` is solved inexactly by conjugate
gradients, where every matrix-vector product is a Jacobian-vector product followed by a
vector-Jacobian product (``torch.func.jvp`` / ``vjp`` for a :func:`~pdekit.optim.functional_residual`
closure, forward-over-reverse autograd for any other closure). ``J`` is never formed, so the
memory is that of two or three gradient evaluations: the method for models too large for
:class:`~pdekit.optim.GaussNewton` (neural operators, deep PINNs).

The inner solve is :func:`pdekit.core.krylov.cg` (not a copy): a warm start from the previous
direction (scaled by ``warm_start``), the forcing term
:func:`~pdekit.optim.forcing.relative_forcing` ``min(0.5, sqrt(||g|| / ||g_0||))`` unless
``cg_rtol`` is given, and ``cg_maxiter`` iterations. The outer step is the Gauss-Newton-CG core
shared with :func:`pdekit.inverse.gauss_newton_cg` (whose inner solve is the prior-preconditioned
:func:`~pdekit.optim.steihaug.steihaug_cg`): :func:`newton_direction` (the inner CG solution if it
is a finite descent direction, else steepest descent) followed by
:func:`~pdekit.optim.line_search`. Globalisation as in :class:`~pdekit.optim.GaussNewton`: Armijo
backtracking, gain-ratio Levenberg-Marquardt damping (:class:`~pdekit.optim.Damping`), rejection of
steps that do not lower the loss.

References
----------
.. [1] J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
.. [2] A. Jnini, F. Vella, M. Zeinhofer, "Gauss-Newton natural gradient descent for
   physics-informed computational fluid dynamics", arXiv:2402.10680, 2024 (matrix-free GN-CG).
.. [3] S. C. Eisenstat, H. F. Walker, "Choosing the forcing terms in an inexact Newton method",
   SIAM J. Sci. Comput. 17 (1996).
.. [4] J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006, sec. 7.1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from pdekit.core import krylov
from pdekit.core.solve_result import SolverError
from pdekit.errors import PdekitUserError
from pdekit.optim._functional import Linearization, ParamVector, evaluate_loss
from pdekit.optim._linesearch import (
    Damping,
    LineSearch,
    LineSearchKind,
    StepInfo,
    after_search,
    as_damping,
    as_line_search,
    group_options,
    initial_step,
    line_search,
    rules_from_group,
)
from pdekit.optim.forcing import relative_forcing
from pdekit.optim.steihaug import dot

__all__ = ["GaussNewtonCG", "newton_direction"]

Operator = Callable[[torch.Tensor], torch.Tensor]


def newton_direction(
    d: torch.Tensor, g: torch.Tensor, precond: Operator | None = None
) -> tuple[torch.Tensor, float]:
    """The inner-CG step ``d`` if it is a finite descent direction, else ``-P g``; and ``g^T d``.

    Parameters
    ----------
    d : Tensor
        Approximate solution of ``H d = -g``.
    g : Tensor
        Gradient.
    precond : callable, optional
        ``P`` of the preconditioned steepest-descent fallback (default: identity).

    Examples
    --------
    >>> g = torch.tensor([1.0, 0.0])
    >>> newton_direction(torch.tensor([1.0, 0.0]), g)     # an ascent direction
    (tensor([-1., -0.]), -1.0)
    """
    slope = float(dot(g, d))
    if not (slope < 0 and bool(torch.isfinite(d).all())):
        d = -(precond(g) if precond is not None else g)
        slope = float(dot(g, d))
    return d, slope


def _damped_cg(A: Operator, g: torch.Tensor, x0, rtol: float, maxiter: int):
    """``krylov.cg`` on ``A d = -g``; returns ``(d, iterations)`` (a breakdown keeps its iterate)."""
    counter = [0]

    def count(_x):
        counter[0] += 1

    try:
        d, _info = krylov.cg(A, -g, x0=x0, rtol=rtol, maxiter=maxiter, callback=count)
    except SolverError as e:  # breakdown (round-off in a nearly singular system)
        d = e.result.x if e.result is not None else -g
    return d, counter[0]


class GaussNewtonCG(torch.optim.Optimizer):
    """Gauss-Newton with matrix-free curvature products and CG inner solves.

    ``step(closure)`` takes a closure returning the **residual vector** of the current mini-batch
    (see :class:`~pdekit.optim.GaussNewton` for the contract).

    Parameters
    ----------
    params : iterable
        Parameters of one dtype and device (complex parameters count as two real ones).
    lr : float
        Largest step length.
    damping : float or Damping
        The Levenberg-Marquardt rule; a float is the initial ``lambda`` (> 0: the CG system must be
        SPD) of the default :attr:`DAMPING`, which adapts by 3/2 and 2/3 as in Martens 2010.
    cg_rtol : float, optional
        Relative tolerance of the inner CG; ``None``: ``min(0.5, sqrt(||g||/||g0||))``.
    cg_maxiter : int
        Inner iterations per step (each costs one ``J v`` and one ``J^T w``).
    warm_start : float
        The CG starts from ``warm_start * d_prev`` (0 disables it; Martens uses 0.95).
    line_search : {"armijo", "grid", "none"} or LineSearch
        A kind uses the other settings of :attr:`LINE_SEARCH` (as in
        :class:`~pdekit.optim.GaussNewton`).

    Attributes
    ----------
    last_step : StepInfo
        ``inner_iterations`` holds the CG iterations of the step.

    Examples
    --------
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> A, y = torch.randn(30, 4, dtype=torch.float64), torch.randn(30, dtype=torch.float64)
    >>> x = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    >>> opt = GaussNewtonCG([x], damping=1e-10, cg_rtol=1e-12)
    >>> for _ in range(3):
    ...     _ = opt.step(lambda: A @ x - y)
    >>> torch.allclose(x.detach(), torch.linalg.lstsq(A, y).solution, atol=1e-8)
    True

    References
    ----------
    .. [1] J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
    .. [2] A. Jnini, F. Vella, M. Zeinhofer, "Gauss-Newton natural gradient descent for
       physics-informed computational fluid dynamics", arXiv:2402.10680, 2024.
    .. [3] J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006, sec. 7.1.
    """

    DAMPING = Damping(1e-3, increase=1.5, decrease=2.0 / 3.0)
    LINE_SEARCH = LineSearch("armijo", c=0.1, shrink=0.8, grow=1.5, max_steps=15)

    def __init__(
        self,
        params: Iterable,
        lr: float = 1.0,
        *,
        damping: float | Damping = 1e-3,
        cg_rtol: float | None = None,
        cg_maxiter: int = 50,
        warm_start: float = 0.95,
        line_search: LineSearchKind | LineSearch = "armijo",
    ):
        if not lr > 0:
            raise PdekitUserError(f"lr must be > 0, got {lr}")
        rule = as_damping(damping, self.DAMPING)
        if not rule.initial > 0:
            raise PdekitUserError(
                f"damping must be > 0 (the CG system must be SPD), got {rule.initial}"
            )
        if cg_maxiter < 1:
            raise PdekitUserError(f"cg_maxiter must be >= 1, got {cg_maxiter}")
        rules = group_options(rule, as_line_search(line_search, self.LINE_SEARCH))
        super().__init__(params, dict(lr=lr, cg_rtol=cg_rtol, cg_maxiter=cg_maxiter,
                                      warm_start=warm_start, **rules))
        if len(self.param_groups) != 1:
            raise PdekitUserError("GaussNewtonCG supports a single parameter group")
        self.last_step: StepInfo | None = None

    def _state(self) -> dict:
        group = self.param_groups[0]
        state = self.state[group["params"][0]]
        if not state:
            state.update(n_steps=0, damping=float(group["damping"]), alpha=float(group["lr"]))
        return state

    def _direction(self, lin: Linearization, g: torch.Tensor, state: dict):
        """The damped, warm-started inner solve: ``(d, slope, ||J d||^2, iterations)``."""
        group = self.param_groups[0]
        lam = state["damping"]

        def A(X: torch.Tensor) -> torch.Tensor:  # (B, p) -> (B, p)
            return lin.ggn_vp(X) + lam * X

        rtol = group["cg_rtol"]
        if rtol is None:
            rtol = relative_forcing(float(g.norm()), state["g0_norm"])
        prev = state.get("direction")
        x0 = None
        if prev is not None and group["warm_start"] > 0 and prev.shape == g.shape:
            x0 = group["warm_start"] * prev
        d, its = _damped_cg(A, g, x0, rtol, group["cg_maxiter"])
        d, slope = newton_direction(d, g)
        Jd = lin.jvp(d[None])[0]
        return d, slope, float(Jd @ Jd), its

    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        """One Gauss-Newton-CG step; returns the loss ``1/2 ||r||^2`` before the step."""
        if closure is None:
            raise PdekitUserError(
                "GaussNewtonCG.step needs a closure that returns the residual vector"
            )
        group = self.param_groups[0]
        damping, rule = rules_from_group(group)
        state = self._state()
        pv = ParamVector(group["params"])
        lin = Linearization(closure, pv)
        f0 = lin.loss
        g = lin.gradient()
        state.setdefault("g0_norm", float(g.norm()))
        lam = state["damping"]
        state["n_steps"] += 1
        d, slope, curv, its = self._direction(lin, g, state)
        del lin  # frees the graph before the line search
        theta = pv.get()
        if not (slope < 0 and math.isfinite(curv)):
            self.last_step = StepInfo(f0, f0, False, 0.0, lam, float("nan"), its)
            return torch.tensor(f0, dtype=torch.float64)

        def evaluate(x: torch.Tensor) -> float:
            pv.set_(x)
            return evaluate_loss(closure)

        alpha0 = initial_step(rule, state, group["lr"])
        res = line_search(evaluate, theta, d, f0, slope, rule=rule, alpha0=alpha0)
        pv.set_(res.x if res.accepted else theta)
        after_search(rule, state, alpha0, res)
        if res.accepted:
            f_new = res.value
            pred = -(res.alpha * slope + 0.5 * res.alpha**2 * curv)
            rho = (f0 - f_new) / pred if pred > 0 else float("nan")
            state["direction"] = d.detach()
        else:
            f_new, rho = f0, float("nan")
            state.pop("direction", None)
        if damping.adaptive:
            state["damping"] = damping.update(lam, rho)
        self.last_step = StepInfo(f0, f_new, res.accepted, res.alpha, lam, rho, its,
                                  res.evaluations + 1)
        return torch.tensor(f0, dtype=torch.float64)
