"""Second-order optimization: Gauss-Newton (EGN/ENGD), GN-CG and trust regions, one stack.

The ``torch.optim`` optimizers take a closure returning the **residual vector** ``r`` (not the
scalar loss); the loss is ``1/2 ||r||^2``.

* :class:`GaussNewton` -- damped Gauss-Newton with a dense Jacobian, solved in residual space
  (Woodbury/EGN) or parameter space, Armijo or grid line search, LM damping, momentum; on a PINN
  residual this is ENGD.
* :class:`GaussNewtonCG` -- matrix-free Gauss-Newton, inner solves by :func:`pdekit.core.krylov.cg`.
* :class:`TrustRegion` -- Steihaug-Toint truncated CG with GGN or exact Hessian products.
* :class:`BoundedTrustRegion` -- Coleman-Li scaled trust region for bounds on the parameters.

The functional cores they are built on are also what :mod:`pdekit.inverse` drives:
:func:`steihaug_cg` (preconditioned, metric-aware, returns a :class:`CGResult`),
:func:`trust_region_step` with :class:`ColemanLi` scaling and :func:`update_radius`,
:func:`newton_direction` + :func:`line_search` (the Gauss-Newton-CG step), :class:`Damping`,
:class:`LineSearch` and :class:`EisenstatWalker`.

:func:`pointwise_residual` and :func:`functional_residual` build closures whose Jacobian products
use ``torch.func`` (``vmap(jacrev)`` per point: the fast path for PINNs). See ``docs/optim.md``.
"""

from pdekit.optim._functional import (
    FunctionalResidual,
    Linearization,
    ParamVector,
    PointwiseResidual,
    ResidualClosureError,
    functional_residual,
    pointwise_residual,
)
from pdekit.optim._linesearch import Damping, LineSearch, SearchResult, StepInfo, line_search
from pdekit.optim.forcing import EisenstatWalker, relative_forcing
from pdekit.optim.gauss_newton import GaussNewton, gauss_newton_direction, spd_solve
from pdekit.optim.gn_cg import GaussNewtonCG, newton_direction
from pdekit.optim.steihaug import CGResult, dot, steihaug_cg
from pdekit.optim.trust_region import (
    BoundedTrustRegion,
    ColemanLi,
    TrustRegion,
    TrustRegionOptions,
    TrustRegionStep,
    coleman_li_scaling,
    max_step_fraction,
    trust_region_step,
    update_radius,
)

__all__ = [
    "BoundedTrustRegion",
    "CGResult",
    "ColemanLi",
    "Damping",
    "EisenstatWalker",
    "FunctionalResidual",
    "GaussNewton",
    "GaussNewtonCG",
    "LineSearch",
    "Linearization",
    "ParamVector",
    "PointwiseResidual",
    "ResidualClosureError",
    "SearchResult",
    "StepInfo",
    "TrustRegion",
    "TrustRegionOptions",
    "TrustRegionStep",
    "coleman_li_scaling",
    "dot",
    "functional_residual",
    "gauss_newton_direction",
    "line_search",
    "max_step_fraction",
    "newton_direction",
    "pointwise_residual",
    "relative_forcing",
    "spd_solve",
    "steihaug_cg",
    "trust_region_step",
    "update_radius",
]
