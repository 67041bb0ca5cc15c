"""L-BFGS(-B) baseline: scipy's L-BFGS-B on the adjoint gradient, optionally prior-whitened.

Every function evaluation costs one forward and one adjoint solve (L-BFGS has no curvature solves,
but its line search may evaluate several points per iteration; all are counted). With
``whiten=True`` (the default for quadratic priors without bounds) the variable is ``z`` with
``m = m0 + R^{-1/2} z``, so the regulariser becomes ``0.5 ||z||^2`` and the initial L-BFGS Hessian
is the prior's: the same preconditioning Gauss-Newton-CG gets, which makes the comparison fair.

Why scipy's L-BFGS-B and not ``torch.optim.LBFGS``: this driver is the *baseline* that the solve
counts of Gauss-Newton-CG are measured against, so it should be the reference implementation, and
it must honour the box bounds of :class:`~pdekit.inverse.LogCoefficient`. ``torch.optim.LBFGS`` has
no bounds (L-BFGS-B's generalised Cauchy point and subspace minimisation), uses a fixed step unless
``line_search_fn="strong_wolfe"`` is set, and stops on the largest gradient entry rather than the
projected gradient. The objective is a float64 function of one field whose every call costs a PDE
solve, so the numpy round trip costs nothing measurable. The prologue (bounds, history, callback)
is the one every inversion driver shares (:class:`~pdekit.inverse.result.DriverRun`).

References
----------
.. [1] R. H. Byrd, P. Lu, J. Nocedal, C. Zhu, "A limited memory algorithm for bound constrained
   optimization", SIAM J. Sci. Comput. 16 (1995) 1190-1208.
.. [2] J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer, 2006, ch. 7.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from pdekit.errors import PdekitUserError
from pdekit.inverse.priors import SpectralPrior
from pdekit.inverse.problem import Objective
from pdekit.inverse.result import DriverRun, InversionResult

__all__ = ["lbfgs"]


def lbfgs(
    objective: Objective,
    m0: torch.Tensor,
    *,
    max_iter: int = 500,
    gtol: float = 1e-6,
    ftol: float = 1e-12,
    n_corrections: int = 10,
    whiten: bool | None = None,
    callback: Callable[[dict], None] | None = None,
) -> InversionResult:
    """Minimise the objective with ``scipy.optimize.minimize(method="L-BFGS-B")``.

    Parameters
    ----------
    objective : Objective
    m0 : Tensor
        Initial parameter.
    max_iter : int
        L-BFGS iterations.
    gtol : float
        Stop when the largest projected gradient entry drops by this factor (relative to the start).
    ftol : float
        scipy's relative reduction tolerance.
    n_corrections : int
        L-BFGS memory.
    whiten : bool, optional
        Work in prior-whitened variables; ``None``: when the prior is a
        :class:`~pdekit.inverse.priors.SpectralPrior` and there are no bounds.
    callback : callable, optional
        Called with each history record.

    Returns
    -------
    InversionResult

    Examples
    --------
    >>> import torch
    >>> from pdekit.core.grid import Grid
    >>> from pdekit.inverse import DarcyModel, Tikhonov, InverseProblem, Observations
    >>> from pdekit.inverse import SubsampledObservation
    >>> g = Grid((9, 9))
    >>> problem = InverseProblem(DarcyModel(g), Tikhonov(g, 1e-2))
    >>> obs = Observations.synthetic(SubsampledObservation(g, 2), problem.model.solve(
    ...     torch.full((9, 9), 0.3, dtype=torch.float64)), 0.01, torch.Generator().manual_seed(0))
    >>> res = lbfgs(problem.objective(obs), torch.zeros(9, 9, dtype=torch.float64))
    >>> res.history[-1]["objective"] < res.history[0]["objective"]
    True
    """
    from scipy.optimize import minimize

    run = DriverRun(objective, callback)
    lower, upper, bounded = run.lower, run.upper, run.bounded
    prior = objective.prior
    if whiten is None:
        whiten = isinstance(prior, SpectralPrior) and not bounded
    if whiten and (bounded or not isinstance(prior, SpectralPrior)):
        raise PdekitUserError("whiten=True needs a quadratic (SpectralPrior) prior and no bounds")
    shape = tuple(m0.shape)
    base = run.start(m0)

    def to_m(x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(x).reshape(shape)
        return base + prior.sqrt_inverse_apply(t) if whiten else t

    last: dict = {}

    def fun(x):
        m = to_m(x)
        ev, g = objective.value_and_gradient(m)
        if whiten:
            g = prior.sqrt_inverse_transpose_apply(g)
        gn = g.reshape(-1).numpy().astype(np.float64)
        last.update(x=x.copy(), ev=ev, g=gn)
        return ev.value, gn

    x0 = np.zeros(base.numel()) if whiten else base.reshape(-1).numpy().copy()
    f0, g0 = fun(x0)
    run.record(0, last["ev"], float(np.abs(g0).max()))
    state = {"it": 0}

    def on_iter(xk):
        state["it"] += 1
        if "x" in last and np.array_equal(last["x"], xk):
            ev, g = last["ev"], last["g"]
        else:  # not expected from L-BFGS-B; evaluate (counted) to keep the history honest
            ev = objective.evaluate(to_m(xk))
            g = np.full(1, np.nan)
        run.record(state["it"], ev, float(np.abs(g).max()))

    bounds = None
    if bounded:
        bounds = [
            (lower if math.isfinite(lower) else None, upper if math.isfinite(upper) else None)
        ] * x0.size
    out = minimize(
        fun,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        callback=on_iter,
        options={
            "maxiter": max_iter,
            "maxcor": n_corrections,
            "gtol": gtol * max(float(np.abs(g0).max()), 1e-300),
            "ftol": ftol,
            "maxfun": 10 * max_iter,
        },
    )
    m = to_m(out.x)
    return run.result(
        m,
        "lbfgs",
        bool(out.success),
        str(out.message),
        evaluations=int(out.nfev),
        whitened=bool(whiten),
    )
