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
* time: ``scheme="euler-cn"`` (the FNO generator, default) treats advection and forcing with
  explicit Euler and viscosity with Crank-Nicolson: first order.
  ``scheme="ab2-cn"`` uses second-order Adams-Bashforth for advection (Euler on the first step):
  second order, same cost per step;
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
from pdekit.pdes.base import PDEFamily, Solution, register_pde

__all__ = ["NavierStokes", "navier_stokes_2d", "fno_forcing", "record_schedule"]

Scheme = Literal["euler-cn", "ab2-cn"]
Forcing = Literal["fno", "none"]
Precision = Literal["float32", "float64"]
SCHEMES = ("euler-cn", "ab2-cn")


def record_schedule(t_final: float, n_records: int, dt: float) -> int:
    """Time steps per record interval ``t_final / n_records``; ``ValueError`` if not whole.

    Examples
    --------
    >>> record_schedule(50.0, 50, 1e-4)
    10000
    """
    if not (isinstance(n_records, (int, np.integer)) and n_records >= 1):
        raise ValueError(f"n_records must be an integer >= 1, got {n_records!r}")
    if not (math.isfinite(t_final) and t_final > 0):
        raise ValueError(f"t_final must be positive and finite, got {t_final!r}")
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be positive and finite, got {dt!r}")
    interval = t_final / n_records
    steps = round(interval / dt)
    if steps < 1 or abs(steps * dt - interval) > 1e-6 * interval:
        raise ValueError(
            f"the record interval t_final/n_records = {interval:g} is not a whole number of steps "
            f"dt = {dt:g}; choose dt = {interval:g}/m for an integer m"
        )
    return int(steps)


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


def _as_float(name: str, value) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None


