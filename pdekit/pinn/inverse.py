"""Inverse PINNs: unknown PDE coefficients as trainable deepxde ``Variable`` s.

The network and the coefficients are fitted together to the PDE residual, the boundary conditions
and point observations of the solution (``deepxde.icbc.PointSetBC``). Positive coefficients can be
trained through their logarithm, which keeps them positive and makes a relative step size.

References
----------
Raissi, Perdikaris & Karniadakis (2019), "Physics-informed neural networks", J. Comput. Phys. 378.
Lu, Meng, Mao & Karniadakis (2021), "DeepXDE", SIAM Review 63(1), 208-228.
Wang et al. (2024), "Kolmogorov Arnold Informed neural network" (KINN), arXiv:2406.11045.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pdekit.pinn.networks import import_deepxde
from pdekit.pinn.strong import strong_form_model, train

__all__ = ["Coefficients", "InverseResult", "fit_coefficients", "inverse_model"]


class Coefficients:
    """Named trainable PDE coefficients backed by ``deepxde.Variable`` s.

    Parameters
    ----------
    initial : mapping of str to float
        Initial guesses.
    positive : sequence of str
        Names trained as ``exp(v)`` (initial guesses must then be positive).

    Examples
    --------
    >>> c = Coefficients({"kappa": 2.0, "b": -1.0}, positive=["kappa"])
    >>> round(float(c["kappa"].detach()), 6), c.values()["b"], len(c.trainable)
    (2.0, -1.0, 2)
    """

    def __init__(self, initial: Mapping[str, float], *, positive: Sequence[str] = ()):
        dde = import_deepxde()
        unknown = set(positive) - set(initial)
        if unknown:
            raise ValueError(f"positive names {sorted(unknown)} are not among the coefficients")
        self.positive = frozenset(positive)
        self.variables: dict[str, torch.Tensor] = {}
        for name, value in initial.items():
            if name in self.positive and not value > 0:
                raise ValueError(f"coefficient {name!r} is positive but starts at {value}")
            v = math.log(value) if name in self.positive else float(value)
            self.variables[name] = dde.Variable(v)

    def __getitem__(self, name: str) -> torch.Tensor:
        v = self.variables[name]
        return torch.exp(v) if name in self.positive else v

    @property
    def trainable(self) -> list[torch.Tensor]:
        """The deepxde variables, for ``compile(external_trainable_variables=...)``."""
        return list(self.variables.values())

    def values(self) -> dict[str, float]:
        """Current values as floats."""
        return {name: float(self[name].detach()) for name in self.variables}


@dataclass(frozen=True)
class InverseResult:
    """Outcome of :func:`fit_coefficients`: the trained model and the coefficient estimates."""

    model: Any
    coefficients: dict[str, float]
    loss: float


def inverse_model(
    geometry: Any,
    pde: Callable[[torch.Tensor, torch.Tensor, Coefficients], Any],
    conditions: Sequence[Any],
    net: Any,
    coefficients: Coefficients,
    *,
    observe_x: np.ndarray,
    observe_u: np.ndarray,
    component: int = 0,
    **data_options,
):
    """A deepxde model for ``pde(x, u, c) = 0`` with observations of component ``component``.

    Parameters
    ----------
    geometry, conditions, net
        As in :func:`pdekit.pinn.strong.strong_form_model`.
    pde : callable ``(x, u, coefficients) -> residual``
        Reads coefficients as ``coefficients["name"]``.
    coefficients : Coefficients
    observe_x : ndarray ``(M, d)``
    observe_u : ndarray ``(M, 1)``
    component : int
    **data_options
        ``n_domain``, ``n_boundary``, ... of :func:`~pdekit.pinn.strong.strong_form_model`.

    Returns
    -------
    deepxde.Model
    """
    dde = import_deepxde()
    observed = dde.icbc.PointSetBC(observe_x, np.asarray(observe_u).reshape(len(observe_x), -1),
                                   component=component)
    return strong_form_model(
        geometry, lambda x, u: pde(x, u, coefficients), [*conditions, observed], net,
        **data_options,
    )


def fit_coefficients(
    model: Any,
    coefficients: Coefficients,
    *,
    iterations: int,
    lr: float = 1e-3,
    lbfgs_iterations: int = 0,
    loss_weights: Sequence[float] | None = None,
) -> InverseResult:
    """Train the network and the coefficients of an :func:`inverse_model` together.

    Examples
    --------
    Recover ``kappa = 0.5`` in ``-kappa u'' = kappa pi^2 sin(pi x)`` from observations of
    ``u = sin(pi x)`` (a 2-iteration smoke run):

    >>> from pdekit.pinn.networks import import_deepxde, make_net
    >>> dde = import_deepxde()
    >>> c = Coefficients({"kappa": 1.0}, positive=["kappa"])
    >>> def pde(x, u, c):
    ...     return -c["kappa"] * dde.grad.hessian(u, x) - 0.5 * np.pi**2 * torch.sin(np.pi * x)
    >>> x_obs = np.linspace(0, 1, 9)[:, None]
    >>> model = inverse_model(dde.geometry.Interval(0, 1), pde, [], make_net("mlp", [1, 8, 1]), c,
    ...                       observe_x=x_obs, observe_u=np.sin(np.pi * x_obs), n_domain=16)
    >>> sorted(fit_coefficients(model, c, iterations=2).coefficients)
    ['kappa']

    References
    ----------
    Lu et al. (2021), DeepXDE, SIAM Review 63(1).
    """
    _, state = train(
        model, iterations=iterations, lr=lr, lbfgs_iterations=lbfgs_iterations,
        loss_weights=loss_weights, external_trainable_variables=coefficients.trainable,
    )
    return InverseResult(model, coefficients.values(), float(np.sum(state.loss_train)))
