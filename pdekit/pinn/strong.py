"""Strong-form PINNs on deepxde (``dde.data.PDE`` / ``dde.data.TimePDE``) with KAN or MLP networks.

The residual ``pde(x, u)`` is written with ``deepxde.grad`` (or plain autograd); deepxde samples the
collocation points, builds the mean-squared residual and boundary losses and runs the optimiser.
This module adds only the glue: one call to build the :class:`deepxde.Model`, one to train it
(Adam, optionally followed by L-BFGS), and a callback that updates KAN grids during training.

References
----------
Raissi, Perdikaris & Karniadakis (2019), "Physics-informed neural networks", J. Comput. Phys. 378.
Lu, Meng, Mao & Karniadakis (2021), "DeepXDE", SIAM Review 63(1), 208-228.
Wang et al. (2024), "Kolmogorov Arnold Informed neural network" (KINN), arXiv:2406.11045.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch

from pdekit.pinn.networks import import_deepxde

__all__ = ["grid_update_callback", "strong_form_model", "train"]


def strong_form_model(
    geometry: Any,
    pde: Callable,
    conditions: Sequence[Any],
    net: Any,
    *,
    n_domain: int,
    n_boundary: int = 0,
    n_initial: int = 0,
    solution: Callable[[np.ndarray], np.ndarray] | None = None,
    n_test: int | None = None,
    train_distribution: Literal["Hammersley", "uniform", "pseudo", "LHS", "Halton", "Sobol"] = "Hammersley",
    anchors: np.ndarray | None = None,
):
    """A deepxde model for the strong form ``pde(x, u) = 0`` plus boundary/initial conditions.

    Parameters
    ----------
    geometry : deepxde geometry
        A ``GeometryXTime`` gives a ``TimePDE`` (with ``n_initial`` initial points), anything else a
        ``PDE``.
    pde : callable ``(x, u) -> residual`` (tensor or list of tensors)
    conditions : sequence of deepxde BCs/ICs (may be empty with hard constraints)
    net : deepxde network (e.g. from :func:`pdekit.pinn.networks.make_net`)
    n_domain, n_boundary, n_initial : int
        Collocation points inside, on the boundary and at ``t = 0``.
    solution : callable, optional
        Exact solution ``x -> u`` (numpy), for the ``"l2 relative error"`` metric.
    n_test : int, optional
    train_distribution : str
    anchors : array, optional
        Extra fixed collocation points.

    Returns
    -------
    deepxde.Model

    References
    ----------
    Lu et al. (2021), DeepXDE, SIAM Review 63(1).

    Examples
    --------
    >>> import numpy as np
    >>> from pdekit.pinn.networks import import_deepxde, make_net
    >>> dde = import_deepxde()
    >>> def pde(x, u):
    ...     return -dde.grad.hessian(u, x) - np.pi**2 * torch.sin(np.pi * x)
    >>> net = make_net("mlp", [1, 16, 16, 1], input_range=(-1.0, 1.0))
    >>> net.apply_output_transform(lambda x, u: (1 - x**2) * u)
    >>> model = strong_form_model(dde.geometry.Interval(-1, 1), pde, [], net, n_domain=32,
    ...                           solution=lambda x: np.sin(np.pi * x))
    >>> _ = train(model, iterations=5)
    """
    dde = import_deepxde()
    kwargs: dict[str, Any] = dict(
        num_domain=n_domain,
        num_boundary=n_boundary,
        train_distribution=train_distribution,
        anchors=anchors,
        solution=solution,
        num_test=n_test,
    )
    if isinstance(geometry, dde.geometry.GeometryXTime):
        data = dde.data.TimePDE(geometry, pde, list(conditions), num_initial=n_initial, **kwargs)
    else:
        if n_initial:
            raise ValueError("n_initial needs a space-time geometry (deepxde GeometryXTime)")
        data = dde.data.PDE(geometry, pde, list(conditions), **kwargs)
    return dde.Model(data, net)


def train(
    model: Any,
    *,
    iterations: int,
    lr: float = 1e-3,
    optimizer: Literal["adam", "sgd", "rmsprop", "adamw"] = "adam",
    lbfgs_iterations: int = 0,
    loss_weights: Sequence[float] | None = None,
    decay: tuple | None = None,
    external_trainable_variables: Sequence[torch.Tensor] | None = None,
    callbacks: Sequence[Any] = (),
    display_every: int = 1000,
    verbose: int = 0,
):
    """Compile and train a deepxde model: ``iterations`` of a first-order optimiser, then L-BFGS.

    The ``"l2 relative error"`` metric is added when the data knows the exact solution.

    Parameters
    ----------
    model : deepxde.Model
    iterations : int
        First-order optimiser steps (0 skips them).
    lr : float
    optimizer : str
    lbfgs_iterations : int
        Maximum L-BFGS iterations afterwards (0 = none). Use float64 if it stops early.
    loss_weights : sequence of float, optional
    decay : tuple, optional
        deepxde learning-rate decay, e.g. ``("step", 1000, 0.5)``.
    external_trainable_variables : sequence of Tensor, optional
        ``deepxde.Variable`` s trained with the network (inverse problems).
    callbacks : sequence of deepxde callbacks
    display_every : int
    verbose : int
        deepxde's printing (0 = quiet).

    Returns
    -------
    (deepxde.model.LossHistory, deepxde.model.TrainState)
    """
    dde = import_deepxde()
    has_solution = getattr(model.data, "soln", None) is not None
    metrics = ["l2 relative error"] if has_solution else None
    extra = list(external_trainable_variables) if external_trainable_variables else None
    history = state = None
    if iterations > 0:
        model.compile(
            optimizer, lr=lr, metrics=metrics, loss_weights=loss_weights, decay=decay,
            external_trainable_variables=extra, verbose=verbose,
        )
        history, state = model.train(
            iterations=iterations, callbacks=list(callbacks), display_every=display_every,
            verbose=verbose,
        )
    if lbfgs_iterations > 0:
        dde.optimizers.set_LBFGS_options(maxiter=lbfgs_iterations)
        model.compile(
            "L-BFGS", metrics=metrics, loss_weights=loss_weights,
            external_trainable_variables=extra, verbose=verbose,
        )
        history, state = model.train(
            callbacks=list(callbacks), display_every=display_every, verbose=verbose
        )
    if history is None:
        raise ValueError("nothing to train: iterations and lbfgs_iterations are both 0")
    return history, state


def grid_update_callback(kan: torch.nn.Module, *, every: int, stop_after: int | None = None,
                         margin: float = 0.01):
    """A deepxde callback that updates a KAN's grids to the current training points.

    Every ``every`` iterations (until ``stop_after``) it calls ``kan.update_grid(X_train)``
    (:meth:`pdekit.pinn.kan.KAN.update_grid`). deepxde has no hook for this, and the Adam
    moments of the refit spline weights are kept as they were.

    Parameters
    ----------
    kan : KAN
        The module inside the deepxde network (``net.module``).
    every : int
    stop_after : int, optional
    margin : float

    Examples
    --------
    >>> from pdekit.pinn.kan import KAN
    >>> cb = grid_update_callback(KAN([1, 3, 1]), every=100)
    >>> type(cb).__name__
    'GridUpdate'
    """
    dde = import_deepxde()
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")

    class GridUpdate(dde.callbacks.Callback):
        def on_batch_end(self):
            step = self.model.train_state.step
            if step % every or (stop_after is not None and step > stop_after):
                return
            param = next(kan.parameters())
            x = torch.as_tensor(self.model.train_state.X_train, dtype=param.dtype, device=param.device)
            kan.update_grid(x, margin=margin)

    return GridUpdate()
