"""The heat equation ``u_t = kappa lap u + s(x)``, ``u = 0`` on the boundary, implicit time steps.

Space: the second-order ``(2 ndim + 1)``-point Laplacian ``L = -lap_h`` on the Darcy-convention node
grid (``n`` nodes per dimension including the boundary, 1-D or 2-D). Time: the theta scheme

.. math:: (I + \\theta\\,\\Delta t\\,\\kappa L)\\,u^{n+1}
          = (I - (1 - \\theta)\\,\\Delta t\\,\\kappa L)\\,u^n + \\Delta t\\, s,

backward Euler (``theta = 1``, first order, L-stable) or Crank-Nicolson (``theta = 1/2``, second
order; high-frequency modes with ``dt kappa lambda >> 1`` are damped only by a factor close to -1).
Every step solves a system with the SAME matrix and a new right-hand side (a batch of ``N``
samples), so:

``"spsolve"``
    factorises the matrix once (``scipy.sparse.linalg.splu``, CPU) and reuses the factors for every
    step and sample (``extra["factorizations"] == 1``);
``"cg"``, ``"mgpcg"``
    batched (multigrid-preconditioned) CG warm-started from the previous time level;
``"rcg"``
    deflated CG, warm-started, with one recycling chain per sample carried across the steps (the
    operator is the same, so the deflation space is kept without rebuilding ``A W``).

The solver settings are a :class:`~pdekit.core.solve_config.SolveConfig` (default: CG to
``rtol = 1e-8``, ``recycle_dim = 10`` deflation vectors for ``rcg``). ``preconditioner`` may be
``"jacobi"`` or ``"mg"`` (the V-cycle of the step matrix) for ``cg`` and ``rcg``. ``ordering``,
``n_chains`` and ``batch_size`` do not apply (every sample is its own chain through time) and must
keep their defaults.

The initial condition is a Gaussian random field in the sine (Dirichlet) expansion of ``-lap``,
``N(0, (-lap + tau^2 I)^(-alpha))``, scaled so that its largest pointwise standard deviation is 1; it
vanishes on the boundary, compatible with the boundary condition.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch

from pdekit.core.grid import Grid
from pdekit.core.sequence import build_preconditioner, true_residual
from pdekit.core.solve_config import SolveConfig
from pdekit.core.stencils import StencilOperator, laplacian
from pdekit.errors import PdekitUserError
from pdekit.pdes._validation import check_choice, check_n_samples, check_resolution, input_field
from pdekit.pdes.base import PDEFamily, Solution, register_pde
from pdekit.pdes.grf import GaussianRandomField

__all__ = ["Heat"]

_METHODS = ("spsolve", "cg", "mgpcg", "rcg")
_NOT_USED = ("ordering", "n_chains", "batch_size")  # every sample is its own chain through time
_SCHEMES = {"backward-euler": 1.0, "crank-nicolson": 0.5}


@register_pde
@dataclass(frozen=True)
class Heat(PDEFamily):
    """Heat equation with a random initial condition, implicit time stepping.

    Parameters
    ----------
    ndim : {1, 2}
        Space dimensions.
    resolution : int
        Nodes per dimension, boundary included.
    kappa : float
        Diffusivity.
    scheme : {"crank-nicolson", "backward-euler"}
    dt : float
        Time step.
    n_steps : int
        Number of steps (ignored when ``t_final`` is given).
    record_every : int
        Keep every ``record_every``-th time level (ignored when ``n_records`` is given). Levels
        ``0, r, 2r, ...`` up to ``n_steps`` are stored.
    t_final : float, optional
        Final time; then ``n_steps = t_final / dt``, which must be an integer (to 1e-9).
    n_records : int, optional
        Number of stored time levels including ``t = 0`` (``n_records - 1`` must divide the number
        of steps).
    source : {"none", "constant", "random"}
        ``s = 0``, ``s = 1``, or a Gaussian random field (an input field ``f``).
    alpha, tau : float
        GRF parameters of the initial condition (and random source).

    Examples
    --------
    >>> import torch
    >>> from pdekit.core.solve_config import SolveConfig
    >>> fam = Heat(ndim=1, resolution=33, dt=0.01, n_steps=10, record_every=5)
    >>> inputs = fam.sample_inputs(2, torch.Generator().manual_seed(0))
    >>> sol = fam.solve(inputs, SolveConfig(method="spsolve"))
    >>> sol.fields["u"].shape, fam.coords()["time"].tolist(), sol.extra["factorizations"]
    (torch.Size([2, 3, 33]), [0.0, 0.05, 0.1], 1)

    References
    ----------
    .. [1] J. Crank, P. Nicolson, "A practical method for numerical evaluation of solutions of
       partial differential equations of the heat-conduction type", Proc. Camb. Phil. Soc. 43, 1947.
    .. [2] H. Wang et al., "Accelerating data generation for neural operators via Krylov subspace
       recycling", ICLR 2024 (sequences of systems with a fixed matrix).
    """

    name: ClassVar[str] = "heat"
    default_solve_config: ClassVar[SolveConfig | None] = SolveConfig(method="cg", recycle_dim=10)

    ndim: int = 2
    resolution: int = 64
    kappa: float = 0.1
    scheme: Literal["crank-nicolson", "backward-euler"] = "crank-nicolson"
    dt: float = 0.01
    n_steps: int = 50
    record_every: int = 5
    t_final: float | None = None
    n_records: int | None = None
    source: Literal["none", "constant", "random"] = "none"
    alpha: float = 2.0
    tau: float = 3.0

    def __post_init__(self):
        if self.ndim not in (1, 2):
            raise ValueError(f"ndim must be 1 or 2, got {self.ndim!r}")
        check_resolution(self.resolution)
        check_choice("scheme", self.scheme, tuple(_SCHEMES))
        check_choice("source", self.source, ("none", "constant", "random"))
        for name in ("kappa", "dt"):
            v = float(getattr(self, name))
            if not (0 < v < math.inf):
                raise ValueError(f"{name} must be positive and finite, got {v}")
        GaussianRandomField(self.alpha, self.tau, boundary="dirichlet")
        steps = self.steps  # validates n_steps / t_final
        if self.n_records is not None:
            if int(self.n_records) != self.n_records or self.n_records < 2:
                raise ValueError(f"n_records must be an integer >= 2, got {self.n_records!r}")
            if steps % (self.n_records - 1):
                raise ValueError(
                    f"n_records - 1 = {self.n_records - 1} must divide the {steps} time steps"
                )
        elif int(self.record_every) != self.record_every or self.record_every < 1:
            raise ValueError(f"record_every must be a positive integer, got {self.record_every!r}")

    # ------------------------------------------------------------------ derived
    @property
    def steps(self) -> int:
        """Number of time steps."""
        if self.t_final is None:
            if int(self.n_steps) != self.n_steps or self.n_steps < 1:
                raise ValueError(f"n_steps must be a positive integer, got {self.n_steps!r}")
            return int(self.n_steps)
        if not (0 < self.t_final < math.inf):
            raise ValueError(f"t_final must be positive and finite, got {self.t_final}")
        steps = round(self.t_final / self.dt)
        if steps < 1 or abs(steps * self.dt - self.t_final) > 1e-9 * self.t_final:
            raise ValueError(f"t_final = {self.t_final} is not a multiple of dt = {self.dt}")
        return steps

    @property
    def every(self) -> int:
        """Steps between stored time levels."""
        if self.n_records is not None:
            return self.steps // (self.n_records - 1)
        return int(self.record_every)

    @property
    def grid(self) -> Grid:
        return Grid((self.resolution,) * self.ndim, bc="dirichlet")

    def times(self) -> np.ndarray:
        """Times of the stored levels."""
        return np.arange(0, self.steps + 1, self.every) * self.dt

    def field_dims(self) -> dict[str, tuple[str, ...]]:
        space = ("x", "y")[: self.ndim]
        out = {"u0": ("sample", *space), "u": ("sample", "time", *space)}
        if self.source == "random":
            out["f"] = ("sample", *space)
        return out

    def coords(self) -> dict[str, np.ndarray]:
        x = np.linspace(0.0, 1.0, self.resolution)
        out = {"time": self.times(), "x": x}
        if self.ndim == 2:
            out["y"] = x.copy()
        return out

    def operator(self, *, dtype=torch.float64, device=None) -> tuple[StencilOperator, StencilOperator]:
        """``(A, L)``: the step matrix ``I + theta dt kappa L`` and ``L = -lap_h``."""
        L = laplacian(self.grid, dtype=dtype, device=device)
        c = _SCHEMES[self.scheme] * self.dt * self.kappa
        A = StencilOperator(self.grid, 1.0 + c * L.c0, [c * t for t in L.cm],
                            [c * t for t in L.cp], symmetric=True, name="heat-step")
        return A, L

    def step_preconditioner(self, kind: Literal["none", "jacobi", "mg"] = "mg", *,
                            device=None):
        """The preconditioner ``kind`` of the step matrix ``A`` of :meth:`operator` (float64).

        ``"mg"`` is the multigrid V-cycle of ``A = I + c L`` seen as the diffusion problem with the
        constant coefficient ``c = theta dt kappa`` and reaction 1; ``"none"`` gives ``None``.

        Examples
        --------
        >>> import torch
        >>> fam = Heat(ndim=2, resolution=17, scheme="backward-euler")
        >>> A, _ = fam.operator()
        >>> M = fam.step_preconditioner("mg")
        >>> b = torch.ones(1, A.grid.n_unknowns, dtype=torch.float64)
        >>> bool((b - A.matvec(M.matvec(b))).norm() < 0.5 * b.norm())   # a good approximate inverse
        True
        """
        check_choice("kind", kind, ("none", "jacobi", "mg"))
        A, _ = self.operator(device=device)
        c = _SCHEMES[self.scheme] * self.dt * self.kappa
        a = torch.full((1, *self.grid.shape), c, dtype=torch.float64, device=A.device)
        return build_preconditioner(kind, A, a if kind == "mg" else None, reaction=1.0)

    # ----------------------------------------------------------------- sampling
    def sample_inputs(self, n: int, generator: torch.Generator | None = None) -> dict:
        """Draw ``n`` initial conditions ``u0`` (and sources ``f``), float64."""
        n = check_n_samples(n)
        shape = (self.resolution,) * self.ndim
        field = GaussianRandomField(self.alpha, self.tau, boundary="dirichlet")
        u0 = field.sample(n, shape, generator) / float(field.pointwise_std(shape).max())
        out = {"u0": u0}
        if self.source == "random":
            src = GaussianRandomField(self.alpha, self.tau, zero_mean=False, normalize=True)
            out["f"] = src.sample(n, shape, generator)
        return out

    # ------------------------------------------------------------------ solving
    def _check_config(self, config: SolveConfig) -> SolveConfig:
        if config.method not in _METHODS:
            raise PdekitUserError(f"heat: method must be one of {', '.join(_METHODS)}, "
                                  f"got {config.method!r}")
        default = SolveConfig()
        for name in _NOT_USED:
            if getattr(config, name) != getattr(default, name):
                raise PdekitUserError(
                    f"heat does not use {name} (every sample is its own recycling chain through "
                    f"time); leave it at {getattr(default, name)!r}, got {getattr(config, name)!r}"
                )
        return config

    def solve(
        self,
        inputs: dict[str, torch.Tensor],
        config: SolveConfig | None = None,
        *,
        progress: bool = False,
        **overrides,
    ) -> Solution:
        """Step every sample from ``u0`` to the final time; store the recorded levels.

        Parameters
        ----------
        inputs : dict
            ``"u0"`` ``(N, *grid.shape)`` (boundary values are ignored: ``u = 0`` there); ``"f"``
            for ``source="random"``. The computation runs on the device of ``u0``.
        config : SolveConfig, optional
            Default ``SolveConfig(method="cg", recycle_dim=10)``; ``method`` one of ``"spsolve"``,
            ``"cg"``, ``"mgpcg"``, ``"rcg"`` (see the module notes). ``rtol``, ``atol`` and
            ``maxiter`` apply per step and sample, on the true residual; ``recycle_dim`` is the
            number of deflation vectors per sample of ``rcg``.
        progress : bool
            tqdm bar over the time steps.
        **overrides
            Fields of ``config`` to replace, e.g. ``method="spsolve"``.

        Returns
        -------
        Solution
            ``fields["u"]`` ``(N, n_records, *grid.shape)``; ``iterations`` summed over the steps;
            ``rel_residual`` the worst step's true relative residual; ``extra``: ``method``,
            ``steps``, ``factorizations`` (``spsolve``), ``matvecs``, ``setup_s``, ``solve_s``.
        """
        config = self.solve_config(config, **overrides)
        shape = self.grid.shape
        u0_in = input_field(inputs, "u0", shape)
        N = u0_in.shape[0]
        dev = u0_in.device
        A, L = self.operator(device=dev)
        theta = _SCHEMES[self.scheme]
        ish = self.grid.interior_shape
        u = self.grid.interior(u0_in.to(device=dev, dtype=torch.float64)).clone()
        src = None
        if self.source == "constant":
            src = torch.full((1, *ish), self.dt, dtype=torch.float64, device=dev)
        elif self.source == "random":
            f_in = input_field(inputs, "f", shape, n=N)
            src = self.dt * self.grid.interior(f_in.to(device=dev, dtype=torch.float64))

        t0 = time.perf_counter()
        step = _Stepper(config, A, self.grid, theta * self.dt * self.kappa)
        setup_s = time.perf_counter() - t0
        records = [u]
        its = torch.zeros(N, dtype=torch.long, device=dev)
        worst = torch.zeros(N, dtype=torch.float64, device=dev)
        c_explicit = (1.0 - theta) * self.dt * self.kappa
        from tqdm.auto import tqdm

        for n in tqdm(range(1, self.steps + 1), disable=not progress, desc="heat", leave=False):
            rhs = u - c_explicit * L.apply(u) if c_explicit else u
            if src is not None:
                rhs = rhs + src
            u, k = step(rhs, u)
            its += k
            worst = torch.maximum(worst, true_residual(A, u, rhs))
            if n % self.every == 0:
                records.append(u)
        out = self.grid.extend(torch.stack(records, dim=1))
        extra = {
            "method": config.method,
            "steps": self.steps,
            "factorizations": step.factorizations,
            "matvecs": step.matvecs,
            "setup_s": setup_s + step.setup_s,
            "solve_s": time.perf_counter() - t0 - setup_s - step.setup_s,
        }
        return Solution(
            fields={"u": out.to(device=u0_in.device, dtype=u0_in.dtype)},
            iterations=its.to(u0_in.device),
            rel_residual=worst.to(u0_in.device),
            extra=extra,
        )


class _Stepper:
    """Solve ``A u = rhs`` for a batch, the same ``A`` at every call; ``__call__(rhs, u_prev)``."""

    def __init__(self, config: SolveConfig, A: StencilOperator, grid: Grid, c: float):
        self.method, self.A, self.config = config.method, A, config
        self.factorizations = 0
        self.matvecs = 0
        self.setup_s = 0.0
        self.recycle = None
        self._lu = None
        pc = config.preconditioner or ("mg" if config.method == "mgpcg" else "none")
        t0 = time.perf_counter()
        # the step matrix I + c L is the diffusion operator of the constant coefficient c
        a = torch.full((1, *grid.shape), c, dtype=torch.float64, device=A.device)
        self.M = build_preconditioner(pc, A, a if pc == "mg" else None, reaction=1.0)
        self.setup_s = time.perf_counter() - t0

    def __call__(self, rhs: torch.Tensor, u_prev: torch.Tensor):
        N = rhs.shape[0]
        shape = rhs.shape
        if self.method == "spsolve":
            if self._lu is None:
                import scipy.sparse.linalg as spla

                t0 = time.perf_counter()
                self._lu = spla.splu(self.A.to_scipy().tocsc())
                self.factorizations += 1
                self.setup_s += time.perf_counter() - t0
            B = rhs.reshape(N, -1).detach().cpu().numpy()
            X = self._lu.solve(np.ascontiguousarray(B.T)).T
            u = torch.from_numpy(np.ascontiguousarray(X)).to(rhs).reshape(shape)
            return u, torch.zeros(N, dtype=torch.long, device=rhs.device)
        b = rhs.reshape(N, -1)
        x0 = u_prev.reshape(N, -1)
        if self.method == "rcg":
            from pdekit.core.recycling import recycled_solve

            cfg = self.config
            res = recycled_solve(self.A, b, x0, method="rcg", k=cfg.recycle_dim, rtol=cfg.rtol,
                                 atol=cfg.atol, maxiter=cfg.maxiter, M=self.M,
                                 recycle=self.recycle, same_operator=self.recycle is not None)
            self.recycle = res.recycle
        else:
            from pdekit.core.krylov import solve

            cfg = self.config
            res = solve(self.A, b, "cg", x0=x0, rtol=cfg.rtol, atol=cfg.atol, maxiter=cfg.maxiter,
                        M=self.M)
        self.matvecs += int(res.matvecs)
        return res.x.reshape(shape), res.iterations.to(rhs.device)
