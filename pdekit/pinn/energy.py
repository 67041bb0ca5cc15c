"""Energy-form PINNs (Deep Ritz / deep energy method) on deepxde.

For a problem with a variational principle the solution minimises a functional

.. math:: \\Pi[u] = \\int_\\Omega \\psi(x, u, \\nabla u)\\, d\\Omega
          + \\sum_b \\int_{\\Gamma_b} \\beta_b(x, u)\\, d\\Gamma,

e.g. ``psi = a |grad u|^2 / 2 - f u`` for ``-div(a grad u) = f`` and ``psi = sigma : eps / 2`` with
``beta = -t . u`` on traction boundaries for linear elasticity. Essential (Dirichlet) conditions are
imposed exactly by the trial function ``u = g(x) + d(x) N(x)`` (a lift ``g`` of the boundary data
and a function ``d`` vanishing on the Dirichlet boundary, set as the network's output transform).
The integrals are Monte-Carlo / quasi-Monte-Carlo quadratures over points that the deepxde geometry
samples; :class:`EnergyData` is a ``deepxde.data.Data``, so ``deepxde.Model`` trains it (Adam,
L-BFGS, callbacks) like any deepxde problem. The loss is the energy itself: it is negative at the
minimum, and only its decrease matters.

References
----------
E & Yu (2018), "The Deep Ritz method: a deep learning-based numerical algorithm for solving
variational problems", Commun. Math. Stat. 6(1), 1-12.
Samaniego, Anitescu, Goswami, Nguyen-Thanh, Guo, Hamdia, Zhuang & Rabczuk (2020), "An energy
approach to the solution of partial differential equations in computational mechanics via machine
learning", CMAME 362, 112790.
Wang et al. (2024), "Kolmogorov Arnold Informed neural network" (KINN), arXiv:2406.11045.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from pdekit.pinn.networks import import_deepxde

__all__ = ["BoundaryTerm", "dirichlet_transform", "energy_data", "energy_model"]

Sampling = Literal["Hammersley", "pseudo", "LHS", "Halton", "Sobol"]


@dataclass(frozen=True)
class BoundaryTerm:
    """A boundary integral ``int_Gamma density(x, u) dGamma`` over part of the boundary.

    Parameters
    ----------
    density : callable ``(x, u) -> (N,)`` tensor
        E.g. ``-t . u`` for a prescribed traction ``t`` (the load potential).
    on_boundary : callable ``x (N, d) ndarray -> (N,) bool ndarray``
        Selects the boundary part among the points the geometry samples on its boundary.
    measure : float
        Length (area) of that part; the quadrature weight is ``measure / n_points``.
    """

    density: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    on_boundary: Callable[[np.ndarray], np.ndarray]
    measure: float


def dirichlet_transform(distance: Callable, lift: Callable | None = None) -> Callable:
    """Output transform ``(x, y) -> lift(x) + distance(x) * y`` imposing ``u = lift`` exactly.

    ``distance`` must vanish on the Dirichlet boundary (and only there); it may return one column
    per output component (e.g. ``[x, y]`` for ``u_x = 0`` on ``x = 0`` and ``u_y = 0`` on ``y = 0``).

    Examples
    --------
    >>> t = dirichlet_transform(lambda x: x * (1 - x), lift=lambda x: 2 + 0 * x)
    >>> t(torch.tensor([[0.0], [0.5]]), torch.tensor([[5.0], [4.0]])).flatten().tolist()
    [2.0, 3.0]
    """

    def transform(x, y):
        out = distance(x) * y
        return out if lift is None else lift(x) + out

    return transform


def _gradients(u: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``du_c/dx_j`` as ``(N, n_out, d)``, differentiable (create_graph)."""
    cols = [
        torch.autograd.grad(u[:, c].sum(), x, create_graph=True)[0] for c in range(u.shape[1])
    ]
    return torch.stack(cols, dim=1)


def _volume(geometry: Any, n: int = 200_000) -> float:
    for name in ("area", "volume"):
        v = getattr(geometry, name, None)
        if v is not None and not isinstance(v, np.ndarray | list):
            return float(v)
    lo, hi = (np.asarray(b, dtype=float) for b in geometry.bbox)
    pts = lo + (hi - lo) * np.random.default_rng(0).random((n, lo.size))
    return float(np.prod(hi - lo) * geometry.inside(pts).mean())


