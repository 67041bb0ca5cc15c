"""Helmholtz equation ``-lap u - k(x)^2 u = f`` in a random medium, ``u = 0`` on the boundary.

The wavenumber is ``k(x) = k0 (1 + eps g(x))`` with ``g`` a smooth Gaussian random field of pointwise
standard deviation 1. With the default ``k0 = 12`` the squared wavenumber exceeds the smallest
eigenvalues ``pi^2 (m^2 + l^2)`` of ``-lap`` (about eight of them), so the matrix (5-point stencil on
the Darcy node grid, symmetric) is genuinely indefinite: CG does not apply; GMRES and GCRO-DR do.
Unlike the SKR "Helmholtz" set (``k ~ U(0, 1)``, numerically a Darcy problem) the shift here changes
the spectrum qualitatively.

``preconditioner="mg"`` uses the multigrid V-cycle of the Laplacian (``k = 0``), a
shifted-Laplacian-type preconditioner: ``M A ~ I - (-lap)^{-1} k^2`` is a compact perturbation of
the identity whose few outlying (negative) eigenvalues are what recycling deflates; the iteration
count grows with ``k0``. Without a preconditioner restarted GMRES(40) stagnates on this family
while GCRO-DR converges (the SKR observation).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch

from pdekit.core.grid import Grid
from pdekit.core.solve_config import SolveConfig
from pdekit.core.stencils import helmholtz
from pdekit.pdes._validation import check_choice, check_n_samples, check_resolution, input_field
from pdekit.pdes.base import LinearFamily, LinearSystem, register_pde
from pdekit.pdes.grf import GaussianRandomField

__all__ = ["Helmholtz"]


@register_pde
@dataclass(frozen=True)
class Helmholtz(LinearFamily):
    """Indefinite Helmholtz problems in a random medium with a point-like or smooth source.

    Parameters
    ----------
    resolution : int
        Nodes per dimension, boundary included.
    k0 : float
        Background wavenumber. Keep ``k0 (1 + 3 eps) h`` below about 0.6 (10 nodes per wavelength).
    eps : float
        Relative strength of the medium fluctuation.
    alpha, tau : float
        GRF of the medium (and of a ``"grf"`` source), scaled to pointwise standard deviation 1.
    source : {"point", "grf"}
        ``"point"``: a normalised Gaussian bump of width ``source_width`` centred uniformly in
        ``[0.25, 0.75]^2``; ``"grf"``: a Gaussian random field.
    source_width : float
        Standard deviation of the point-like source.

    Examples
    --------
    >>> import torch
    >>> fam = Helmholtz(resolution=17)
    >>> inputs = fam.sample_inputs(2, torch.Generator().manual_seed(0))
    >>> sorted(inputs)
    ['f', 'k']
    >>> sol = fam.solve(inputs, SolveConfig(method="spsolve"))
    >>> sol.fields["u"].shape
    torch.Size([2, 17, 17])

    References
    ----------
    .. [1] Y. A. Erlangga, C. W. Oosterlee, C. Vuik, "A novel multigrid based preconditioner for
       heterogeneous Helmholtz problems", SIAM J. Sci. Comput. 27(4), 2006.
    .. [2] H. Wang et al., "Accelerating data generation for neural operators via Krylov subspace
       recycling", ICLR 2024 (GCRO-DR(40, 20) over sorted Helmholtz systems).
    """

    name: ClassVar[str] = "helmholtz"
    methods: ClassVar[tuple[str, ...]] = ("spsolve", "gmres", "gcrodr")  # indefinite: no CG
    preconditioners: ClassVar[tuple[str, ...]] = ("none", "mg")
    default_solve_config: ClassVar[SolveConfig | None] = SolveConfig(method="gcrodr")

    resolution: int = 64
    k0: float = 12.0
    eps: float = 0.2
    alpha: float = 2.0
    tau: float = 3.0
    source: Literal["point", "grf"] = "point"
    source_width: float = 0.05

    def __post_init__(self):
        check_resolution(self.resolution)
        check_choice("source", self.source, ("point", "grf"))
        for name in ("k0", "source_width"):
            v = float(getattr(self, name))
            if not (0 < v < np.inf):
                raise ValueError(f"{name} must be positive and finite, got {v}")
        if not (0 <= self.eps < np.inf):
            raise ValueError(f"eps must be non-negative and finite, got {self.eps}")
        GaussianRandomField(self.alpha, self.tau)

    @property
    def grid(self) -> Grid:
        return Grid((self.resolution, self.resolution), bc="dirichlet")

    def field_dims(self) -> dict[str, tuple[str, ...]]:
        dims = ("sample", "x", "y")
        return {"k": dims, "f": dims, "u": dims}

    def coords(self) -> dict[str, np.ndarray]:
        x = np.linspace(0.0, 1.0, self.resolution)
        return {"x": x, "y": x.copy()}

    def sample_inputs(self, n: int, generator: torch.Generator | None = None) -> dict:
        """Draw ``n`` media ``k`` and sources ``f`` (float64, on the generator's device)."""
        n = check_n_samples(n)
        shape = (self.resolution, self.resolution)
        field = GaussianRandomField(self.alpha, self.tau, 1.0, normalize=True)
        k = self.k0 * (1.0 + self.eps * field.sample(n, shape, generator))
        if self.source == "grf":
            src = GaussianRandomField(self.alpha, self.tau, 1.0, zero_mean=False, normalize=True)
            f = src.sample(n, shape, generator)
        else:
            dev = generator.device if generator is not None else torch.device("cpu")
            centre = 0.25 + 0.5 * torch.rand(
                (n, 2), generator=generator, dtype=torch.float64, device=dev
            )
            X, Y = self.grid.mesh(device=dev)
            r2 = (X - centre[:, 0, None, None]) ** 2 + (Y - centre[:, 1, None, None]) ** 2
            w2 = self.source_width**2
            f = torch.exp(-r2 / (2 * w2)) / (2 * np.pi * w2)
        return {"k": k, "f": f}

    def assemble(self, inputs: dict[str, torch.Tensor]) -> LinearSystem:
        """``-lap u - k^2 u = f`` for ``inputs["k"]`` and ``inputs["f"]`` (``(N, n, n)`` each, finite).

        Float64 on the device of ``k``; recycling orders the samples by ``k`` and ``f``; ``"mg"``
        is the Laplacian's V-cycle (see the module notes).
        """
        shape = (self.resolution, self.resolution)
        k_in = input_field(inputs, "k", shape)
        N = k_in.shape[0]
        f_in = input_field(inputs, "f", shape, n=N)
        k = k_in.to(dtype=torch.float64)
        f = f_in.to(device=k.device, dtype=torch.float64)
        op = helmholtz(self.grid, k)
        ones = torch.ones((1, *shape), dtype=torch.float64, device=k.device)
        return LinearSystem(op, self.grid.interior(f), like=k_in,
                            features=torch.cat([k, f], dim=1), mg_coefficient=ones)

    def _check_config(self, config: SolveConfig) -> SolveConfig:
        """The Krylov methods default to the Laplacian's V-cycle (``preconditioner=None``)."""
        config = super()._check_config(config)
        if config.preconditioner is None and config.method != "spsolve":
            config = dataclasses.replace(config, preconditioner="mg")
        return config
