"""Poisson's equation ``-lap u = f`` on the unit square, ``u = 0`` on the boundary, random ``f``.

Every sample shares one matrix (the 5-point Laplacian on the Darcy node grid) and only the
right-hand side changes: the SKR Poisson setting. ``spsolve`` therefore factorises once and solves
all right-hand sides against the factors; ``mgpcg`` (default) and ``cg`` run batched; ``rcg`` carries
a deflation space from one right-hand side to the next along the ordered samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from pdekit.core.grid import Grid
from pdekit.core.stencils import laplacian
from pdekit.pdes._validation import check_n_samples, check_resolution, input_field
from pdekit.pdes.base import LinearFamily, LinearSystem, register_pde
from pdekit.pdes.grf import GaussianRandomField

__all__ = ["Poisson"]


@register_pde
@dataclass(frozen=True)
class Poisson(LinearFamily):
    """Poisson problems with Gaussian-random-field sources.

    Parameters
    ----------
    resolution : int
        Nodes per dimension, boundary included (unknowns: the ``(n-2)^2`` interior nodes).
    alpha, tau : float
        Source law ``f ~ N(0, (-lap + tau^2 I)^(-alpha))`` (Neumann cosine expansion, constant mode
        kept), scaled to pointwise standard deviation ``sigma``.
    sigma : float
        Pointwise standard deviation of ``f``.

    Examples
    --------
    >>> import torch
    >>> from pdekit.core.solve_config import SolveConfig
    >>> fam = Poisson(resolution=17)
    >>> inputs = fam.sample_inputs(3, torch.Generator().manual_seed(0))
    >>> sol = fam.solve(inputs, SolveConfig(method="spsolve"))
    >>> sol.fields["u"].shape, sol.extra["factorizations"]
    (torch.Size([3, 17, 17]), 1)

    References
    ----------
    .. [1] H. Wang et al., "Accelerating data generation for neural operators via Krylov subspace
       recycling", ICLR 2024 (the Poisson set: fixed SPD matrix, random right-hand sides).
    """

    name: ClassVar[str] = "poisson"

    resolution: int = 64
    alpha: float = 2.0
    tau: float = 3.0
    sigma: float = 1.0

    def __post_init__(self):
        check_resolution(self.resolution)
        GaussianRandomField(self.alpha, self.tau, self.sigma)

    @property
    def grid(self) -> Grid:
        return Grid((self.resolution, self.resolution), bc="dirichlet")

    def field_dims(self) -> dict[str, tuple[str, ...]]:
        return {"f": ("sample", "x", "y"), "u": ("sample", "x", "y")}

    def coords(self) -> dict[str, np.ndarray]:
        x = np.linspace(0.0, 1.0, self.resolution)
        return {"x": x, "y": x.copy()}

    def sample_inputs(self, n: int, generator: torch.Generator | None = None) -> dict:
        """Draw ``n`` sources ``f`` ``(n, res, res)``, float64 on the generator's device."""
        n = check_n_samples(n)
        field = GaussianRandomField(self.alpha, self.tau, self.sigma, zero_mean=False,
                                    normalize=True)
        return {"f": field.sample(n, (self.resolution, self.resolution), generator)}

    def assemble(self, inputs: dict[str, torch.Tensor]) -> LinearSystem:
        """``-lap u = f``: one shared Laplacian, the right-hand sides ``f`` (float64, ``f``'s device).

        Recycling orders the samples by ``f``; ``"mg"`` is the V-cycle of the Laplacian.
        """
        shape = (self.resolution, self.resolution)
        f_in = input_field(inputs, "f", shape)
        f = f_in.to(dtype=torch.float64)
        op = laplacian(self.grid, dtype=torch.float64, device=f.device)
        ones = torch.ones((1, *shape), dtype=torch.float64, device=f.device)
        return LinearSystem(op, self.grid.interior(f), like=f_in, features=f, mg_coefficient=ones)
