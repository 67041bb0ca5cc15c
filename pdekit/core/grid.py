"""Structured uniform grids and boundary conditions that travel with the field.

pdekit uses vertex (node) grids on the unit box ``[0, L]^d``:

* Dirichlet and Neumann dimensions hold ``n`` nodes *including* both boundary nodes,
  ``x_i = i L / (n - 1)`` (the node-centred grid, boundary nodes included, of the FNO benchmark
  data); for Dirichlet only the ``n - 2`` interior nodes are unknowns, for Neumann all ``n`` nodes
  are unknowns (mirror ghost nodes).
* Periodic dimensions hold ``n`` nodes ``x_i = i L / n`` (the point ``x = L`` is ``x = 0``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

__all__ = ["BoundaryCondition", "Dirichlet", "Neumann", "Periodic", "Grid"]


@dataclass(frozen=True)
class BoundaryCondition:
    """Base class; use :class:`Dirichlet`, :class:`Neumann` or :class:`Periodic`."""

    kind: str = field(init=False, default="")


@dataclass(frozen=True)
class Dirichlet(BoundaryCondition):
    """``u = value`` on both ends of a dimension (a constant)."""

    value: float = 0.0
    kind: str = field(init=False, default="dirichlet")


@dataclass(frozen=True)
class Neumann(BoundaryCondition):
    """Homogeneous Neumann ``du/dn = 0`` through mirror ghost nodes (second order)."""

    kind: str = field(init=False, default="neumann")


@dataclass(frozen=True)
class Periodic(BoundaryCondition):
    """Periodic dimension."""

    kind: str = field(init=False, default="periodic")


def _as_bc(bc) -> BoundaryCondition:
    if isinstance(bc, BoundaryCondition):
        return bc
    if isinstance(bc, str):
        table = {"dirichlet": Dirichlet(), "neumann": Neumann(), "periodic": Periodic()}
        if bc.lower() in table:
            return table[bc.lower()]
    raise ValueError(
        f"unsupported boundary condition {bc!r}: use Dirichlet(), Neumann() or Periodic() "
        "(or 'dirichlet', 'neumann', 'periodic')"
    )


@dataclass(frozen=True)
class Grid:
    """A uniform structured grid in 1, 2 or 3 dimensions with one boundary condition per dimension.

    Parameters
    ----------
    shape : tuple of int
        Nodes per dimension (boundary nodes included for Dirichlet / Neumann).
    bc : BoundaryCondition or str, or a tuple with one per dimension
    length : float or tuple of float
        Domain length per dimension (default 1).

    Examples
    --------
    >>> g = Grid((5, 5), bc="dirichlet")
    >>> g.h, g.interior_shape
    ((0.25, 0.25), (3, 3))
    >>> Grid((4,), bc="periodic").coords()[0].tolist()
    [0.0, 0.25, 0.5, 0.75]
    """

    shape: tuple[int, ...]
    bc: tuple[BoundaryCondition, ...] | BoundaryCondition | str = "dirichlet"
    length: tuple[float, ...] | float = 1.0

    def __post_init__(self):
        shape = tuple(
            int(s) for s in (self.shape if hasattr(self.shape, "__len__") else (self.shape,))
        )
        if not 1 <= len(shape) <= 3:
            raise ValueError(f"grids have 1, 2 or 3 dimensions, got shape {shape}")
        bcs = self.bc if isinstance(self.bc, tuple) else (self.bc,) * len(shape)
        if len(bcs) != len(shape):
            raise ValueError(f"{len(bcs)} boundary conditions for a {len(shape)}-D grid")
        bcs = tuple(_as_bc(b) for b in bcs)
        length = (
            self.length if isinstance(self.length, tuple) else (float(self.length),) * len(shape)
        )
        if len(length) != len(shape):
            raise ValueError(f"{len(length)} lengths for a {len(shape)}-D grid")
        for s, b in zip(shape, bcs):
            minimum = 2 if b.kind == "periodic" else 3
            if s < minimum:
                raise ValueError(f"a {b.kind} dimension needs at least {minimum} nodes, got {s}")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "bc", bcs)
        object.__setattr__(self, "length", tuple(float(v) for v in length))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def h(self) -> tuple[float, ...]:
        """Grid spacing per dimension."""
        return tuple(
            L / n if b.kind == "periodic" else L / (n - 1)
            for n, b, L in zip(self.shape, self.bc, self.length)
        )

    @property
    def interior_shape(self) -> tuple[int, ...]:
        """Shape of the unknowns: Dirichlet boundary nodes are removed."""
        return tuple(n - 2 if b.kind == "dirichlet" else n for n, b in zip(self.shape, self.bc))

    @property
    def n_unknowns(self) -> int:
        out = 1
        for s in self.interior_shape:
            out *= s
        return out

    def coords(self, dtype=torch.float64, device=None, which: Literal["all", "interior"] = "all"):
        """1-D coordinate tensors, one per dimension."""
        out = []
        for n, b, h in zip(self.shape, self.bc, self.h):
            x = torch.arange(n, dtype=dtype, device=device) * h
            if which == "interior" and b.kind == "dirichlet":
                x = x[1:-1]
            out.append(x)
        return out

    def mesh(self, dtype=torch.float64, device=None, which: Literal["all", "interior"] = "all"):
        """Coordinate arrays broadcast to the grid (``indexing='ij'``)."""
        return torch.meshgrid(*self.coords(dtype, device, which), indexing="ij")

    def interior(self, u: torch.Tensor) -> torch.Tensor:
        """Restrict a full-grid field ``(..., *shape)`` to the unknowns ``(..., *interior_shape)``."""
        self._check_trailing(u, self.shape, "full-grid field")
        idx = [slice(None)] * (u.dim() - self.ndim)
        idx += [slice(1, -1) if b.kind == "dirichlet" else slice(None) for b in self.bc]
        return u[tuple(idx)]

    def extend(self, v: torch.Tensor) -> torch.Tensor:
        """Put unknowns ``(..., *interior_shape)`` back on the full grid with the Dirichlet values."""
        self._check_trailing(v, self.interior_shape, "interior field")
        lead = v.shape[: v.dim() - self.ndim]
        out = v.new_zeros(*lead, *self.shape)
        for d, b in enumerate(self.bc):
            if b.kind == "dirichlet" and b.value != 0.0:
                sl = [slice(None)] * out.dim()
                for end in (0, -1):
                    sl[out.dim() - self.ndim + d] = end
                    out[tuple(sl)] = b.value
        idx = [slice(None)] * len(lead)
        idx += [slice(1, -1) if b.kind == "dirichlet" else slice(None) for b in self.bc]
        out[tuple(idx)] = v
        return out

    def _check_trailing(self, u: torch.Tensor, shape, what: str) -> None:
        if tuple(u.shape[u.dim() - self.ndim :]) != tuple(shape) or u.dim() < self.ndim:
            raise ValueError(f"{what} must end with shape {tuple(shape)}, got {tuple(u.shape)}")
