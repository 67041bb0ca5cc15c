"""Second-order optimizers on residual closures: Gauss-Newton (EGN/ENGD), GN-CG, trust regions.

Every optimizer here is a :class:`torch.optim.Optimizer` whose ``step(closure)`` takes a closure
returning the **residual vector** ``r`` (not the scalar loss); the loss is ``1/2 ||r||^2``.

* :class:`GaussNewton` -- damped Gauss-Newton with a dense Jacobian, solved in residual space
  (Woodbury/EGN) or parameter space, Armijo or grid line search, LM damping, momentum; on a PINN
  residual this is ENGD.
* :class:`GaussNewtonCG` -- matrix-free Gauss-Newton, inner solves by :func:`pdekit.core.krylov.cg`.
* :class:`TrustRegion` -- Steihaug-Toint truncated CG with GGN or exact Hessian products.
* :class:`BoundedTrustRegion` -- Coleman-Li scaled trust region for bounds on the parameters.

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
from pdekit.optim._linesearch import StepInfo
from pdekit.optim.gauss_newton import GaussNewton, gauss_newton_direction, spd_solve
from pdekit.optim.gn_cg import GaussNewtonCG
from pdekit.optim.trust_region import BoundedTrustRegion, TrustRegion, steihaug_cg

__all__ = [
    "BoundedTrustRegion",
    "FunctionalResidual",
    "GaussNewton",
    "GaussNewtonCG",
    "Linearization",
    "ParamVector",
    "PointwiseResidual",
    "ResidualClosureError",
    "StepInfo",
    "TrustRegion",
    "functional_residual",
    "gauss_newton_direction",
    "pointwise_residual",
    "spd_solve",
    "steihaug_cg",
]
