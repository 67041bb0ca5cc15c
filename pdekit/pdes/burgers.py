"""1-D viscous Burgers equation on the periodic unit interval (FNO benchmark).

.. math:: \\partial_t u + \\partial_x (u^2 / 2) = \\nu \\partial_{xx} u, \\qquad x \\in [0, 1)

with the initial condition ``u0 ~ N(0, 625 (-lap + 25 I)^(-2))`` (zero mean mode), ``nu = 0.1``
and ``T = 1`` in the FNO paper (Li et al. 2021, sec. 5.1).

Scheme: Fourier pseudo-spectral on the periodic nodes ``x_i = i / n``; the flux ``u^2 / 2`` is
formed on the grid and truncated by the 2/3 rule before it is differentiated (the state itself is
not truncated, as in :mod:`pdekit.pdes.navier_stokes`); time stepping by the exponential time
differencing Runge-Kutta scheme ETDRK4 of Cox and Matthews (the viscous term is integrated
exactly), with the ``phi`` coefficients evaluated by the contour integrals of Kassam and
Trefethen (32 points, in float64). ETDRK4 is fourth order and, unlike an implicit step, has no
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
from pdekit.pdes.base import PDEFamily, Solution, register_pde
from pdekit.pdes.navier_stokes import _as_float, record_schedule

__all__ = ["Burgers", "burgers_1d", "etdrk4_coefficients"]

Precision = Literal["float32", "float64"]


def _check_resolution(n, what: str = "resolution") -> None:
    if not isinstance(n, (int, np.integer)) or n < 8 or n % 2:
        raise ValueError(f"{what} must be an even integer >= 8, got {n!r}")


def etdrk4_coefficients(lin: torch.Tensor, dt: float, n_contour: int = 32) -> dict[str, torch.Tensor]:
    """ETDRK4 coefficients of a diagonal linear part ``lin`` (Kassam-Trefethen contour means).

    Parameters
    ----------
    lin : Tensor
        Real eigenvalues ``L_k`` of the linear operator (any shape); computed in float64.
    dt : float
    n_contour : int
        Points on the unit circle around each ``dt L_k``.

    Returns
    -------
    dict
        ``E = exp(dt L)``, ``E2 = exp(dt L / 2)``, ``Q``, ``f1``, ``f2``, ``f3`` (float64, the
        shape of ``lin``), such that one step reads ``a = E2 v + Q N(v)``, ``b = E2 v + Q N(a)``,
        ``c = E2 a + Q (2 N(b) - N(v))``, ``v' = E v + f1 N(v) + 2 f2 (N(a) + N(b)) + f3 N(c)``.

    Examples
    --------
    >>> c = etdrk4_coefficients(torch.tensor([0.0]), 0.1)
    >>> round(float(c["Q"]), 12), round(float(c["f1"]), 12)   # dt/2 and dt/6 when L = 0
    (0.05, 0.016666666667)
    """
    L = lin.to(torch.float64)
    hl = dt * L
    r = torch.exp(1j * math.pi * (torch.arange(1, n_contour + 1, dtype=torch.float64) - 0.5)
                  / n_contour).to(L.device)
    z = hl.unsqueeze(-1) + r  # (..., M)
    ez = torch.exp(z)
    Q = dt * ((torch.exp(z / 2) - 1) / z).mean(-1).real
    f1 = dt * ((-4 - z + ez * (4 - 3 * z + z**2)) / z**3).mean(-1).real
    f2 = dt * ((2 + z + ez * (z - 2)) / z**3).mean(-1).real
    f3 = dt * ((-4 - 3 * z - z**2 + ez * (4 - z)) / z**3).mean(-1).real
    return {"E": torch.exp(hl), "E2": torch.exp(hl / 2), "Q": Q, "f1": f1, "f2": f2, "f3": f3}


def burgers_1d(
    u0: torch.Tensor, *, nu: float, t_final: float, n_records: int, dt: float
) -> tuple[torch.Tensor, dict]:
    """Integrate Burgers' equation from ``u0`` (ETDRK4, dealiased) and return the records.

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
    if u0.dim() != 2:
        raise ValueError(f"u0 must have shape (B, n), got {tuple(u0.shape)}")
    n = int(u0.shape[-1])
    _check_resolution(n, "the grid size")
    if not (math.isfinite(nu) and nu > 0):
        raise ValueError(f"nu must be positive, got {nu!r}")
    if u0.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"u0 must be float32 or float64, got {u0.dtype}")
    per_record = record_schedule(t_final, n_records, dt)
    dtype, device = u0.dtype, u0.device
    (k,) = wavenumbers((n,), dtype=torch.float64, device=device)
    c = {key: v.to(dtype) for key, v in etdrk4_coefficients(-nu * k**2, dt).items()}
    E, E2, Q, f1, f2, f3 = (c[key] for key in ("E", "E2", "Q", "f1", "f2", "f3"))
    kd = torch.where(k.abs() == math.pi * n, 0.0, k).to(dtype)  # Nyquist dropped from d/dx
    g = (-0.5j * kd) * dealias_mask((n,), device=device).to(dtype)  # N(v) = g * fft(u^2)

    def flux(v):
        u = torch.fft.irfft(v, n=n)
        return g * torch.fft.rfft(u * u)

    v = torch.fft.rfft(u0)
    out = torch.empty((u0.shape[0], n_records + 1, n), dtype=dtype, device=device)
    out[:, 0] = u0
    cfl = torch.zeros(u0.shape[0], dtype=torch.float64, device=device)
    for rec in range(1, n_records + 1):
        for _ in range(per_record):
            Nv = flux(v)
            a = E2 * v + Q * Nv
            Na = flux(a)
            b = E2 * v + Q * Na
            Nb = flux(b)
            cc = E2 * a + Q * (2 * Nb - Nv)
            Nc = flux(cc)
            v = E * v + f1 * Nv + 2 * f2 * (Na + Nb) + f3 * Nc
        u = torch.fft.irfft(v, n=n)
        out[:, rec] = u
        speed = u.abs().amax(-1).to(torch.float64)
        cfl = torch.maximum(cfl, torch.nan_to_num(speed * dt * n, nan=math.inf))
    return out, {"steps": per_record * n_records, "cfl": cfl}


