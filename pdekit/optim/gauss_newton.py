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

Globalisation: an Armijo backtracking (or ENGD's grid) line search on ``alpha``, and a
Levenberg-Marquardt damping adapted by the gain ratio ``rho = actual / predicted reduction``.
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

from pdekit.optim._functional import Linearization, ParamVector
from pdekit.optim._linesearch import LineSearch, StepInfo, adapt_damping, line_search

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
    raise ValueError(f"space must be 'auto', 'residual' or 'parameter', got {space!r}")


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
    damping : float
        Initial Levenberg-Marquardt ``lambda``, absolute (compare it with the eigenvalues of
        ``J J^T``; rows weighted by ``1/sqrt(N)`` give O(1) scales).
    adaptive_damping : bool
        Adapt ``lambda`` by the gain ratio ``rho``: ``* damping_increase`` if ``rho < 1/4`` or the step
        is rejected, ``* damping_decrease`` if ``rho > 3/4``, clamped to ``damping_bounds``.
    damping_increase, damping_decrease : float
    damping_bounds : (float, float)
    line_search : {"armijo", "grid", "none"}
        ``"armijo"``: backtracking from ``min(grow * alpha_prev, lr)`` by ``shrink`` until
        ``L(theta + alpha d) <= L + c alpha g^T d`` (at most ``max_backtracks`` tries; c = 0.1,
        shrink = 0.8 as in EGN). ``"grid"``: the best of ``lr * 2^-k``, k = 0..30 (ENGD).
        ``"none"``: ``alpha = lr``. In every case a step that does not lower the loss is rejected.
    c, shrink, grow : float
    max_backtracks : int
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

    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> A, y = torch.randn(20, 3, dtype=torch.float64), torch.randn(20, dtype=torch.float64)
    >>> x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    >>> opt = GaussNewton([x], damping=0.0, adaptive_damping=False)
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

    def __init__(
        self,
        params: Iterable,
        lr: float = 1.0,
        *,
        damping: float = 1e-3,
        adaptive_damping: bool = True,
        damping_increase: float = 2.0,
        damping_decrease: float = 0.5,
        damping_bounds: tuple[float, float] = (1e-12, 1e6),
        line_search: LineSearch = "armijo",
        c: float = 0.1,
        shrink: float = 0.8,
        grow: float = 1.5,
        max_backtracks: int = 15,
        momentum: float = 0.0,
        space: Space = "auto",
    ):
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not damping >= 0:
            raise ValueError(f"damping must be >= 0, got {damping}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        if line_search not in ("armijo", "grid", "none"):
            raise ValueError(f"line_search must be 'armijo', 'grid' or 'none', got {line_search!r}")
        if space not in ("auto", "residual", "parameter"):
            raise ValueError(f"space must be 'auto', 'residual' or 'parameter', got {space!r}")
        if not (damping_increase >= 1 and 0 < damping_decrease <= 1):
            raise ValueError("need damping_increase >= 1 and 0 < damping_decrease <= 1")
        defaults = dict(
            lr=lr, damping=damping, adaptive_damping=adaptive_damping,
            damping_increase=damping_increase, damping_decrease=damping_decrease,
            damping_bounds=tuple(damping_bounds), line_search=line_search, c=c, shrink=shrink,
            grow=grow, max_backtracks=max_backtracks, momentum=momentum, space=space,
        )
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("GaussNewton supports a single parameter group")
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

    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        """One Gauss-Newton step; returns the loss ``1/2 ||r||^2`` before the step.

        Parameters
        ----------
        closure : callable
            ``closure() -> r``: the residual vector of the current mini-batch at the current
            parameters, computed with autograd (called several times per step).
        """
        if closure is None:
            raise ValueError("GaussNewton.step needs a closure that returns the residual vector")
        group = self.param_groups[0]
        state = self._state()
        pv = ParamVector(group["params"])
        lin = Linearization(closure, pv)
        r, f0 = lin.r, lin.loss
        J = lin.jacobian()
        del lin  # frees the graph before the line search
        lam = state["damping"]
        d = self.direction(J, r, lam)
        g = J.T @ r
        mu = group["momentum"]
        if mu > 0:
            buf = state.get("momentum_buffer")
            t = state.get("momentum_steps", 0) + 1
            buf = (1 - mu) * d if buf is None else mu * buf + (1 - mu) * d
            d_hat = buf / (1 - mu**t)
            if float(g @ d_hat) < 0:
                state["momentum_buffer"], state["momentum_steps"] = buf, t
                d = d_hat
            else:
                state.pop("momentum_buffer", None)
                state["momentum_steps"] = 0
        Jd = J @ d
        slope = float(g @ d)
        curv = float(Jd @ Jd)
        state["n_steps"] += 1
        theta = pv.get()
        if not (slope < 0 and math.isfinite(slope) and math.isfinite(curv)):
            # zero gradient (a stationary point) or a failed solve: do not move
            self.last_step = StepInfo(f0, f0, False, 0.0, lam, float("nan"))
            if not slope == 0:
                state["damping"] = adapt_damping(lam, float("nan"), **self._damping_kw(group))
            return torch.tensor(f0, dtype=torch.float64)
        kind = group["line_search"]
        if kind == "armijo":
            alpha0 = min(group["grow"] * state["alpha"], group["lr"])
        else:
            alpha0 = group["lr"]
        alpha, f_new, evals = line_search(
            closure, pv, theta, d, f0, slope, kind=kind, alpha0=alpha0, c=group["c"],
            shrink=group["shrink"], max_tries=group["max_backtracks"],
        )
        accepted = f_new is not None
        if accepted:
            pred = -(alpha * slope + 0.5 * alpha**2 * curv)
            rho = (f0 - f_new) / pred if pred > 0 else float("nan")
            state["alpha"] = alpha
        else:
            f_new, rho = f0, float("nan")
            if kind == "armijo":  # the next search starts below the lengths that failed
                state["alpha"] = alpha0 * group["shrink"] ** group["max_backtracks"]
            state.pop("momentum_buffer", None)
            state["momentum_steps"] = 0
        if group["adaptive_damping"]:
            state["damping"] = adapt_damping(lam, rho, **self._damping_kw(group))
        self.last_step = StepInfo(f0, f_new, accepted, alpha, lam, rho, 0, evals + 1)
        return torch.tensor(f0, dtype=torch.float64)

    @staticmethod
    def _damping_kw(group: dict) -> dict:
        return dict(increase=group["damping_increase"], decrease=group["damping_decrease"],
                    bounds=group["damping_bounds"])
