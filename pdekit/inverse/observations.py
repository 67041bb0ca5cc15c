"""Observation operators and Gaussian noise models for inverse problems.

An observation operator ``O`` maps a nodal field on a :class:`~pdekit.core.grid.Grid`
(``(*grid.shape)`` or ``(B, *grid.shape)``, boundary nodes included) to a vector of ``n_obs`` data
``(B, n_obs)``. Every operator here is linear and sparse: each datum is a weighted sum of at most
``2**ndim`` nodal values (multilinear interpolation for point sensors, a single node for grid
subsampling and boundary data), so ``apply`` is a gather and ``adjoint`` a scatter-add, exactly
transposed: ``<O x, y> = <x, O^T y>``.

A :class:`GaussianNoise` model holds the standard deviation of every datum; :class:`Observations`
pairs an operator with data and noise and gives the weighted misfit
``0.5 * sum(((O u - d) / sigma) ** 2)`` used by :mod:`pdekit.inverse.problem`.

References
----------
.. [1] U. Villa, N. Petra, O. Ghattas, "hIPPYlib: an extensible software framework for large-scale
   inverse problems governed by PDEs: Part I: deterministic inversion and linearized Bayesian
   inference", ACM Trans. Math. Softw. 47 (2021) 16 (pointwise observation operators ``B``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from pdekit.core.grid import Grid

__all__ = [
    "ObservationOperator",
    "PointObservation",
    "SubsampledObservation",
    "BoundaryObservation",
    "GaussianNoise",
    "Observations",
    "random_points",
]


class ObservationOperator:
    """A sparse linear map from nodal fields on ``grid`` to ``n_obs`` data.

    Datum ``k`` is ``sum_j weight[k, j] * u.flatten()[index[k, j]]``.

    Parameters
    ----------
    grid : Grid
    index : LongTensor ``(n_obs, n_terms)``
        Flat (C-order) node indices into ``grid.shape``.
    weight : Tensor ``(n_obs, n_terms)``
        Float64 weights.
    name : str
    """

    def __init__(self, grid: Grid, index: torch.Tensor, weight: torch.Tensor, name: str):
        if index.shape != weight.shape or index.dim() != 2:
            raise ValueError(f"{name}: index and weight must both be (n_obs, n_terms)")
        if index.shape[0] == 0:
            raise ValueError(f"{name}: no observations")
        n_nodes = 1
        for s in grid.shape:
            n_nodes *= s
        if int(index.min()) < 0 or int(index.max()) >= n_nodes:
            raise ValueError(f"{name}: node index out of range for grid {grid.shape}")
        self.grid = grid
        self.index = index.long()
        self.weight = weight.to(torch.float64)
        self.name = name

    @property
    def n_obs(self) -> int:
        return int(self.index.shape[0])

    def _flat(self, u: torch.Tensor) -> tuple[torch.Tensor, bool]:
        nd, shape = self.grid.ndim, self.grid.shape
        if not isinstance(u, torch.Tensor):
            raise TypeError(f"{self.name}: expected a torch.Tensor field, got {type(u).__name__}")
        if tuple(u.shape[u.dim() - nd :]) != shape or u.dim() not in (nd, nd + 1):
            raise ValueError(
                f"{self.name}: expected a field of shape (B, {', '.join(map(str, shape))}) or "
                f"{shape}, got {tuple(u.shape)}"
            )
        single = u.dim() == nd
        u = u.unsqueeze(0) if single else u
        return u.reshape(u.shape[0], -1), single

    def apply(self, u: torch.Tensor) -> torch.Tensor:
        """Observe a field: ``(B, *grid.shape) -> (B, n_obs)`` (``(*grid.shape) -> (n_obs,)``)."""
        flat, single = self._flat(u)
        idx, w = self.index.to(flat.device), self.weight.to(flat)
        y = (flat[:, idx] * w).sum(-1)
        return y[0] if single else y

    __call__ = apply

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """The transpose: ``(B, n_obs) -> (B, *grid.shape)`` (``(n_obs,) -> (*grid.shape)``)."""
        if not isinstance(y, torch.Tensor) or y.shape[-1] != self.n_obs or y.dim() not in (1, 2):
            shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"{self.name}: expected data of shape (B, {self.n_obs}), got {shape}")
        single = y.dim() == 1
        y = y.unsqueeze(0) if single else y
        idx, w = self.index.to(y.device), self.weight.to(y)
        n_nodes = 1
        for s in self.grid.shape:
            n_nodes *= s
        out = y.new_zeros(y.shape[0], n_nodes)
        contrib = (y.unsqueeze(-1) * w).reshape(y.shape[0], -1)
        out.index_add_(1, idx.reshape(-1), contrib)
        out = out.reshape(y.shape[0], *self.grid.shape)
        return out[0] if single else out

    def to_dense(self) -> torch.Tensor:
        """The ``(n_obs, n_nodes)`` matrix (for tests and small problems)."""
        n_nodes = 1
        for s in self.grid.shape:
            n_nodes *= s
        A = torch.zeros(self.n_obs, n_nodes, dtype=torch.float64)
        rows = torch.arange(self.n_obs).unsqueeze(1).expand_as(self.index)
        A.index_put_(
            (rows.reshape(-1), self.index.reshape(-1)), self.weight.reshape(-1), accumulate=True
        )
        return A

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_obs={self.n_obs}, grid={self.grid.shape})"


class PointObservation(ObservationOperator):
    """Point sensors: multilinear interpolation of the nodal field at arbitrary points.

    Parameters
    ----------
    grid : Grid
        Dirichlet or Neumann grid (nodes at ``i * L / (n - 1)``).
    points : Tensor ``(n_obs, grid.ndim)``
        Sensor coordinates inside the box ``[0, L]^d``.

    Examples
    --------
    >>> import torch
    >>> from pdekit.core.grid import Grid
    >>> g = Grid((5, 5))
    >>> X, Y = g.mesh()
    >>> O = PointObservation(g, torch.tensor([[0.3, 0.6], [0.5, 0.5]]))
    >>> [round(v, 6) for v in O(X + 2 * Y).tolist()]    # exact for bilinear fields
    [1.5, 1.5]
    """

    def __init__(self, grid: Grid, points: torch.Tensor):
        pts = torch.as_tensor(points, dtype=torch.float64)
        if pts.dim() != 2 or pts.shape[1] != grid.ndim:
            raise ValueError(f"points must have shape (n_obs, {grid.ndim}), got {tuple(pts.shape)}")
        if any(bc.kind == "periodic" for bc in grid.bc):
            raise ValueError("PointObservation supports Dirichlet and Neumann grids only")
        if not torch.isfinite(pts).all():
            raise ValueError("points contain NaN or inf")
        length = torch.tensor(grid.length, dtype=torch.float64)
        if bool((pts < 0).any()) or bool((pts > length).any()):
            raise ValueError(f"points must lie in the box [0, L]^d with L = {grid.length}")
        self.points = pts
        shape = grid.shape
        s = pts / length * torch.tensor([n - 1 for n in shape], dtype=torch.float64)
        lo = torch.minimum(torch.floor(s).long(), torch.tensor([n - 2 for n in shape]))
        t = s - lo
        strides = [1] * grid.ndim
        for d in range(grid.ndim - 2, -1, -1):
            strides[d] = strides[d + 1] * shape[d + 1]
        idx_terms, w_terms = [], []
        for corner in itertools.product((0, 1), repeat=grid.ndim):
            flat = torch.zeros(pts.shape[0], dtype=torch.long)
            w = torch.ones(pts.shape[0], dtype=torch.float64)
            for d, c in enumerate(corner):
                flat = flat + (lo[:, d] + c) * strides[d]
                w = w * (t[:, d] if c else 1 - t[:, d])
            idx_terms.append(flat)
            w_terms.append(w)
        super().__init__(
            grid, torch.stack(idx_terms, 1), torch.stack(w_terms, 1), "PointObservation"
        )


def _node_operator(grid: Grid, mask: torch.Tensor, name: str) -> ObservationOperator:
    flat = torch.nonzero(mask.reshape(-1)).reshape(-1, 1)
    return ObservationOperator(grid, flat, torch.ones(flat.shape, dtype=torch.float64), name)


class SubsampledObservation(ObservationOperator):
    """Every ``stride``-th node of the grid (the interior only, by default).

    Examples
    --------
    >>> from pdekit.core.grid import Grid
    >>> SubsampledObservation(Grid((9, 9)), stride=2).n_obs   # nodes 2, 4, 6 per axis
    9
    """

    def __init__(self, grid: Grid, stride: int = 2, *, include_boundary: bool = False):
        if int(stride) < 1:
            raise ValueError(f"stride must be a positive integer, got {stride}")
        mask = torch.zeros(grid.shape, dtype=torch.bool)
        sl = tuple(slice(0 if include_boundary else stride, None, int(stride)) for _ in grid.shape)
        mask[sl] = True
        if not include_boundary:
            inner = torch.zeros_like(mask)
            inner[tuple(slice(1, n - 1) for n in grid.shape)] = True
            mask &= inner
        op = _node_operator(grid, mask, "SubsampledObservation")
        super().__init__(grid, op.index, op.weight, op.name)


class BoundaryObservation(ObservationOperator):
    """Nodal values on the ring of nodes ``offset`` nodes inside the boundary.

    ``offset=0`` observes the boundary itself (fields that are not fixed there, e.g. Neumann
    problems); for Dirichlet states ``u = 0`` on the boundary, ``offset=1`` observes ``h`` times the
    normal derivative (the boundary flux, to first order).

    Examples
    --------
    >>> from pdekit.core.grid import Grid
    >>> BoundaryObservation(Grid((6, 6)), offset=1).n_obs    # the 4 x 4 interior ring
    12
    """

    def __init__(self, grid: Grid, offset: int = 0):
        offset = int(offset)
        if offset < 0 or 2 * offset >= min(grid.shape):
            raise ValueError(f"offset must be in [0, {(min(grid.shape) - 1) // 2}], got {offset}")
        inside = torch.zeros(grid.shape, dtype=torch.bool)
        inside[tuple(slice(offset, n - offset) for n in grid.shape)] = True
        deeper = torch.zeros_like(inside)
        deeper[tuple(slice(offset + 1, n - offset - 1) for n in grid.shape)] = True
        op = _node_operator(grid, inside & ~deeper, "BoundaryObservation")
        super().__init__(grid, op.index, op.weight, op.name)


def random_points(n: int, ndim: int = 2, *, margin: float = 0.05, generator=None) -> torch.Tensor:
    """``n`` uniform random points in ``[margin, 1 - margin]^ndim`` (float64).

    Examples
    --------
    >>> import torch
    >>> random_points(3, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([3, 2])
    """
    if n < 1 or not 0 <= margin < 0.5:
        raise ValueError(f"need n >= 1 and 0 <= margin < 0.5, got n={n}, margin={margin}")
    u = torch.rand(n, ndim, dtype=torch.float64, generator=generator)
    return margin + (1 - 2 * margin) * u


@dataclass(frozen=True, eq=False)
class GaussianNoise:
    """Independent Gaussian noise with standard deviation ``sigma`` (a scalar or one per datum).

    Examples
    --------
    >>> import torch
    >>> clean = torch.tensor([1.0, -2.0, 4.0], dtype=torch.float64)
    >>> noise = GaussianNoise.relative(0.01, clean)       # 1% of max |data|
    >>> float(noise.sigma)
    0.04
    >>> noisy = noise.sample(clean, torch.Generator().manual_seed(0))
    >>> bool(((noisy - clean).abs() < 0.2).all())
    True
    """

    sigma: float | torch.Tensor

    def __post_init__(self):
        s = torch.as_tensor(self.sigma, dtype=torch.float64)
        if not torch.isfinite(s).all() or not bool((s > 0).all()):
            raise ValueError(
                f"noise standard deviation must be positive and finite, got {self.sigma}"
            )
        object.__setattr__(self, "sigma", s)

    @classmethod
    def relative(cls, level: float, clean: torch.Tensor) -> GaussianNoise:
        """``sigma = level * max |clean|`` (``level=0.01`` is "1% noise")."""
        if not level > 0:
            raise ValueError(f"noise level must be positive, got {level}")
        scale = float(clean.detach().abs().max())
        if scale == 0:
            raise ValueError("cannot set a relative noise level on all-zero data")
        return cls(level * scale)

    def sample(self, clean: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``clean + sigma * N(0, 1)``, drawn in float64 from ``generator``."""
        eps = torch.randn(clean.shape, dtype=torch.float64, generator=generator)
        return clean + (self.sigma * eps).to(clean)

    def whiten(self, r: torch.Tensor) -> torch.Tensor:
        """``r / sigma``."""
        return r / self.sigma.to(r)


@dataclass(frozen=True, eq=False)
class Observations:
    """Data ``d`` observed through ``operator`` with a Gaussian ``noise`` model.

    Examples
    --------
    >>> import torch
    >>> from pdekit.core.grid import Grid
    >>> g = Grid((5, 5))
    >>> O = SubsampledObservation(g, 2)
    >>> u = torch.ones(5, 5, dtype=torch.float64)
    >>> obs = Observations(O, O(u), GaussianNoise(0.1))
    >>> round(obs.misfit(u + 0.1).item(), 12)     # 0.5 * n_obs * (0.1 / 0.1)**2
    0.5
    """

    operator: ObservationOperator
    data: torch.Tensor
    noise: GaussianNoise

    def __post_init__(self):
        if not isinstance(self.noise, GaussianNoise):
            raise TypeError(f"noise must be a GaussianNoise, got {type(self.noise).__name__}")
        d = torch.as_tensor(self.data, dtype=torch.float64)
        if d.shape != (self.operator.n_obs,):
            raise ValueError(
                f"data must have shape ({self.operator.n_obs},) to match the operator, got "
                f"{tuple(d.shape)}"
            )
        if not torch.isfinite(d).all():
            raise ValueError("data contain NaN or inf")
        object.__setattr__(self, "data", d)

    @classmethod
    def synthetic(
        cls,
        operator: ObservationOperator,
        state: torch.Tensor,
        level: float = 0.01,
        generator: torch.Generator | None = None,
    ) -> Observations:
        """Observe ``state`` and add relative Gaussian noise of ``level`` (of max |clean data|)."""
        clean = operator(state.detach().to(torch.float64))
        noise = GaussianNoise.relative(level, clean)
        return cls(operator, noise.sample(clean, generator), noise)

    @property
    def n_obs(self) -> int:
        return self.operator.n_obs

    def residual(self, u: torch.Tensor) -> torch.Tensor:
        """Whitened residual ``(O u - d) / sigma``."""
        return self.noise.whiten(self.operator(u) - self.data.to(u))

    def misfit(self, u: torch.Tensor) -> torch.Tensor:
        """``0.5 * ||(O u - d) / sigma||^2`` (differentiable in ``u``)."""
        r = self.residual(u)
        return 0.5 * (r * r).sum()
