"""Inverse problems: observations, priors, adjoint gradients, Gauss-Newton / trust-region / L-BFGS
estimation and neural-operator surrogate inversion (see ``docs/inverse.md``).

The Gauss-Newton-CG and trust-region drivers are thin clients of :mod:`pdekit.optim` (Steihaug-CG,
Coleman-Li scaling, the line search, Eisenstat-Walker forcing); ``EisenstatWalker`` and
``steihaug_cg`` are re-exported from there."""

from pdekit.inverse.estimate import METHODS, estimate
from pdekit.inverse.forward import DarcyModel, HeatSourceModel, SolveCounter
from pdekit.inverse.gauss_newton import gauss_newton_cg
from pdekit.inverse.lbfgs import lbfgs
from pdekit.inverse.observations import (
    BoundaryObservation,
    GaussianNoise,
    ObservationOperator,
    Observations,
    PointObservation,
    SubsampledObservation,
    random_points,
)
from pdekit.inverse.parameterisation import (
    Identity,
    LogCoefficient,
    ModalLogCoefficient,
    Parameterisation,
)
from pdekit.inverse.priors import (
    GaussianRandomFieldPrior,
    H1Smoothness,
    Regulariser,
    SpectralPrior,
    Tikhonov,
    TotalVariation,
)
from pdekit.inverse.problem import Evaluation, InverseProblem, Objective, taylor_test
from pdekit.inverse.result import InversionResult
from pdekit.inverse.surrogate import SurrogateModel, surrogate_inversion, train_surrogate
from pdekit.inverse.trust_region import trust_region
from pdekit.optim import EisenstatWalker, steihaug_cg  # re-exported: the solvers live in optim

__all__ = [
    "METHODS",
    "BoundaryObservation",
    "DarcyModel",
    "EisenstatWalker",
    "Evaluation",
    "GaussianNoise",
    "GaussianRandomFieldPrior",
    "H1Smoothness",
    "HeatSourceModel",
    "Identity",
    "InverseProblem",
    "InversionResult",
    "LogCoefficient",
    "ModalLogCoefficient",
    "ObservationOperator",
    "Objective",
    "Observations",
    "Parameterisation",
    "PointObservation",
    "Regulariser",
    "SolveCounter",
    "SpectralPrior",
    "SubsampledObservation",
    "SurrogateModel",
    "Tikhonov",
    "TotalVariation",
    "estimate",
    "gauss_newton_cg",
    "lbfgs",
    "random_points",
    "steihaug_cg",
    "surrogate_inversion",
    "taylor_test",
    "train_surrogate",
    "trust_region",
]
