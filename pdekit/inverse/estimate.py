"""One entry point for parameter estimation: :func:`estimate`."""

from __future__ import annotations

from typing import Literal

import torch

from pdekit.inverse.observations import Observations
from pdekit.inverse.priors import SpectralPrior
from pdekit.inverse.problem import InverseProblem
from pdekit.inverse.result import InversionResult

__all__ = ["estimate", "METHODS"]

Method = Literal["gauss-newton", "trust-region", "lbfgs", "surrogate"]
METHODS: tuple[str, ...] = ("gauss-newton", "trust-region", "lbfgs", "surrogate")


def estimate(
    problem: InverseProblem,
    observations: Observations,
    method: Method = "gauss-newton",
    *,
    m0: torch.Tensor | None = None,
    **options,
) -> InversionResult:
    """Estimate the parameter of ``problem`` from ``observations``.

    Parameters
    ----------
    problem : InverseProblem
        Forward model + regulariser.
    observations : Observations
        Operator, data and noise model.
    method : {"gauss-newton", "trust-region", "lbfgs", "surrogate"}
        :func:`~pdekit.inverse.gauss_newton.gauss_newton_cg`,
        :func:`~pdekit.inverse.trust_region.trust_region`, :func:`~pdekit.inverse.lbfgs.lbfgs`,
        or :func:`~pdekit.inverse.surrogate.surrogate_inversion` (needs ``surrogate=``: a
        :class:`~pdekit.inverse.surrogate.SurrogateModel`, an ``nn.Module`` or a checkpoint path).
    m0 : Tensor, optional
        Initial parameter; default the prior mean (zeros for non-Gaussian regularisers).
    **options
        Passed to the driver (``max_iter``, ``gtol``, ``forcing``, ``refine_iter``, ...).

    Returns
    -------
    InversionResult
        ``m``, ``coefficient``, ``history`` (per iteration: objective, misfit, PDE solves, seconds)
        and ``diagnostics`` (solve counts by kind, convergence, timings).

    Examples
    --------
    >>> import torch
    >>> from pdekit.core.grid import Grid
    >>> from pdekit.inverse import (DarcyModel, GaussianRandomFieldPrior, InverseProblem,
    ...                             Observations, PointObservation, estimate, random_points)
    >>> g = Grid((17, 17))
    >>> gen = torch.Generator().manual_seed(0)
    >>> prior = GaussianRandomFieldPrior(g, alpha=2.0, tau=3.0, sigma=0.5)
    >>> problem = InverseProblem(DarcyModel(g), prior)
    >>> truth = prior.sample(1, gen)[0]
    >>> obs = Observations.synthetic(PointObservation(g, random_points(40, generator=gen)),
    ...                              problem.model.solve(truth), 0.01, gen)
    >>> res = estimate(problem, obs, "gauss-newton")
    >>> res.diagnostics["converged"], res.history[-1]["misfit"] < res.history[0]["misfit"]
    (True, True)

    References
    ----------
    .. [1] U. Villa, N. Petra, O. Ghattas, "hIPPYlib", ACM Trans. Math. Softw. 47 (2021) 16.
    .. [2] J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer, 2006.
    """
    if not isinstance(problem, InverseProblem):
        raise TypeError(
            f"problem must be a pdekit.inverse.InverseProblem, got {type(problem).__name__}"
        )
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    objective = problem.objective(observations)
    if m0 is None:
        prior = problem.prior
        m0 = (
            prior.mean.clone()
            if isinstance(prior, SpectralPrior)
            else torch.zeros(problem.model.param_shape, dtype=torch.float64)
        )
    if method == "gauss-newton":
        from pdekit.inverse.gauss_newton import gauss_newton_cg

        return gauss_newton_cg(objective, m0, **options)
    if method == "trust-region":
        from pdekit.inverse.trust_region import trust_region

        return trust_region(objective, m0, **options)
    if method == "lbfgs":
        from pdekit.inverse.lbfgs import lbfgs

        return lbfgs(objective, m0, **options)
    from pdekit.inverse.surrogate import SurrogateModel, surrogate_inversion

    sur = options.pop("surrogate", None)
    if sur is None:
        raise ValueError(
            "method='surrogate' needs surrogate=<SurrogateModel, nn.Module or checkpoint path>"
        )
    if not isinstance(sur, SurrogateModel):
        sur = SurrogateModel(
            sur,
            problem.model.grid,
            problem.model.parameterisation,
            output_scale=options.pop("output_scale", 1.0),
        )
    return surrogate_inversion(objective, sur, m0, **options)
