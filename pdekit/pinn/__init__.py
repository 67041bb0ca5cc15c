"""Physics-informed networks on deepxde: strong, energy (Deep Ritz) and inverse forms with KAN or MLP.

* :mod:`pdekit.pinn.networks` -- :func:`make_net`, :func:`deepxde_net` (a ``deepxde.nn.NN`` around
  any point-wise torch module that honours deepxde's input/output transforms), :class:`MLP`.
* :mod:`pdekit.pinn.strong` -- :func:`strong_form_model` (``dde.data.PDE`` / ``TimePDE``),
  :func:`train`, :func:`grid_update_callback`.
* :mod:`pdekit.pinn.energy` -- :func:`energy_model` (energy functional, quadrature over
  deepxde-sampled points, essential BCs through a distance function), :class:`BoundaryTerm`.
* :mod:`pdekit.pinn.inverse` -- :class:`Coefficients` (deepxde ``Variable`` s),
  :func:`inverse_model`, :func:`fit_coefficients`.
* :mod:`pdekit.pinn.kan` -- KAN layers (:class:`KAN`, :class:`BSplineKANLayer`,
  :class:`ChebyshevKANLayer`): point-wise torch modules, not registry models.
* :mod:`pdekit.pinn.second_order` -- :func:`pinn_problem`, :class:`PINNProblem` and
  :func:`train_pinn_second_order`: PINNs trained by the optimizers of :mod:`pdekit.optim` (no
  deepxde).

deepxde is imported on first use (PyTorch backend); importing this package imports neither deepxde
nor the submodules.

References
----------
Lu, Meng, Mao & Karniadakis (2021), "DeepXDE", SIAM Review 63(1), 208-228.
Wang et al. (2024), "Kolmogorov Arnold Informed neural network" (KINN), arXiv:2406.11045.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

_EXPORTS = {
    "MLP": "networks",
    "deepxde_net": "networks",
    "import_deepxde": "networks",
    "make_net": "networks",
    "mlp_width_for": "networks",
    "n_params": "networks",
    "strong_form_model": "strong",
    "train": "strong",
    "grid_update_callback": "strong",
    "BoundaryTerm": "energy",
    "dirichlet_transform": "energy",
    "energy_data": "energy",
    "energy_model": "energy",
    "Coefficients": "inverse",
    "InverseResult": "inverse",
    "fit_coefficients": "inverse",
    "inverse_model": "inverse",
    "KAN": "kan",
    "BSplineKANLayer": "kan",
    "ChebyshevKANLayer": "kan",
    "PINNHistory": "second_order",
    "PINNProblem": "second_order",
    "pinn_problem": "second_order",
    "train_pinn_second_order": "second_order",
}

__all__ = [*sorted(_EXPORTS), "relative_l2_error"]


def relative_l2_error(pred: Any, ref: Any) -> float:
    """Relative L2 error ``||pred - ref|| / ||ref||`` over all entries, as one float64 number.

    ``pred`` and ``ref`` are array-likes (numpy arrays, lists, CPU tensors); vector fields count
    all their components. For per-sample errors of torch batches use
    :func:`pdekit.train.relative_l2`.

    Examples
    --------
    >>> round(relative_l2_error([1.0, 3.0], [1.0, 1.0]), 6)
    1.414214
    """
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64).reshape(pred.shape)
    return float(np.linalg.norm(pred - ref) / np.linalg.norm(ref))


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"pdekit.pinn.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'pdekit.pinn' has no attribute {name!r}")
