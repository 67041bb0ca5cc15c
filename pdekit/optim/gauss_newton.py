"""Exact (damped) Gauss-Newton with the residual-space (Woodbury) solve: EGN, and ENGD on PINNs.

For the residual ``r(theta)`` in R^n with Jacobian ``J`` (n x p) and loss ``L = 1/2 ||r||^2``, the
damped Gauss-Newton direction is

    d = -(J^T J + lambda I)^-1 J^T r = -J^T (J J^T + lambda I)^-1 r,

the second form by the push-through (Duncan-Guttman / Woodbury) identity
``(J^T J + lambda I) J^T = J^T (J J^T + lambda I)``. When the mini-batch has fewer residuals than the
model has parameters (n < p, the usual case for neural networks) the n x n system is the cheap one:
that is EGN [1]_. For a PINN, whose residual stacks the weighted PDE and boundary residuals, the
same step is the energy natural gradient (ENGD) [2]_ [3]_; with ``damping=0`` the solve falls back
to the pseudo-inverse, i.e. ENGD's least-squares step ``J^+ r``.

Globalisation: an Armijo backtracking (or ENGD's grid) line search on ``alpha``
(:class:`~pdekit.optim.LineSearch`), and a Levenberg-Marquardt damping adapted by the gain ratio
``rho = actual / predicted reduction`` (:class:`~pdekit.optim.Damping`).
A step that does not lower the loss is rejected: the parameters are restored and the damping
grows, so the loss on the closure's data never increases.

References
----------
.. [1] M. Korbit, A. D. Adeoye, A. Bemporad, M. Zanon, "Exact Gauss-Newton optimization for
   training deep neural networks", arXiv:2405.14402, 2024.
.. [2] J. Müller, M. Zeinhofer, "Achieving high accuracy with PINNs via energy natural gradient
   descent", ICML 2023, arXiv:2302.13163.
.. [3] A. Jnini, F. Vella, M. Zeinhofer, "Gauss-Newton natural gradient descent for
   physics-informed computational fluid dynamics", arXiv:2402.10680, 2024.
.. [4] J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006, ch. 10.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Literal

import torch

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

__all__ = ["GaussNewton", "gauss_newton_direction", "spd_solve"]

Space = Literal["auto", "residual", "parameter"]


def spd_solve(A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve ``A x = b`` for symmetric positive semi-definite ``A``.

    Cholesky when ``A`` is numerically positive definite; otherwise the pseudo-inverse from an
    eigendecomposition (eigenvalues below ``n * eps * max`` are dropped), i.e. the minimum-norm
    least-squares solution. ``b`` is ``(n,)`` or ``(n, k)``.

    Examples
    --------
    >>> A = torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)   # singular
    >>> [round(v, 12) for v in spd_solve(A, torch.tensor([2.0, 2.0], dtype=torch.float64)).tolist()]
    [1.0, 1.0]
    """
    vec = b.dim() == 1
    B = b[:, None] if vec else b
    L, info = torch.linalg.cholesky_ex(A)
    if int(info) == 0 and bool(torch.isfinite(L).all()):
        x = torch.cholesky_solve(B, L)
        if bool(torch.isfinite(x).all()):
            return x[:, 0] if vec else x
    w, V = torch.linalg.eigh(A)
    cut = w.abs().max() * A.shape[0] * torch.finfo(A.dtype).eps
    inv = torch.where(w > cut, 1.0 / torch.where(w > cut, w, torch.ones_like(w)), torch.zeros_like(w))
    x = V @ (inv[:, None] * (V.T @ B))
    return x[:, 0] if vec else x


