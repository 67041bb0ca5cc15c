"""Matrix-free Gauss-Newton-CG (Hessian-free with Gauss-Newton curvature).

The damped Gauss-Newton system ``(J^T J + lambda I) d = -J^T r`` is solved inexactly by conjugate
gradients, where every matrix-vector product is a Jacobian-vector product followed by a
vector-Jacobian product (``torch.func.jvp`` / ``vjp`` for a :func:`~pdekit.optim.functional_residual`
closure, forward-over-reverse autograd for any other closure). ``J`` is never formed, so the
memory is that of two or three gradient evaluations: the method for models too large for
:class:`~pdekit.optim.GaussNewton` (neural operators, deep PINNs).

The inner solve is :func:`pdekit.core.krylov.cg` (not a copy): a warm start from the previous
direction (scaled by ``warm_start``), an Eisenstat-Walker tolerance
``min(0.5, sqrt(||g|| / ||g_0||))`` unless ``cg_rtol`` is given, and ``cg_maxiter`` iterations.
Globalisation as in :class:`~pdekit.optim.GaussNewton`: Armijo backtracking, gain-ratio
Levenberg-Marquardt damping, rejection of steps that do not lower the loss.

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
from pdekit.optim._functional import Linearization, ParamVector
from pdekit.optim._linesearch import LineSearch, StepInfo, adapt_damping, line_search

__all__ = ["GaussNewtonCG"]


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
    damping : float
        Initial Levenberg-Marquardt ``lambda`` (the CG system is SPD for ``lambda > 0``).
    adaptive_damping, damping_increase, damping_decrease, damping_bounds
        Gain-ratio adaptation, as in :class:`~pdekit.optim.GaussNewton` (Martens 2010 uses
        3/2 and 2/3).
    cg_rtol : float, optional
        Relative tolerance of the inner CG; ``None``: Eisenstat-Walker ``min(0.5, sqrt(||g||/||g0||))``.
    cg_maxiter : int
        Inner iterations per step (each costs one ``J v`` and one ``J^T w``).
    warm_start : float
        The CG starts from ``warm_start * d_prev`` (0 disables it; Martens uses 0.95).
    line_search : {"armijo", "grid", "none"}
    c, shrink, grow, max_backtracks
        Line-search settings (see :class:`~pdekit.optim.GaussNewton`).

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

    def __init__(
        self,
        params: Iterable,
        lr: float = 1.0,
        *,
        damping: float = 1e-3,
        adaptive_damping: bool = True,
        damping_increase: float = 1.5,
        damping_decrease: float = 2.0 / 3.0,
        damping_bounds: tuple[float, float] = (1e-12, 1e6),
        cg_rtol: float | None = None,
        cg_maxiter: int = 50,
        warm_start: float = 0.95,
        line_search: LineSearch = "armijo",
        c: float = 0.1,
        shrink: float = 0.8,
        grow: float = 1.5,
        max_backtracks: int = 15,
    ):
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not damping > 0:
            raise ValueError(f"damping must be > 0 (the CG system must be SPD), got {damping}")
        if cg_maxiter < 1:
            raise ValueError(f"cg_maxiter must be >= 1, got {cg_maxiter}")
        if line_search not in ("armijo", "grid", "none"):
            raise ValueError(f"line_search must be 'armijo', 'grid' or 'none', got {line_search!r}")
        defaults = dict(
            lr=lr, damping=damping, adaptive_damping=adaptive_damping,
            damping_increase=damping_increase, damping_decrease=damping_decrease,
            damping_bounds=tuple(damping_bounds), cg_rtol=cg_rtol, cg_maxiter=cg_maxiter,
            warm_start=warm_start, line_search=line_search, c=c, shrink=shrink, grow=grow,
            max_backtracks=max_backtracks,
        )
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("GaussNewtonCG supports a single parameter group")
        self.last_step: StepInfo | None = None

    def _state(self) -> dict:
        group = self.param_groups[0]
        state = self.state[group["params"][0]]
        if not state:
            state.update(n_steps=0, damping=float(group["damping"]), alpha=float(group["lr"]))
        return state

    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        """One Gauss-Newton-CG step; returns the loss ``1/2 ||r||^2`` before the step."""
        if closure is None:
            raise ValueError("GaussNewtonCG.step needs a closure that returns the residual vector")
        group = self.param_groups[0]
        state = self._state()
        pv = ParamVector(group["params"])
        lin = Linearization(closure, pv)
        f0 = lin.loss
        g = lin.gradient()
        gnorm = float(g.norm())
        state.setdefault("g0_norm", gnorm)
        lam = state["damping"]
        state["n_steps"] += 1

        def A(X: torch.Tensor) -> torch.Tensor:  # (B, p) -> (B, p)
            return lin.ggn_vp(X) + lam * X

        rtol = group["cg_rtol"]
        if rtol is None:
            rtol = min(0.5, math.sqrt(gnorm / state["g0_norm"])) if state["g0_norm"] > 0 else 0.5
        prev = state.get("direction")
        x0 = None
        if prev is not None and group["warm_start"] > 0 and prev.shape == g.shape:
            x0 = group["warm_start"] * prev
        counter = [0]

        def count(_x):
            counter[0] += 1

        try:
            d, _info = krylov.cg(A, -g, x0=x0, rtol=rtol, maxiter=group["cg_maxiter"],
                                 callback=count)
        except SolverError as e:  # breakdown (round-off in a nearly singular system)
            d = e.result.x if e.result is not None else -g
        if not bool(torch.isfinite(d).all()) or float(g @ d) >= 0:
            d = -g  # fall back to steepest descent
        its = counter[0]
        Jd = lin.jvp(d[None])[0]
        lin = None  # frees the graph before the line search
        slope, curv = float(g @ d), float(Jd @ Jd)
        theta = pv.get()
        if not (slope < 0 and math.isfinite(curv)):
            self.last_step = StepInfo(f0, f0, False, 0.0, lam, float("nan"), its)
            return torch.tensor(f0, dtype=torch.float64)
        kind = group["line_search"]
        alpha0 = min(group["grow"] * state["alpha"], group["lr"]) if kind == "armijo" else group["lr"]
        alpha, f_new, evals = line_search(
            closure, pv, theta, d, f0, slope, kind=kind, alpha0=alpha0, c=group["c"],
            shrink=group["shrink"], max_tries=group["max_backtracks"],
        )
        if f_new is not None:
            pred = -(alpha * slope + 0.5 * alpha**2 * curv)
            rho = (f0 - f_new) / pred if pred > 0 else float("nan")
            state["alpha"], state["direction"] = alpha, d.detach()
            accepted = True
        else:
            f_new, rho, accepted = f0, float("nan"), False
            if kind == "armijo":
                state["alpha"] = alpha0 * group["shrink"] ** group["max_backtracks"]
            state.pop("direction", None)
        if group["adaptive_damping"]:
            state["damping"] = adapt_damping(
                lam, rho, increase=group["damping_increase"], decrease=group["damping_decrease"],
                bounds=group["damping_bounds"],
            )
        self.last_step = StepInfo(f0, f_new, accepted, alpha, lam, rho, its, evals + 1)
        return torch.tensor(f0, dtype=torch.float64)
