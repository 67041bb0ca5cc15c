"""Steady Darcy flow ``-div(a grad u) = f`` on the unit square with ``u = 0`` on the boundary.

The FNO Darcy benchmark (Li et al. 2021): ``a`` is a piecewise-constant field, 12 where a Gaussian
random field ``psi ~ N(0, (-lap + 9 I)^(-2))`` is non-negative and 3 elsewhere, ``f = 1``. The
discretisation is pdekit's Darcy convention (:mod:`pdekit.core.stencils`): ``n x n`` nodes including
the boundary, ``x_i = i/(n-1)``, the 5-point flux-form stencil with harmonic-mean face coefficients
on the ``(n-2)^2`` interior nodes; second order for smooth ``a``. The matrix is SPD, so CG-type
methods apply (``mgpcg`` by default; ``rcg`` recycles across the ordered samples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch

from pdekit.core.grid import Grid
from pdekit.core.stencils import check_coefficient, diffusion
from pdekit.pdes._validation import check_choice, check_n_samples, check_resolution, input_field
from pdekit.pdes.base import LinearFamily, LinearSystem, register_pde
from pdekit.pdes.grf import GaussianRandomField

__all__ = ["DarcyFlow"]


@register_pde
@dataclass(frozen=True)
class DarcyFlow(LinearFamily):
    """Darcy flow with a random permeability: the FNO Darcy data and a log-normal variant.

    Parameters
    ----------
    resolution : int
        Nodes per dimension, boundary included (FNO: 421, subsampled to 85, 141, 211).
    coefficient : {"threshold", "lognormal"}
        ``"threshold"``: ``a = a_high`` where ``psi >= 0`` else ``a_low`` (FNO). ``"lognormal"``:
        ``a = exp(g)``, ``g`` the same GRF scaled to pointwise standard deviation ``sigma``.
    source : {"constant", "random"}
        ``f = 1`` (FNO), or ``f`` a GRF scaled to pointwise standard deviation 1 (then ``f`` is an
        input field).
    alpha, tau : float
        GRF ``N(0, (-lap + tau^2 I)^(-alpha))`` (Neumann cosine expansion, constant mode removed;
        :class:`~pdekit.pdes.grf.GaussianRandomField`).
    sigma : float
        Pointwise standard deviation of ``log a`` for ``"lognormal"``.
    a_low, a_high : float
        The two values of the threshold coefficient.

    Examples
    --------
    >>> import torch
    >>> from pdekit.core.solve_config import SolveConfig
    >>> fam = DarcyFlow(resolution=17)
    >>> inputs = fam.sample_inputs(2, torch.Generator().manual_seed(0))
    >>> sorted(torch.unique(inputs["a"]).tolist())
    [3.0, 12.0]
    >>> sol = fam.solve(inputs, SolveConfig(method="spsolve"))
    >>> sol.fields["u"].shape, float(sol.fields["u"][:, 0].abs().max())
    (torch.Size([2, 17, 17]), 0.0)
    >>> float(fam.residual(inputs, sol.fields).abs().max()) < 1e-10
    True

    References
    ----------
    .. [1] Z. Li, N. Kovachki, K. Azizzadenesheli, B. Liu, K. Bhattacharya, A. Stuart,
       A. Anandkumar, "Fourier neural operator for parametric partial differential equations",
       ICLR 2021, arXiv:2010.08895 (sec. 5.2, Darcy flow).
    .. [2] H. Wang et al., "Accelerating data generation for neural operators via Krylov subspace
       recycling", ICLR 2024 (Darcy systems solved in sorted order with recycling).
    """

    name: ClassVar[str] = "darcy"

    resolution: int = 64
    coefficient: Literal["threshold", "lognormal"] = "threshold"
    source: Literal["constant", "random"] = "constant"
    alpha: float = 2.0
    tau: float = 3.0
    sigma: float = 1.0
    a_low: float = 3.0
    a_high: float = 12.0

    def __post_init__(self):
        check_resolution(self.resolution)
        check_choice("coefficient", self.coefficient, ("threshold", "lognormal"))
        check_choice("source", self.source, ("constant", "random"))
        if not (0 < self.a_low < np.inf and 0 < self.a_high < np.inf):
            raise ValueError(f"a_low and a_high must be positive, got {self.a_low}, {self.a_high}")
        GaussianRandomField(self.alpha, self.tau, self.sigma)  # validates alpha, tau, sigma

    @property
    def grid(self) -> Grid:
        return Grid((self.resolution, self.resolution), bc="dirichlet")

    def field_dims(self) -> dict[str, tuple[str, ...]]:
        dims = ("sample", "x", "y")
        out = {"a": dims, "u": dims}
        if self.source == "random":
            out["f"] = dims
        return out

    def coords(self) -> dict[str, np.ndarray]:
        x = np.linspace(0.0, 1.0, self.resolution)
        return {"x": x, "y": x.copy()}

    def sample_inputs(self, n: int, generator: torch.Generator | None = None) -> dict:
        """Draw ``n`` coefficients (and sources), float64 on the generator's device."""
        n = check_n_samples(n)
        shape = (self.resolution, self.resolution)
        if self.coefficient == "threshold":
            psi = GaussianRandomField(self.alpha, self.tau).sample(n, shape, generator)
            a = torch.where(psi >= 0, self.a_high, self.a_low).to(psi.dtype)
        else:
            field = GaussianRandomField(self.alpha, self.tau, self.sigma, normalize=True)
            a = torch.exp(field.sample(n, shape, generator))
        out = {"a": a}
        if self.source == "random":
            src = GaussianRandomField(self.alpha, self.tau, 1.0, zero_mean=False, normalize=True)
            out["f"] = src.sample(n, shape, generator)
        return out

    def assemble(self, inputs: dict[str, torch.Tensor]) -> LinearSystem:
        """The systems ``-div(a grad u) = f`` of the samples, float64 on the device of ``a``.

        ``inputs["a"]`` ``(N, n, n)`` positive and finite; ``inputs["f"]`` ``(N, n, n)`` optional
        (``f = 1`` when absent). Recycling orders the samples by ``log a`` (and ``f`` when given);
        ``"mg"`` is the multigrid V-cycle built from ``a``.
        """
        shape = (self.resolution, self.resolution)
        a_in = input_field(inputs, "a", shape)
        check_coefficient(a_in, self.grid, "a")
        N = a_in.shape[0]
        f_in = inputs.get("f")
        if f_in is not None:
            f_in = input_field(inputs, "f", shape, n=N)
        a = a_in.to(dtype=torch.float64)
        op = diffusion(self.grid, a)
        b = op.rhs(1.0 if f_in is None else f_in.to(dtype=torch.float64))
        feats = torch.log(a)
        if f_in is not None:
            feats = torch.cat([feats, f_in.to(feats)], dim=1)
        return LinearSystem(op, b, like=a_in, features=feats, mg_coefficient=a)