def gauss_newton_direction(
    J: torch.Tensor, r: torch.Tensor, damping: float = 0.0, *, space: Space = "auto"
) -> torch.Tensor:
    """The damped Gauss-Newton direction ``d = -(J^T J + damping I)^-1 J^T r``.

    Parameters
    ----------
    J : Tensor
        Jacobian ``(n, p)`` of the residual.
    r : Tensor
        Residual ``(n,)``.
    damping : float
        ``lambda >= 0``. With 0 a singular system is solved in the least-squares sense
        (minimum-norm ``d = -J^+ r``).
    space : {"auto", "residual", "parameter"}
        ``"residual"``: ``d = -J^T (J J^T + lambda I)^-1 r`` (an n x n system, the Woodbury form);
        ``"parameter"``: the p x p normal equations; ``"auto"`` picks the smaller system.

    Examples
    --------
    >>> J = torch.randn(3, 5, dtype=torch.float64); r = torch.randn(3, dtype=torch.float64)
    >>> d_res = gauss_newton_direction(J, r, 0.1, space="residual")
    >>> d_par = gauss_newton_direction(J, r, 0.1, space="parameter")
    >>> torch.allclose(d_res, d_par)
    True

    References
    ----------
    .. [1] M. Korbit et al., "Exact Gauss-Newton optimization for training deep neural networks",
       arXiv:2405.14402, 2024 (the residual-space solve).
    """
    n, p = J.shape
    if space == "auto":
        space = "residual" if n <= p else "parameter"
    if space == "residual":
        K = J @ J.T
        K.diagonal().add_(damping)
        return -(J.T @ spd_solve(K, r))
    if space == "parameter":
        G = J.T @ J
        G.diagonal().add_(damping)
        return -spd_solve(G, J.T @ r)
    raise PdekitUserError(f"space must be 'auto', 'residual' or 'parameter', got {space!r}")


