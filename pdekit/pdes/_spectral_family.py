"""What the periodic pseudo-spectral, time-dependent families share (Burgers, Navier-Stokes).

Parameter checks (numbers given as strings, even resolution, record schedule, oversampling,
precision), the solver grid and dtype, the Gaussian-random-field initial condition, the shape
check of ``solve``'s input and the :class:`~pdekit.pdes.base.Solution` of a trajectory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from pdekit.core.timestepping import record_schedule
from pdekit.errors import PdekitUserError
from pdekit.pdes.base import PDEFamily, Solution

__all__ = ["SpectralTimeFamily", "as_float", "check_even_resolution", "check_viscosity"]


def as_float(name: str, value) -> float:
    """``float(value)``; ``PdekitUserError`` naming ``name`` for booleans and non-numbers.

    Examples
    --------
    >>> as_float("nu", "1e-3")
    0.001
    """
    if isinstance(value, bool):
        raise PdekitUserError(f"{name} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise PdekitUserError(f"{name} must be a number, got {value!r}") from None


def check_even_resolution(n, what: str = "resolution") -> None:
    """``PdekitUserError`` unless ``n`` is an even integer >= 8."""
    if not isinstance(n, (int, np.integer)) or n < 8 or n % 2:
        raise PdekitUserError(f"{what} must be an even integer >= 8, got {n!r}")


def check_viscosity(nu) -> None:
    """``PdekitUserError`` unless ``nu`` is positive and finite."""
    if not (math.isfinite(nu) and nu > 0):
        raise PdekitUserError(f"nu must be positive, got {nu!r}")


def check_state(x: torch.Tensor, name: str, ndim: int) -> int:
    """Check a ``(B, n[, n])`` float32/float64 state of a square periodic grid; return ``n``."""
    if x.dim() != ndim + 1 or len(set(x.shape[1:])) != 1:
        shape = ", ".join(["n"] * ndim)
        raise PdekitUserError(f"{name} must have shape (B, {shape}), got {tuple(x.shape)}")
    n = int(x.shape[-1])
    check_even_resolution(n, "the grid size")
    if x.dtype not in (torch.float32, torch.float64):
        raise PdekitUserError(f"{name} must be float32 or float64, got {x.dtype}")
    return n


@dataclass(frozen=True)
class SpectralTimeFamily(PDEFamily):
    """Base of the periodic time-dependent families: no fields, shared checks and plumbing.

    Subclasses are frozen dataclasses with the fields ``resolution``, ``nu``, ``t_final``,
    ``n_records``, ``dt``, ``oversample`` and ``precision``, and set the class attributes below.
    """

    #: Name of the initial condition in ``sample_inputs`` / ``solve`` (``"u0"``, ``"w0"``).
    input_name: ClassVar[str] = ""
    #: Space dimensions.
    spatial_ndim: ClassVar[int] = 1
    #: Law of the initial condition: ``sigma (-lap + tau^2)^(-alpha/2)`` white noise.
    ic_alpha: ClassVar[float] = 2.0
    ic_tau: ClassVar[float] = 1.0
    ic_sigma: ClassVar[float] = 1.0

    def _check_spectral_parameters(self) -> None:
        for key in ("nu", "t_final", "dt"):  # accept "1e-3" from YAML / the command line
            object.__setattr__(self, key, as_float(key, getattr(self, key)))
        check_even_resolution(self.resolution)
        check_viscosity(self.nu)
        record_schedule(float(self.t_final), self.n_records, float(self.dt))
        if not (isinstance(self.oversample, (int, np.integer)) and self.oversample >= 1):
            raise PdekitUserError(f"oversample must be an integer >= 1, got {self.oversample!r}")
        if self.precision not in ("float32", "float64"):
            raise PdekitUserError(
                f"precision must be 'float32' or 'float64', got {self.precision!r}"
            )

    @property
    def solver_resolution(self) -> int:
        """Nodes per dimension of the grid the equation is solved on."""
        return self.resolution * self.oversample

    @property
    def _dtype(self) -> torch.dtype:
        return torch.float64 if self.precision == "float64" else torch.float32

    @property
    def _solver_shape(self) -> tuple[int, ...]:
        return (self.solver_resolution,) * self.spatial_ndim

    def sample_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``{input_name: (n, m[, m])}`` with ``m = solver_resolution``, in ``precision``."""
        from pdekit.pdes.grf import GaussianRandomField

        law = GaussianRandomField(
            alpha=self.ic_alpha, tau=self.ic_tau, sigma=self.ic_sigma, boundary="periodic"
        )
        return {self.input_name: law.sample(n, self._solver_shape, generator, dtype=self._dtype)}

    def _initial_state(self, inputs: dict[str, torch.Tensor], config, device, kwargs: dict
                       ) -> torch.Tensor:
        """``inputs[input_name]`` checked, on ``device`` and in ``precision``.

        These families take no solver settings: ``config`` must be ``None`` and no overrides.
        """
        if config is not None:
            raise PdekitUserError(f"{self.name} takes no solve configuration, got {config!r}")
        if kwargs:
            raise TypeError(f"unexpected solve option(s) {', '.join(sorted(kwargs))}")
        key = self.input_name
        if key not in inputs:
            raise PdekitUserError(f"{self.name} needs inputs[{key!r}], got {', '.join(inputs)}")
        x0 = inputs[key]
        shape = self._solver_shape
        if x0.dim() != len(shape) + 1 or tuple(x0.shape[1:]) != shape:
            want = ", ".join(str(s) for s in shape)
            raise PdekitUserError(f"{key} must have shape (B, {want}), got {tuple(x0.shape)}")
        return x0.to(device=device if device is not None else x0.device, dtype=self._dtype)

    def _solution(self, field: str, trajectory: torch.Tensor, info: dict, **extra) -> Solution:
        """Subsample ``(B, time, *solver grid)`` to the stored grid, float32, with diagnostics."""
        s = self.oversample
        index = (Ellipsis, *([slice(None, None, s)] * self.spatial_ndim))
        out = trajectory[index].to(torch.float32)
        finite = torch.isfinite(out).flatten(1).all(dim=1)
        B = out.shape[0]
        return Solution(
            fields={field: out},
            iterations=torch.full((B,), info["steps"], dtype=torch.int64, device=out.device),
            rel_residual=torch.where(finite, 0.0, math.inf).to(torch.float64),
            extra={"cfl": info["cfl"], **extra, "solver_resolution": self.solver_resolution},
        )

    def _times(self) -> np.ndarray:
        return np.arange(self.n_records + 1) * (float(self.t_final) / self.n_records)
