"""2-D incompressible Navier-Stokes in vorticity form on the periodic unit square (FNO benchmark).

.. math::

    \\partial_t w + u \\cdot \\nabla w = \\nu \\Delta w + f, \\qquad
    u = (\\partial_y \\psi, -\\partial_x \\psi), \\qquad -\\Delta \\psi = w,

on ``[0, 1)^2`` with periodic boundaries, forcing
``f(x, y) = 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y))`` and initial vorticity ``w0`` drawn from the
Gaussian random field of the FNO data (Li et al. 2021, sec. 5.3), as in the FNO generator
``ns_2d.py``:

* grid: the periodic nodes ``x_i = i / n`` (``indexing="ij"``: ``w[..., i, j] = w(x_i, y_j)``);
* ``w0 ~ N(0, 7^3 (-lap + 49 I)^(-2.5))`` without the mean mode. The paper writes the law as
  ``N(0, 7^(3/2) (-lap + 49 I)^(-2.5))``; its generator scales the Karhunen-Loeve modes by
  ``sigma = 7^(3/2)`` (``GaussianRF(2, s, alpha=2.5, tau=7)``), which is covariance
  ``sigma^2 (...)``. pdekit follows the generator, so the amplitudes match the published data;
* space: Fourier pseudo-spectral; ``psi``, ``u``, ``grad w`` by exact spectral multipliers, the
  product ``u . grad w`` formed on the grid and truncated by Orszag's 2/3 rule. As in the FNO
  generator the state itself is not truncated (the initial condition keeps all its modes; modes
  beyond 2/3 evolve by viscosity alone). The Nyquist mode is dropped from first derivatives
  (:mod:`pdekit.core.spectral` convention; FNO keeps a one-sided ``i k``);
* time: the equation is :class:`VorticityEquation` (viscosity implicit, advection and forcing
  explicit), stepped by :mod:`pdekit.core.timestepping`. ``scheme="euler-cn"`` (the FNO
  generator, default; :func:`~pdekit.core.timestepping.euler_cn`) treats advection and forcing
  with explicit Euler and viscosity with Crank-Nicolson: first order. ``scheme="ab2-cn"``
  (:func:`~pdekit.core.timestepping.ab2_cn`) uses second-order Adams-Bashforth for advection
  (Euler on the first step): second order, same cost per step;
* oversampling: FNO solved on 256^2 and kept every 4th node for its 64^2 data. ``oversample=m``
  does the same: the initial condition is drawn and the equation solved on ``(m n)^2`` nodes, and
  the nodes ``i m / (m n) = i / n`` are stored. The default ``m = 1`` solves on the stored grid.

Records: ``n_records = K`` snapshots at ``t_k = k T / K`` after the initial one, so the trajectory
has ``K + 1`` frames with ``w[:, 0] = w0``. The record interval ``T / K`` must be a whole number of
steps ``dt`` (to a relative tolerance of 1e-6), otherwise ``ValueError``.

References
----------
.. [1] Z. Li, N. Kovachki, K. Azizzadenesheli, B. Liu, K. Bhattacharya, A. Stuart,
   A. Anandkumar, "Fourier neural operator for parametric partial differential equations",
   ICLR 2021, arXiv:2010.08895 (sec. 5.3 and the generator ``data_generation/navier_stokes``).
.. [2] S. A. Orszag, "On the elimination of aliasing in finite-difference schemes by filtering
   high-wavenumber components", J. Atmos. Sci. 28 (1971) 1074.
.. [3] U. M. Ascher, S. J. Ruuth, B. T. R. Wetton, "Implicit-explicit methods for time-dependent
   partial differential equations", SIAM J. Numer. Anal. 32 (1995) 797 (CN/AB2 IMEX).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch

from pdekit.core.spectral import dealias_mask, wavenumbers
from pdekit.core.timestepping import (
    AB2State,
    DiagonalEquation,
    ab2_cn,
    euler_cn,
    record_schedule,
    trajectory,
)
from pdekit.errors import PdekitUserError
from pdekit.pdes._spectral_family import SpectralTimeFamily, check_state, check_viscosity
from pdekit.pdes.base import Solution, register_pde

__all__ = [
    "NavierStokes",
    "VorticityEquation",
    "navier_stokes_2d",
    "fno_forcing",
    "record_schedule",
]

Scheme = Literal["euler-cn", "ab2-cn"]
Forcing = Literal["fno", "none"]
Precision = Literal["float32", "float64"]
SCHEMES = ("euler-cn", "ab2-cn")


def fno_forcing(n: int, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """The FNO forcing ``0.1 (sin 2 pi (x + y) + cos 2 pi (x + y))`` on the nodes ``i / n``.

    Examples
    --------
    >>> fno_forcing(4)[0, 0].item()
    0.10000000149011612
    """
    x = torch.arange(n, dtype=torch.float64, device=device) / n
    s = 2 * math.pi * (x[:, None] + x[None, :])
    return (0.1 * (torch.sin(s) + torch.cos(s))).to(dtype)


class VorticityEquation(DiagonalEquation):
    """The vorticity equation in Fourier space, split for the IMEX steppers.

    State: ``w_hat = rfft2(w)``, ``(B, n, n // 2 + 1)``. Implicit part: viscosity, diagonal with
    eigenvalues ``-nu |k|^2``. Explicit part: ``f_hat - P(u . grad w)^`` with ``P`` the 2/3 rule.
    Any stepper of :mod:`pdekit.core.timestepping` applies.

    Parameters
    ----------
    n : int
        Grid size (even, >= 8).
    nu : float
        Viscosity.
    forcing : Tensor, optional
        ``(n, n)`` or ``(B, n, n)`` time-independent forcing on the grid.
    dtype, device
        Of the computation (float32 or float64).

    Attributes
    ----------
    velocity : Tensor or None
        ``(B, 2, n, n)`` grid velocity ``(u, v)`` at the last ``explicit_terms`` call.

    Examples
    --------
    >>> from pdekit.core.timestepping import crank_nicolson, trajectory
    >>> eq = VorticityEquation(16, 1e-3, dtype=torch.float64)
    >>> w0 = torch.randn(2, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> traj = trajectory(crank_nicolson(eq, 0.01), torch.fft.rfft2(w0), 10)
    >>> torch.fft.irfft2(traj.final, s=(16, 16)).shape
    torch.Size([2, 16, 16])
    """

    def __init__(self, n: int, nu: float, *, forcing: torch.Tensor | None = None,
                 dtype: torch.dtype = torch.float64, device=None):
        self.n = n
        kx, ky = wavenumbers((n, n), dtype=dtype, device=device)  # (n, 1), (1, n//2+1)
        k2 = kx**2 + ky**2
        super().__init__(-nu * k2)
        inv_k2 = torch.where(k2 > 0, 1.0 / torch.where(k2 > 0, k2, 1.0), 0.0)
        nyq = math.pi * n  # |k| of the Nyquist mode (2 pi n/2)
        dx = torch.where(kx.abs() == nyq, 0.0, kx)  # first derivatives drop the Nyquist mode
        dy = torch.where(ky.abs() == nyq, 0.0, ky)
        # psi = w / k^2; u = d psi/dy, v = -d psi/dx, then dw/dx, dw/dy: one batched inverse FFT
        self._mult = torch.stack(
            torch.broadcast_tensors(1j * dy * inv_k2, -1j * dx * inv_k2, 1j * dx, 1j * dy)
        )
        self._neg_mask = -dealias_mask((n, n), device=device).to(self._mult.dtype)
        self._f_hat = None
        if forcing is not None:
            self._f_hat = torch.fft.rfft2(forcing.to(device=device, dtype=dtype))
        self.velocity: torch.Tensor | None = None

    def explicit_terms(self, w_hat: torch.Tensor) -> torch.Tensor:
        """``f_hat - P(u . grad w)^`` (the product formed on the grid, then truncated)."""
        n = self.n
        q = torch.fft.irfft2(w_hat.unsqueeze(1) * self._mult, s=(n, n))
        self.velocity = q[:, :2]
        advection = torch.fft.rfft2(q[:, 0] * q[:, 2] + q[:, 1] * q[:, 3])
        if self._f_hat is None:
            return self._neg_mask * advection
        return torch.addcmul(self._f_hat, self._neg_mask, advection)

    def cfl(self, dt: float) -> torch.Tensor:
        """``(B,)`` float64 ``dt max(|u| + |v|) n`` at the last ``explicit_terms`` call."""
        u = self.velocity
        speed = (u[:, 0].abs() + u[:, 1].abs()).amax(dim=(-2, -1)).to(torch.float64)
        return speed * dt * self.n


def navier_stokes_2d(
    w0: torch.Tensor,
    *,
    nu: float,
    t_final: float,
    n_records: int,
    dt: float,
    forcing: torch.Tensor | None = None,
    scheme: Scheme = "euler-cn",
) -> tuple[torch.Tensor, dict]:
    """Integrate the vorticity equation from ``w0`` and return the recorded trajectory.

    :class:`VorticityEquation` stepped by :func:`~pdekit.core.timestepping.euler_cn` or
    :func:`~pdekit.core.timestepping.ab2_cn` through :func:`~pdekit.core.timestepping.trajectory`.

    Parameters
    ----------
    w0 : Tensor
        ``(B, n, n)`` initial vorticity on the nodes ``i / n`` (``n`` even). The computation runs
        in its dtype (float32 or float64) and on its device.
    nu : float
        Viscosity (> 0).
    t_final, n_records, dt : float, int, float
        Final time, number of records after ``t = 0`` and time step; see :func:`record_schedule`.
    forcing : Tensor, optional
        ``(n, n)`` or ``(B, n, n)`` time-independent forcing (default none).
    scheme : {"euler-cn", "ab2-cn"}
        IMEX scheme (see the module notes).

    Returns
    -------
    w : Tensor
        ``(B, n_records + 1, n, n)``, ``w[:, 0] = w0``.
    info : dict
        ``steps`` (int) and ``cfl`` (``(B,)`` float64: the largest ``dt (|u| + |v|) n`` seen at
        the records, from the velocity of the last step's explicit evaluation; explicit advection
        needs it well below 1).

    Examples
    --------
    >>> w0 = torch.zeros(1, 16, 16, dtype=torch.float64)
    >>> w, info = navier_stokes_2d(w0, nu=1e-3, t_final=0.1, n_records=2, dt=0.01,
    ...                            forcing=fno_forcing(16, dtype=torch.float64))
    >>> w.shape, info["steps"]
    (torch.Size([1, 3, 16, 16]), 10)
    """
    n = check_state(w0, "w0", 2)
    check_viscosity(nu)
    if scheme not in SCHEMES:
        raise PdekitUserError(f"unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    per_record = record_schedule(t_final, n_records, dt)
    eq = VorticityEquation(n, nu, forcing=forcing, dtype=w0.dtype, device=w0.device)
    w_hat = torch.fft.rfft2(w0)
    ab2 = scheme == "ab2-cn"
    step, state = (ab2_cn(eq, dt), AB2State(w_hat)) if ab2 else (euler_cn(eq, dt), w_hat)

    def record(s):
        return torch.fft.irfft2(s.state if ab2 else s, s=(n, n))

    traj = trajectory(step, state, per_record * n_records, record_every=per_record,
                      record=record, monitor=lambda s: eq.cfl(dt), time_dim=1)
    w = torch.cat([w0.unsqueeze(1), traj.records], dim=1)
    return w, {"steps": traj.n_steps, "cfl": traj.monitor_max}


@register_pde
@dataclass(frozen=True)
class NavierStokes(SpectralTimeFamily):
    """2-D Navier-Stokes (vorticity form) on the periodic unit square, FNO benchmark settings.

    Field ``w(sample, time, x, y)``: the vorticity at the ``n_records + 1`` times
    ``k t_final / n_records``, ``w[:, 0]`` being the initial condition (see the module notes for
    the law of ``w0``, the forcing and the schemes).

    Parameters
    ----------
    resolution : int
        Stored grid ``n x n`` (even, >= 8).
    nu : float
        Viscosity (FNO: 1e-3, 1e-4, 1e-5).
    t_final : float
        Final time ``T`` (FNO: 50, 30, 20 for the three viscosities).
    n_records : int
        Snapshots after ``t = 0``, evenly spaced up to ``T``.
    dt : float
        Time step (FNO: 1e-4); ``T / n_records`` must be a multiple of it.
    forcing : {"fno", "none"}
        The FNO forcing or none.
    scheme : {"euler-cn", "ab2-cn"}
        Time stepping: the FNO scheme (first order) or CN/AB2 (second order).
    oversample : int
        Solve on ``oversample * resolution`` nodes per dimension and store every
        ``oversample``-th (FNO: 4, i.e. 256^2 -> 64^2).
    precision : {"float32", "float64"}
        Dtype of the initial condition and of the computation; fields are returned as float32.

    Examples
    --------
    >>> ns = NavierStokes(resolution=16, t_final=0.2, n_records=2, dt=0.01)
    >>> w0 = ns.sample_inputs(3, torch.Generator().manual_seed(0))["w0"]
    >>> sol = ns.solve({"w0": w0})
    >>> sol.fields["w"].shape, sol.fields["w"].dtype, sol.iterations.tolist()
    (torch.Size([3, 3, 16, 16]), torch.float32, [20, 20, 20])
    >>> ns.coords()["time"].tolist()
    [0.0, 0.1, 0.2]

    References
    ----------
    .. [1] Li et al., "Fourier neural operator for parametric partial differential equations",
       ICLR 2021, sec. 5.3.
    """

    name: ClassVar[str] = "navier-stokes"
    input_name: ClassVar[str] = "w0"
    spatial_ndim: ClassVar[int] = 2
    #: Karhunen-Loeve law of w0: sigma (-lap + tau^2)^(-alpha/2) white noise (FNO generator).
    ic_alpha: ClassVar[float] = 2.5
    ic_tau: ClassVar[float] = 7.0
    ic_sigma: ClassVar[float] = 7.0**1.5

    resolution: int = 64
    nu: float = 1e-3
    t_final: float = 50.0
    n_records: int = 50
    dt: float = 1e-4
    forcing: Forcing = "fno"
    scheme: Scheme = "euler-cn"
    oversample: int = 1
    precision: Precision = "float32"

    def __post_init__(self):
        self._check_spectral_parameters()
        if self.forcing not in ("fno", "none"):
            raise PdekitUserError(f"forcing must be 'fno' or 'none', got {self.forcing!r}")
        if self.scheme not in SCHEMES:
            raise PdekitUserError(
                f"scheme must be one of {', '.join(SCHEMES)}, got {self.scheme!r}"
            )

    def solve(self, inputs: dict[str, torch.Tensor], config: None = None, *,
              progress: bool = False, device=None, **kwargs) -> Solution:
        """Integrate every initial condition; see the class notes.

        ``inputs["w0"]`` is ``(B, m, m)`` with ``m = solver_resolution``; the computation runs on
        ``device`` (default: the input's device) in ``precision``. ``iterations`` is the number of
        time steps; ``rel_residual`` is 0 for a finite trajectory and ``inf`` for one that blew
        up; ``extra["cfl"]`` holds the largest advective CFL number per sample.

        The family takes no solver settings: ``config`` must be ``None`` (the
        :class:`~pdekit.pdes.base.PDEFamily` contract); ``progress`` is accepted and shows nothing.
        """
        w0 = self._initial_state(inputs, config, device, kwargs)
        m = self.solver_resolution
        f = fno_forcing(m, dtype=self._dtype, device=w0.device) if self.forcing == "fno" else None
        w, info = navier_stokes_2d(
            w0, nu=float(self.nu), t_final=float(self.t_final), n_records=int(self.n_records),
            dt=float(self.dt), forcing=f, scheme=self.scheme,
        )
        return self._solution("w", w, info, scheme=self.scheme)

    def field_dims(self) -> dict[str, tuple[str, ...]]:
        return {"w": ("sample", "time", "x", "y")}

    def coords(self) -> dict[str, np.ndarray]:
        x = np.arange(self.resolution) / self.resolution
        return {"time": self._times(), "x": x, "y": x.copy()}