class GaussNewton(torch.optim.Optimizer):
    """Damped Gauss-Newton (EGN / ENGD) with a dense Jacobian and a residual-space solve.

    ``step(closure)`` takes a closure that returns the **residual vector** ``r`` (any shape) of the
    current mini-batch, computed from the parameters with autograd enabled; the loss is
    ``1/2 ||r||^2``. One step forms ``J`` (``min(n, p)`` batched autograd products), solves for the
    damped direction in the smaller of residual and parameter space, chooses the step length, and
    adapts the damping by the gain ratio. Memory: ``n * p`` numbers for ``J`` plus ``min(n, p)^2``.

    Parameters
    ----------
    params : iterable
        Parameters (or one parameter group) of one dtype and device.
    lr : float
        Largest step length ``alpha_max`` (Gauss-Newton's natural step is 1).
    damping : float or Damping
        The Levenberg-Marquardt rule; a float is the initial ``lambda`` of the default
        :attr:`DAMPING` (increase 2, decrease 1/2, clamp ``[1e-12, 1e6]``). ``lambda`` is absolute:
        compare it with the eigenvalues of ``J J^T`` (rows weighted by ``1/sqrt(N)`` give O(1)
        scales). ``Damping(0.0, adaptive=False)`` is the undamped step.
    line_search : {"armijo", "grid", "none"} or LineSearch
        A kind uses the other settings of :attr:`LINE_SEARCH` (EGN's ``c = 0.1``,
        ``shrink = 0.8``, ``grow = 1.5``, 15 trials). ``"armijo"``: backtracking from
        ``min(grow * alpha_prev, lr)``; ``"grid"``: the best of ``lr * 2^-k``, k = 0..30 (ENGD);
        ``"none"``: ``alpha = lr``. In every case a step that does not lower the loss is rejected.
    momentum : float
        ``mu`` of the bias-corrected moving average of directions (EGN): ``m = mu m + (1-mu) d``,
        step along ``m / (1 - mu^t)``; it falls back to ``d`` when that is not a descent direction.
    space : {"auto", "residual", "parameter"}
        Which system to solve (see :func:`gauss_newton_direction`).

    Attributes
    ----------
    last_step : StepInfo
        Loss before/after, step length, damping, gain ratio of the latest step.

    Examples
    --------
    A linear least-squares problem is solved by one undamped step:

    >>> from pdekit.optim import Damping
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> A, y = torch.randn(20, 3, dtype=torch.float64), torch.randn(20, dtype=torch.float64)
    >>> x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    >>> opt = GaussNewton([x], damping=Damping(0.0, adaptive=False))
    >>> loss0 = opt.step(lambda: A @ x - y)
    >>> torch.allclose(x.detach(), torch.linalg.lstsq(A, y).solution)
    True

    References
    ----------
    .. [1] M. Korbit, A. D. Adeoye, A. Bemporad, M. Zanon, "Exact Gauss-Newton optimization for
       training deep neural networks", arXiv:2405.14402, 2024.
    .. [2] J. Müller, M. Zeinhofer, "Achieving high accuracy with PINNs via energy natural gradient
       descent", ICML 2023.
    .. [3] A. Jnini, F. Vella, M. Zeinhofer, "Gauss-Newton natural gradient descent for
       physics-informed computational fluid dynamics", arXiv:2402.10680, 2024.
    .. [4] J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006, sec. 3.1
       and 10.3.
    """

    DAMPING = Damping(1e-3, increase=2.0, decrease=0.5)
    LINE_SEARCH = LineSearch("armijo", c=0.1, shrink=0.8, grow=1.5, max_steps=15)

    def __init__(
        self,
        params: Iterable,
        lr: float = 1.0,
        *,
        damping: float | Damping = 1e-3,
        line_search: LineSearchKind | LineSearch = "armijo",
        momentum: float = 0.0,
        space: Space = "auto",
    ):
        if not lr > 0:
            raise PdekitUserError(f"lr must be > 0, got {lr}")
        if not 0 <= momentum < 1:
            raise PdekitUserError(f"momentum must lie in [0, 1), got {momentum}")
        if space not in ("auto", "residual", "parameter"):
            raise PdekitUserError(
                f"space must be 'auto', 'residual' or 'parameter', got {space!r}"
            )
        rules = group_options(as_damping(damping, self.DAMPING),
                              as_line_search(line_search, self.LINE_SEARCH))
        super().__init__(params, dict(lr=lr, momentum=momentum, space=space, **rules))
        if len(self.param_groups) != 1:
            raise PdekitUserError("GaussNewton supports a single parameter group")
        self.last_step: StepInfo | None = None

    def _state(self) -> dict:
        group = self.param_groups[0]
        state = self.state[group["params"][0]]  # global state lives on the first parameter
        if not state:
            state.update(n_steps=0, damping=float(group["damping"]), alpha=float(group["lr"]))
        return state

    def direction(self, J: torch.Tensor, r: torch.Tensor, damping: float) -> torch.Tensor:
        """The damped Gauss-Newton direction for ``J`` and ``r`` (hook for subclasses)."""
        return gauss_newton_direction(J, r, damping, space=self.param_groups[0]["space"])

    def _momentum(self, state: dict, d: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        mu = self.param_groups[0]["momentum"]
        if mu == 0:
            return d
        buf = state.get("momentum_buffer")
        t = state.get("momentum_steps", 0) + 1
        buf = (1 - mu) * d if buf is None else mu * buf + (1 - mu) * d
        d_hat = buf / (1 - mu**t)
        if float(g @ d_hat) < 0:
            state["momentum_buffer"], state["momentum_steps"] = buf, t
            return d_hat
        state.pop("momentum_buffer", None)
        state["momentum_steps"] = 0
        return d

    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        """One Gauss-Newton step; returns the loss ``1/2 ||r||^2`` before the step.

        Parameters
        ----------
        closure : callable
            ``closure() -> r``: the residual vector of the current mini-batch at the current
            parameters, computed with autograd (called several times per step).
        """
        if closure is None:
            raise PdekitUserError(
                "GaussNewton.step needs a closure that returns the residual vector"
            )
        group = self.param_groups[0]
        damping, rule = rules_from_group(group)
        state = self._state()
        pv = ParamVector(group["params"])
        lin = Linearization(closure, pv)
        r, f0 = lin.r, lin.loss
        J = lin.jacobian()
        del lin  # frees the graph before the line search
        lam = state["damping"]
        g = J.T @ r
        d = self._momentum(state, self.direction(J, r, lam), g)
        Jd = J @ d
        slope = float(g @ d)
        curv = float(Jd @ Jd)
        state["n_steps"] += 1
        theta = pv.get()
        if not (slope < 0 and math.isfinite(slope) and math.isfinite(curv)):
            # zero gradient (a stationary point) or a failed solve: do not move
            self.last_step = StepInfo(f0, f0, False, 0.0, lam, float("nan"))
            if not slope == 0:
                state["damping"] = damping.update(lam, float("nan"))
            return torch.tensor(f0, dtype=torch.float64)

        def evaluate(x: torch.Tensor) -> float:
            pv.set_(x)
            return evaluate_loss(closure)

        alpha0 = initial_step(rule, state, group["lr"])
        res = line_search(evaluate, theta, d, f0, slope, rule=rule, alpha0=alpha0)
        pv.set_(res.x if res.accepted else theta)
        after_search(rule, state, alpha0, res)
        if res.accepted:
            pred = -(res.alpha * slope + 0.5 * res.alpha**2 * curv)
            f_new = res.value
            rho = (f0 - f_new) / pred if pred > 0 else float("nan")
        else:
            f_new, rho = f0, float("nan")
            state.pop("momentum_buffer", None)
            state["momentum_steps"] = 0
        if damping.adaptive:
            state["damping"] = damping.update(lam, rho)
        self.last_step = StepInfo(f0, f_new, res.accepted, res.alpha, lam, rho, 0,
                                  res.evaluations + 1)
        return torch.tensor(f0, dtype=torch.float64)