@register_pde
@dataclass(frozen=True)
class Burgers(PDEFamily):
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
        for key in ("nu", "t_final", "dt"):  # accept "1e-3" from YAML / the command line
            object.__setattr__(self, key, _as_float(key, getattr(self, key)))
        _check_resolution(self.resolution)
        if not (math.isfinite(self.nu) and self.nu > 0):
            raise ValueError(f"nu must be positive, got {self.nu!r}")
        record_schedule(float(self.t_final), self.n_records, float(self.dt))
        if not (isinstance(self.oversample, (int, np.integer)) and self.oversample >= 1):
            raise ValueError(f"oversample must be an integer >= 1, got {self.oversample!r}")
        if self.precision not in ("float32", "float64"):
            raise ValueError(f"precision must be 'float32' or 'float64', got {self.precision!r}")

    @property
    def solver_resolution(self) -> int:
        """Nodes of the grid the equation is solved on."""
        return self.resolution * self.oversample

    @property
    def _dtype(self) -> torch.dtype:
        return torch.float64 if self.precision == "float64" else torch.float32

    def sample_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``{"u0": (n, solver_resolution)}`` in ``precision``."""
        from pdekit.pdes.grf import GaussianRandomField

        law = GaussianRandomField(
            alpha=self.ic_alpha, tau=self.ic_tau, sigma=self.ic_sigma, boundary="periodic"
        )
        return {"u0": law.sample(n, (self.solver_resolution,), generator, dtype=self._dtype)}

    def solve(self, inputs: dict[str, torch.Tensor], *, device=None, **kwargs) -> Solution:
        """Integrate every initial condition.

        ``iterations`` is the number of time steps, ``rel_residual`` 0 for a finite trajectory and
        ``inf`` for one that blew up, ``extra["cfl"]`` the largest ``dt max|u| n`` per sample.
        """
        if kwargs:
            raise TypeError(f"unexpected solve option(s) {', '.join(sorted(kwargs))}")
        if "u0" not in inputs:
            raise ValueError(f"burgers needs inputs['u0'], got {', '.join(inputs)}")
        u0 = inputs["u0"]
        m = self.solver_resolution
        if u0.dim() != 2 or u0.shape[1] != m:
            raise ValueError(f"u0 must have shape (B, {m}), got {tuple(u0.shape)}")
        u0 = u0.to(device=device if device is not None else u0.device, dtype=self._dtype)
        u, info = burgers_1d(
            u0, nu=float(self.nu), t_final=float(self.t_final), n_records=int(self.n_records),
            dt=float(self.dt),
        )
        u = u[..., :: self.oversample].to(torch.float32)
        finite = torch.isfinite(u).flatten(1).all(dim=1)
        return Solution(
            fields={"u": u},
            iterations=torch.full((u.shape[0],), info["steps"], dtype=torch.int64, device=u.device),
            rel_residual=torch.where(finite, 0.0, math.inf).to(torch.float64),
            extra={"cfl": info["cfl"], "solver_resolution": m},
        )

    def field_dims(self) -> dict[str, tuple[str, ...]]:
        return {"u": ("sample", "time", "x")}

    def coords(self) -> dict[str, np.ndarray]:
        t = np.arange(self.n_records + 1) * (float(self.t_final) / self.n_records)
        return {"time": t, "x": np.arange(self.resolution) / self.resolution}