def _data_class() -> type:
    dde = import_deepxde()

    class EnergyData(dde.data.Data):
        """deepxde data whose loss is the energy functional (see :func:`energy_data`)."""

        def __init__(self, geometry, density, boundary_terms, n_domain, n_boundary, volume,
                     sampling, resample, solution):
            self.geometry, self.density = geometry, density
            self.boundary_terms = tuple(boundary_terms)
            self.n_domain, self.n_boundary = n_domain, n_boundary
            self.volume = _volume(geometry) if volume is None else float(volume)
            self.sampling, self.resample = sampling, resample
            self.soln = solution
            self._train = self._test = self._sample(sampling)

        def _sample(self, sampling):
            x = self.geometry.random_points(self.n_domain, random=sampling)
            parts, sizes = [x], [len(x)]
            if self.boundary_terms:
                xb = self.geometry.random_boundary_points(self.n_boundary, random=sampling)
                for term in self.boundary_terms:
                    pts = xb[np.asarray(term.on_boundary(xb), dtype=bool)]
                    if len(pts) == 0:
                        raise ValueError(
                            f"none of {len(xb)} boundary points lies on a BoundaryTerm; "
                            "raise n_boundary or check on_boundary"
                        )
                    parts.append(pts)
                    sizes.append(len(pts))
            return np.concatenate(parts).astype(dde.config.real(np)), tuple(sizes)

        def _energy(self, sizes, outputs, inputs):
            n = sizes[0]
            du = _gradients(outputs, inputs)[:n]
            out = [self.volume * self.density(inputs[:n], outputs[:n], du).mean()]
            for term, m in zip(self.boundary_terms, sizes[1:]):
                sl = slice(n, n + m)
                out.append(term.measure * term.density(inputs[sl], outputs[sl]).mean())
                n += m
            return out

        def losses_train(self, targets, outputs, loss_fn, inputs, model, aux=None):
            return self._energy(self._train[1], outputs, inputs)

        def losses_test(self, targets, outputs, loss_fn, inputs, model, aux=None):
            return self._energy(self._test[1], outputs, inputs)

        def train_next_batch(self, batch_size=None):
            if self.resample:
                self._train = self._sample(self.sampling)
            return self._train[0], self._y(self._train[0])

        def test(self):
            return self._test[0], self._y(self._test[0])

        def _y(self, x):
            return None if self.soln is None else self.soln(x)

    return EnergyData


def energy_data(
    geometry: Any,
    density: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    n_domain: int,
    boundary_terms: Sequence[BoundaryTerm] = (),
    n_boundary: int = 0,
    volume: float | None = None,
    sampling: Sampling = "Hammersley",
    resample: bool = False,
    solution: Callable[[np.ndarray], np.ndarray] | None = None,
):
    """deepxde data for the energy ``volume * mean psi + sum_b measure_b * mean beta_b``.

    Parameters
    ----------
    geometry : deepxde geometry
    density : callable ``(x, u, grad_u) -> (N,)``
        Energy density ``psi``; ``grad_u`` has shape ``(N, n_out, d)``.
    n_domain : int
        Quadrature points inside (sampled by the geometry).
    boundary_terms : sequence of BoundaryTerm
    n_boundary : int
        Boundary points sampled before the terms select theirs.
    volume : float, optional
        Measure of the domain; by default the geometry's ``area``/``volume`` or a Monte-Carlo
        estimate in its bounding box.
    sampling : str
        deepxde sampler; ``"Hammersley"`` is a quasi-Monte-Carlo rule.
    resample : bool
        Draw new points every iteration (stochastic quadrature; not for L-BFGS). A
        quasi-random sampler then gives the same points each time, so use ``"pseudo"``.
    solution : callable, optional
        Exact solution (numpy) for the ``"l2 relative error"`` metric on the quadrature points.

    Returns
    -------
    EnergyData (a ``deepxde.data.Data``)

    References
    ----------
    E & Yu (2018), Deep Ritz, Commun. Math. Stat. 6(1).
    """
    if n_domain < 2:
        raise ValueError(f"n_domain must be >= 2, got {n_domain}")
    if boundary_terms and n_boundary < 1:
        raise ValueError("boundary_terms need n_boundary >= 1 boundary points")
    return _data_class()(geometry, density, boundary_terms, n_domain, n_boundary, volume,
                         sampling, resample, solution)


def energy_model(
    geometry: Any,
    density: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    net: Any,
    *,
    distance: Callable[[torch.Tensor], torch.Tensor] | None,
    lift: Callable[[torch.Tensor], torch.Tensor] | None = None,
    **data_options,
):
    """A deepxde model minimising an energy, with essential BCs through a distance function.

    Sets ``net``'s output transform to ``lift(x) + distance(x) * N(x)`` (see
    :func:`dirichlet_transform`; ``distance=None`` keeps the net's own transform, for pure
    natural boundary conditions set none). Train it with :func:`pdekit.pinn.strong.train`.

    Parameters
    ----------
    geometry, density
        See :func:`energy_data`.
    net : deepxde network (e.g. :func:`pdekit.pinn.networks.make_net`)
    distance, lift : callable, optional
    **data_options
        Passed to :func:`energy_data` (``n_domain``, ``boundary_terms``, ``solution``, ...).

    Returns
    -------
    deepxde.Model

    References
    ----------
    E & Yu (2018), Deep Ritz, Commun. Math. Stat. 6(1); Wang et al. (2024) KINN,
    arXiv:2406.11045.

    Examples
    --------
    Poisson ``-u'' = pi^2 sin(pi x)`` on ``[0, 1]`` with ``u(0) = u(1) = 0``:

    >>> import numpy as np
    >>> from pdekit.pinn.networks import import_deepxde, make_net
    >>> from pdekit.pinn.strong import train
    >>> dde = import_deepxde()
    >>> def psi(x, u, du):
    ...     return 0.5 * du[:, 0, 0] ** 2 - np.pi**2 * torch.sin(np.pi * x[:, 0]) * u[:, 0]
    >>> net = make_net("kan_bspline", [1, 4, 1], input_range=(0.0, 1.0))
    >>> model = energy_model(dde.geometry.Interval(0, 1), psi, net, distance=lambda x: x * (1 - x),
    ...                      n_domain=64, solution=lambda x: np.sin(np.pi * x))
    >>> _ = train(model, iterations=5, lr=1e-2)
    """
    if distance is not None:
        net.apply_output_transform(dirichlet_transform(distance, lift))
    elif lift is not None:
        raise ValueError("a lift needs a distance function")
    dde = import_deepxde()
    return dde.Model(energy_data(geometry, density, **data_options), net)
