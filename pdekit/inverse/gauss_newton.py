"""Matrix-free inexact Gauss-Newton-CG with Eisenstat-Walker forcing and an Armijo line search.

hIPPYlib's reduced-space Newton-CG with the Gauss-Newton Hessian: at each iterate ``m_k``

1. the gradient ``g_k`` (one forward + one adjoint solve; the forward is cached from the line
   search);
2. the step solves ``H_GN d = -g_k`` by CG preconditioned with the prior (``R^{-1}``), to the
   relative tolerance ``eta_k`` of the Eisenstat-Walker forcing term (each CG iteration = one
   Hessian action = one incremental forward + one incremental adjoint solve);
3. Armijo backtracking ``J(m + a d) <= J(m) + c a g^T d`` (``c = 1e-4``, halving; one forward solve
   per trial), projected onto the box bounds of the parameterisation if any.

Convergence is measured in the prior-preconditioned norm ``sqrt(g^T R^{-1} g)`` (mesh independent).

References
----------
.. [1] U. Villa, N. Petra, O. Ghattas, "hIPPYlib: an extensible software framework for large-scale
   inverse problems governed by PDEs: Part I", ACM Trans. Math. Softw. 47 (2021) 16.
.. [2] S. C. Eisenstat and H. F. Walker, "Choosing the forcing terms in an inexact Newton method",
   SIAM J. Sci. Comput. 17 (1996) 16-32.
.. [3] J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer, 2006, ch. 3, 7, 10.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from pdekit.inverse.problem import Objective, dot
from pdekit.inverse.result import History, InversionResult
from pdekit.inverse.trust_region import EisenstatWalker, steihaug_cg

__all__ = ["gauss_newton_cg"]


def gauss_newton_cg(
    objective: Objective,
    m0: torch.Tensor,
    *,
    max_iter: int = 30,
    gtol: float = 1e-6,
    forcing: str | float = "ew2",
    max_cg: int = 100,
    c_armijo: float = 1e-4,
    max_backtrack: int = 12,
    callback: Callable[[dict], None] | None = None,
) -> InversionResult:
    """Inexact Gauss-Newton-CG with Eisenstat-Walker forcing and Armijo backtracking.

    Parameters
    ----------
    objective : Objective
    m0 : Tensor
        Initial parameter.
    max_iter : int
        Newton iterations.
    gtol : float
        Stop when ``||g||_{R^{-1}}`` drops by this factor.
    forcing : {"ew2", "hippylib"} or float
        CG tolerance rule (:class:`~pdekit.inverse.trust_region.EisenstatWalker`).
    max_cg : int
        CG iterations per Newton step.
    c_armijo, max_backtrack : float, int
        Sufficient-decrease constant and the most step halvings.
    callback : callable, optional
        Called with each history record.

    Returns
    -------
    InversionResult

    Examples
    --------
    >>> import torch
    >>> from pdekit.core.grid import Grid
    >>> from pdekit.inverse import (HeatSourceModel, H1Smoothness, InverseProblem, Observations,
    ...                             SubsampledObservation)
    >>> g = Grid((9, 9))
    >>> model = HeatSourceModel(g, n_steps=3, dt=0.05)
    >>> problem = InverseProblem(model, H1Smoothness(g, gamma=1e-6, delta=1e-6))
    >>> obs = Observations.synthetic(SubsampledObservation(g, 1), model.solve(
    ...     torch.ones(9, 9, dtype=torch.float64)), 1e-3, torch.Generator().manual_seed(0))
    >>> res = gauss_newton_cg(problem.objective(obs), torch.zeros(9, 9, dtype=torch.float64),
    ...                       forcing=1e-12)
    >>> res.diagnostics["converged"], res.diagnostics["iterations"]   # linear: one exact GN step
    (True, 1)
    """
    lower, upper = objective.model.parameterisation.bounds
    bounded = math.isfinite(lower) or math.isfinite(upper)

    def project(x):
        if not bounded:
            return x
        return x.clamp(
            min=lower if math.isfinite(lower) else None, max=upper if math.isfinite(upper) else None
        )

    prior = objective.prior
    P = prior.precondition if prior.precondition(torch.zeros_like(m0)) is not None else None
    m = project(m0.detach().to(torch.float64).clone())
    hist = History(objective.counter)
    ew = EisenstatWalker(forcing)
    ev, g = objective.value_and_gradient(m)
    gnorm0 = None
    converged, message = False, "maximum iterations reached"
    for k in range(max_iter + 1):
        gnorm = math.sqrt(max(float(dot(g, P(g) if P else g)), 0.0))
        gnorm0 = gnorm if gnorm0 is None else gnorm0
        rec = hist.add(k, ev, gnorm)
        if callback:
            callback(rec)
        if gnorm <= gtol * gnorm0:
            converged, message = True, "gradient tolerance reached"
            break
        if k == max_iter:
            break
        H = objective.gauss_newton_hessian(m)
        cg = steihaug_cg(H, g, precond=P, rtol=ew(gnorm), maxiter=max_cg)
        d = cg.s
        slope = float(dot(g, d))
        if (
            slope >= 0
        ):  # not a descent direction (cannot happen for SPD H_GN + R''): steepest descent
            d = -(P(g) if P else g)
            slope = float(dot(g, d))
        alpha, accepted = 1.0, False
        for _ in range(max_backtrack):
            trial_m = project(m + alpha * d)
            trial = objective.evaluate(trial_m)
            if trial.value <= ev.value + c_armijo * float(dot(g, trial_m - m)):
                accepted = True
                break
            alpha *= 0.5
        hist.records[-1].update(cg_iterations=cg.iterations, cg_stop=cg.reason, step=alpha)
        if not accepted:
            message = "line search failed"
            break
        m = trial_m
        ev, g = objective.value_and_gradient(m)
        if -slope * alpha < 1e-14 * max(1.0, abs(ev.value)):
            converged, message = True, "no further decrease"
            rec = hist.add(k + 1, ev, math.sqrt(max(float(dot(g, P(g) if P else g)), 0.0)))
            break
    return hist.result(objective, m, "gauss-newton", converged, message)