def _check_resolution(n: int, what: str = "resolution") -> None:
    if not isinstance(n, (int, np.integer)) or n < 8 or n % 2:
        raise ValueError(f"{what} must be an even integer >= 8, got {n!r}")


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
        the records; explicit advection needs it well below 1).

    Examples
    --------
    >>> w0 = torch.zeros(1, 16, 16, dtype=torch.float64)
    >>> w, info = navier_stokes_2d(w0, nu=1e-3, t_final=0.1, n_records=2, dt=0.01,
    ...                            forcing=fno_forcing(16, dtype=torch.float64))
    >>> w.shape, info["steps"]
    (torch.Size([1, 3, 16, 16]), 10)
    """
    if w0.dim() != 3 or w0.shape[-1] != w0.shape[-2]:
        raise ValueError(f"w0 must have shape (B, n, n), got {tuple(w0.shape)}")
    n = int(w0.shape[-1])
    _check_resolution(n, "the grid size")
    if not (math.isfinite(nu) and nu > 0):
        raise ValueError(f"nu must be positive, got {nu!r}")
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    if w0.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"w0 must be float32 or float64, got {w0.dtype}")
    per_record = record_schedule(t_final, n_records, dt)
    dtype, device = w0.dtype, w0.device
    B = w0.shape[0]

    kx, ky = wavenumbers((n, n), dtype=dtype, device=device)  # (n, 1), (1, n//2+1)
    k2 = kx**2 + ky**2
    inv_k2 = torch.where(k2 > 0, 1.0 / torch.where(k2 > 0, k2, 1.0), 0.0)
    nyq = math.pi * n  # |k| of the Nyquist mode (2 pi n/2)
    dx = torch.where(kx.abs() == nyq, 0.0, kx)  # first derivatives drop the Nyquist mode
    dy = torch.where(ky.abs() == nyq, 0.0, ky)
    # psi = w / k^2; u = d psi/dy, v = -d psi/dx, then dw/dx, dw/dy: one batched inverse FFT
    mult = torch.stack(
        torch.broadcast_tensors(1j * dy * inv_k2, -1j * dx * inv_k2, 1j * dx, 1j * dy)
    )
    half = 0.5 * dt * nu * k2
    a = (1.0 - half) / (1.0 + half)  # Crank-Nicolson amplification
    b = (dt / (1.0 + half)) * dealias_mask((n, n), device=device).to(dtype)
    w_h = torch.fft.rfft2(w0)
    f_term = torch.zeros((), dtype=w_h.dtype, device=device)
    if forcing is not None:
        f = forcing.to(device=device, dtype=dtype)
        f_term = torch.fft.rfft2(f) * (dt / (1.0 + half))

    def advection(w_h):
        q = torch.fft.irfft2(w_h.unsqueeze(1) * mult, s=(n, n))
        return torch.fft.rfft2(q[:, 0] * q[:, 2] + q[:, 1] * q[:, 3]), q

    out = torch.empty((B, n_records + 1, n, n), dtype=dtype, device=device)
    out[:, 0] = w0
    cfl = torch.zeros(B, dtype=torch.float64, device=device)
    prev = None
    for k in range(1, n_records + 1):
        for _ in range(per_record):
            nl, q = advection(w_h)
            if scheme == "ab2-cn" and prev is not None:
                nl, prev = 1.5 * nl - 0.5 * prev, nl
            elif scheme == "ab2-cn":
                prev = nl
            w_h = a * w_h - b * nl + f_term
        speed = (q[:, 0].abs() + q[:, 1].abs()).amax(dim=(-2, -1)).to(torch.float64)
        cfl = torch.maximum(cfl, torch.nan_to_num(speed * dt * n, nan=math.inf))
        out[:, k] = torch.fft.irfft2(w_h, s=(n, n))
    return out, {"steps": per_record * n_records, "cfl": cfl}


@register_pde
@dataclass(frozen=True)
class NavierStokes(PDEFamily):
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
        for key in ("nu", "t_final", "dt"):  # accept "1e-3" from YAML / the command line
            object.__setattr__(self, key, _as_float(key, getattr(self, key)))
        _check_resolution(self.resolution)
        if not (math.isfinite(self.nu) and self.nu > 0):
            raise ValueError(f"nu must be positive, got {self.nu!r}")
        record_schedule(float(self.t_final), self.n_records, float(self.dt))
        if self.forcing not in ("fno", "none"):
            raise ValueError(f"forcing must be 'fno' or 'none', got {self.forcing!r}")
        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, got {self.scheme!r}")
        if not (isinstance(self.oversample, (int, np.integer)) and self.oversample >= 1):
            raise ValueError(f"oversample must be an integer >= 1, got {self.oversample!r}")
        if self.precision not in ("float32", "float64"):
            raise ValueError(f"precision must be 'float32' or 'float64', got {self.precision!r}")

    @property
    def solver_resolution(self) -> int:
        """Nodes per dimension of the grid the equation is solved on."""
        return self.resolution * self.oversample

    @property
    def _dtype(self) -> torch.dtype:
        return torch.float64 if self.precision == "float64" else torch.float32

    def sample_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``{"w0": (n, m, m)}`` with ``m = solver_resolution``, in ``precision``."""
        from pdekit.pdes.grf import GaussianRandomField

        law = GaussianRandomField(
            alpha=self.ic_alpha, tau=self.ic_tau, sigma=self.ic_sigma, boundary="periodic"
        )
        m = self.solver_resolution
        return {"w0": law.sample(n, (m, m), generator, dtype=self._dtype)}

    def solve(self, inputs: dict[str, torch.Tensor], *, device=None, **kwargs) -> Solution:
        """Integrate every initial condition; see the class notes.

        ``inputs["w0"]`` is ``(B, m, m)`` with ``m = solver_resolution``; the computation runs on
        ``device`` (default: the input's device) in ``precision``. ``iterations`` is the number of
        time steps; ``rel_residual`` is 0 for a finite trajectory and ``inf`` for one that blew
        up; ``extra["cfl"]`` holds the largest advective CFL number per sample.
        """
        if kwargs:
            raise TypeError(f"unexpected solve option(s) {', '.join(sorted(kwargs))}")
        if "w0" not in inputs:
            raise ValueError(f"navier-stokes needs inputs['w0'], got {', '.join(inputs)}")
        w0 = inputs["w0"]
        m = self.solver_resolution
        if w0.dim() != 3 or tuple(w0.shape[1:]) != (m, m):
            raise ValueError(f"w0 must have shape (B, {m}, {m}), got {tuple(w0.shape)}")
        w0 = w0.to(device=device if device is not None else w0.device, dtype=self._dtype)
        f = fno_forcing(m, dtype=self._dtype, device=w0.device) if self.forcing == "fno" else None
        w, info = navier_stokes_2d(
            w0, nu=float(self.nu), t_final=float(self.t_final), n_records=int(self.n_records),
            dt=float(self.dt), forcing=f, scheme=self.scheme,
        )
        s = self.oversample
        w = w[..., ::s, ::s].to(torch.float32)
        finite = torch.isfinite(w).flatten(1).all(dim=1)
        B = w.shape[0]
        return Solution(
            fields={"w": w},
            iterations=torch.full((B,), info["steps"], dtype=torch.int64, device=w.device),
            rel_residual=torch.where(finite, 0.0, math.inf).to(torch.float64),
            extra={"cfl": info["cfl"], "scheme": self.scheme, "solver_resolution": m},
        )

    def field_dims(self) -> dict[str, tuple[str, ...]]:
        return {"w": ("sample", "time", "x", "y")}

    def coords(self) -> dict[str, np.ndarray]:
        x = np.arange(self.resolution) / self.resolution
        t = np.arange(self.n_records + 1) * (float(self.t_final) / self.n_records)
        return {"time": t, "x": x, "y": x.copy()}
