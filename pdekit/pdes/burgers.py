"""1-D viscous Burgers equation on the periodic unit interval (FNO benchmark).

.. math:: \\partial_t u + \\partial_x (u^2 / 2) = \\nu \\partial_{xx} u, \\qquad x \\in [0, 1)

with the initial condition ``u0 ~ N(0, 625 (-lap + 25 I)^(-2))`` (zero mean mode), ``nu = 0.1``
and ``T = 1`` in the FNO paper (Li et al. 2021, sec. 5.1).

Scheme: Fourier pseudo-spectral on the periodic nodes ``x_i = i / n``; the flux ``u^2 / 2`` is
formed on the grid and truncated by the 2/3 rule before it is differentiated (the state itself is
not truncated, as in :mod:`pdekit.pdes.navier_stokes`); time stepping (:class:`BurgersEquation`
stepped by :func:`pdekit.core.timestepping.etdrk4`) by the exponential time differencing
Runge-Kutta scheme ETDRK4 of Cox and Matthews (the viscous term is integrated exactly), with the
``phi`` coefficients evaluated by the contour integrals of Kassam and Trefethen (32 points, in
float64). ETDRK4 is fourth order and, unlike an implicit step, has no
viscous stability limit; the explicit flux needs ``dt max|u| n`` below about 2.8. It is the scheme
of chebfun's ``spin``, which the FNO Burgers generator used (there at 8192 points, ``dt = 1e-4``).
``oversample=m`` solves on ``m n`` nodes and stores every ``m``-th one (FNO: 8192 -> lower
resolutions by subsampling).

Records: ``n_records = K`` snapshots at ``t_k = k T / K`` after ``u0``; ``T / K`` must be a whole
number of steps ``dt`` (relative tolerance 1e-6), otherwise ``ValueError``.

References
----------
.. [1] Z. Li et al., "Fourier neural operator for parametric partial differential equations",
   ICLR 2021, arXiv:2010.08895, sec. 5.1.
.. [2] S. M. Cox, P. C. Matthews, "Exponential time differencing for stiff systems",
   J. Comput. Phys. 176 (2002) 430.
.. [3] A.-K. Kassam, L. N. Trefethen, "Fourth-order time-stepping for stiff PDEs",
   SIAM J. Sci. Comput. 26 (2005) 1214.
.. [4] E. Hopf, "The partial differential equation u_t + u u_x = mu u_xx", Comm. Pure Appl. Math.
   3 (1950) 201; J. D. Cole, Quart. Appl. Math. 9 (1951) 225 (the exact solution used in tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch

from pdekit.core.spectral import dealias_mask, wavenumbers
from pdekit.core.timestepping import (
    DiagonalEquation,
    etdrk4,
    etdrk4_coefficients,
    record_schedule,
    trajectory,
)
from pdekit.pdes._spectral_family import SpectralTimeFamily, check_state, check_viscosity
from pdekit.pdes.base import Solution, register_pde

__all__ = ["Burgers", "BurgersEquation", "burgers_1d", "etdrk4_coefficients"]

Precision = Literal["float32", "float64"]


class BurgersEquation(DiagonalEquation):
    """Burgers' equation in Fourier space, split for the steppers.

    State: ``v = rfft(u)``, ``(B, n // 2 + 1)``. Linear part: viscosity, diagonal with the float64
    eigenvalues ``-nu k^2``. Explicit part: ``N(v) = -(i k / 2) P fft(u^2)`` with ``P`` the 2/3
    rule and the Nyquist mode dropped from ``d/dx``.

    Parameters
    ----------
    n : int
        Grid size (even, >= 8).
    nu : float
        Viscosity.
    dtype, device
        Of the computation (float32 or float64).

    Examples
    --------
    >>> from pdekit.core.timestepping import etdrk4, trajectory
    >>> x = torch.arange(64, dtype=torch.float64) / 64
    >>> eq = BurgersEquation(64, 0.1)
    >>> traj = trajectory(etdrk4(eq, 1e-2), torch.fft.rfft(torch.sin(2 * math.pi * x))[None], 50)
    >>> round(float(torch.fft.irfft(traj.final, n=64).abs().max()), 4)
    0.1296
    """

    def __init__(self, n: int, nu: float, *, dtype: torch.dtype = torch.float64, device=None):
        self.n = n
        (k,) = wavenumbers((n,), dtype=torch.float64, device=device)
        super().__init__(-nu * k**2)
        kd = torch.where(k.abs() == math.pi * n, 0.0, k).to(dtype)  # Nyquist dropped from d/dx
        self._g = (-0.5j * kd) * dealias_mask((n,), device=device).to(dtype)

    def explicit_terms(self, v: torch.Tensor) -> torch.Tensor:
        """``-(i k / 2) P fft(u^2)``, ``u = irfft(v)``."""
        u = torch.fft.irfft(v, n=self.n)
        return self._g * torch.fft.rfft(u * u)


def burgers_1d(
    u0: torch.Tensor, *, nu: float, t_final: float, n_records: int, dt: float
) -> tuple[torch.Tensor, dict]:
    """Integrate Burgers' equation from ``u0`` (ETDRK4, dealiased) and return the records.

    :class:`BurgersEquation` stepped by :func:`~pdekit.core.timestepping.etdrk4` through
    :func:`~pdekit.core.timestepping.trajectory`.

    Parameters
    ----------
    u0 : Tensor
        ``(B, n)`` initial condition on the nodes ``i / n`` (``n`` even); the computation runs in
        its dtype (float32 or float64) and on its device.
    nu, t_final, n_records, dt
        Viscosity, final time, records after ``t = 0`` and time step.

    Returns
    -------
    u : Tensor
        ``(B, n_records + 1, n)`` with ``u[:, 0] = u0``.
    info : dict
        ``steps`` and ``cfl`` (``(B,)``, largest ``dt max|u| n`` at the records).

    Examples
    --------
    >>> x = torch.arange(64, dtype=torch.float64) / 64
    >>> u, info = burgers_1d(torch.sin(2 * math.pi * x)[None], nu=0.1, t_final=0.5,
    ...                      n_records=5, dt=1e-2)
    >>> u.shape, info["steps"]
    (torch.Size([1, 6, 64]), 50)
    """
    n = check_state(u0, "u0", 1)
    check_viscosity(nu)
    per_record = record_schedule(t_final, n_records, dt)
    eq = BurgersEquation(n, nu, dtype=u0.dtype, device=u0.device)

    def record(v):
        return torch.fft.irfft(v, n=n)

    def cfl(v):
        return record(v).abs().amax(-1).to(torch.float64) * dt * n

    traj = trajectory(etdrk4(eq, dt), torch.fft.rfft(u0), per_record * n_records,
                      record_every=per_record, record=record, monitor=cfl, time_dim=1)
    u = torch.cat([u0.unsqueeze(1), traj.records], dim=1)
    return u, {"steps": traj.n_steps, "cfl": traj.monitor_max}


@register_pde
@dataclass(frozen=True)
class Burgers(SpectralTimeFamily):
    """1-D viscous Burgers on the periodic unit interval with GRF initial data (FNO benchmark).

    Field ``u(sample, time, x)``: the solution at ``k t_final / n_records``, ``k = 0..n_records``
    (``u[:, 0] = u0``). The FNO operator-learning pair is ``(u[:, 0], u[:, -1])``.

    Parameters
    ----------
    resolution : int
        Stored nodes ``n`` (even, >= 8).
    nu : float
        Viscosity (FNO: 0.1).
    t_final : float
        Final time (FNO: 1).
    n_records : int
        Snapshots after ``t = 0``.
    dt : float
        Time step (FNO: 1e-4); ``t_final / n_records`` must be a multiple of it.
    oversample : int
        Solve on ``oversample * resolution`` nodes and store every ``oversample``-th.
    precision : {"float32", "float64"}
        Dtype of ``u0`` and of the computation; fields are returned as float32.

    Examples
    --------
    >>> bg = Burgers(resolution=64, n_records=4, dt=1e-2)
    >>> u0 = bg.sample_inputs(2, torch.Generator().manual_seed(0))["u0"]
    >>> sol = bg.solve({"u0": u0})
    >>> sol.fields["u"].shape, sol.iterations.tolist()
    (torch.Size([2, 5, 64]), [100, 100])

    References
    ----------
    .. [1] Li et al., "Fourier neural operator for parametric partial differential equations",
       ICLR 2021, sec. 5.1.
    .. [2] Kassam and Trefethen, "Fourth-order time-stepping for stiff PDEs", SIAM J. Sci.
       Comput. 2005.
    """

    name: ClassVar[str] = "burgers"
    input_name: ClassVar[str] = "u0"
    spatial_ndim: ClassVar[int] = 1
    #: law of u0: N(0, sigma^2 (-lap + tau^2 I)^(-alpha)) = N(0, 625 (-lap + 25 I)^(-2)).
    ic_alpha: ClassVar[float] = 2.0
    ic_tau: ClassVar[float] = 5.0
    ic_sigma: ClassVar[float] = 25.0

    resolution: int = 1024
    nu: float = 0.1
    t_final: float = 1.0
    n_records: int = 10
    dt: float = 1e-4
    oversample: int = 1
    precision: Precision = "float32"

    def __post_init__(self):
        self._check_spectral_parameters()

    def solve(self, inputs: dict[str, torch.Tensor], config: None = None, *,
              progress: bool = False, device=None, **kwargs) -> Solution:
        """Integrate every initial condition.

        ``iterations`` is the number of time steps, ``rel_residual`` 0 for a finite trajectory and
        ``inf`` for one that blew up, ``extra["cfl"]`` the largest ``dt max|u| n`` per sample.

        The family takes no solver settings: ``config`` must be ``None`` (the
        :class:`~pdekit.pdes.base.PDEFamily` contract); ``progress`` is accepted and shows nothing.
        """
        u0 = self._initial_state(inputs, config, device, kwargs)
        u, info = burgers_1d(
            u0, nu=float(self.nu), t_final=float(self.t_final), n_records=int(self.n_records),
            dt=float(self.dt),
        )
        return self._solution("u", u, info)

    def field_dims(self) -> dict[str, tuple[str, ...]]:
        return {"u": ("sample", "time", "x")}

    def coords(self) -> dict[str, np.ndarray]:
        return {"time": self._times(), "x": np.arange(self.resolution) / self.resolution}
