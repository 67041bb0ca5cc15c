"""Gaussian random fields ``N(0, sigma^2 (-lap + tau^2 I)^(-alpha))`` by spectral (KL) synthesis.

A Gaussian random field with this covariance operator is the Karhunen-Loeve expansion

.. math:: g(x) = \\sigma \\sum_k (\\lambda_k + \\tau^2)^{-\\alpha/2} \\, \\xi_k \\, \\phi_k(x),
   \\qquad \\xi_k \\sim N(0, 1) \\text{ i.i.d.},

over the eigenpairs ``(lambda_k, phi_k)`` of ``-lap`` on the unit box ``[0, 1]^d`` (``phi_k``
orthonormal in ``L^2``). Three boundary conditions of ``-lap`` are provided:

``"neumann"`` (the Darcy node grid)
    ``phi_k(x) = prod_d c_{k_d} cos(pi k_d x_d)`` with ``c_0 = 1``, ``c_{k>0} = sqrt(2)`` and
    ``lambda_k = pi^2 |k|^2``, evaluated on the ``n`` nodes ``x_i = i/(n-1)`` (boundary included)
    with the ``n`` modes ``k_d = 0..n-1`` per dimension: a DCT-I, computed with ``irfft``. This is the
    cosine expansion of the FNO Darcy data (Li et al. 2021, legacy ``GRF.m``: ``alpha = 2``,
    ``tau = 3``, the constant mode removed). FNO evaluates the sum with ``idct2``, i.e. at the cell
    centres ``(j + 1/2)/s``, and uses ``sigma = tau^(alpha - 1)``; pdekit evaluates the same
    expansion at the nodes, where the Darcy solution lives. Thresholding at 0 does not depend on
    ``sigma``.
``"dirichlet"``
    ``phi_k(x) = prod_d sqrt(2) sin(pi k_d x_d)``, ``lambda_k = pi^2 |k|^2``, on the same nodes with
    the ``n - 2`` modes ``k_d = 1..n-2`` (a DST-I): fields that vanish on the boundary, e.g. initial
    conditions of a Dirichlet heat problem.
``"periodic"``
    Fourier modes ``exp(2 pi i k . x)`` with ``lambda_k = 4 pi^2 |k|^2`` on the periodic nodes
    ``x_i = i/n``: white noise filtered by FFT (every mode representable on the grid, Nyquist
    included).

``zero_mean=True`` (the FNO convention) drops the constant mode ``k = 0`` (Neumann, periodic); ``zero_mean=False`` gives
exactly the covariance above (restricted to the grid's modes). ``normalize=True`` divides every
node by the field's exact pointwise standard deviation (computed from the spectrum) and multiplies
by ``sigma``, so the pointwise standard deviation is exactly ``sigma`` everywhere; the correlation
structure is unchanged. Without it the Neumann field's variance is larger near the boundary
(``phi_k^2 = 2`` there); Dirichlet fields stay 0 on the boundary.

Everything is drawn from a :class:`torch.Generator` only (``randn`` in float64 on the generator's
device, then cast), so the same seed gives the same field for every ``dtype``.

References
----------
.. [1] Z. Li, N. Kovachki, K. Azizzadenesheli, B. Liu, K. Bhattacharya, A. Stuart,
   A. Anandkumar, "Fourier neural operator for parametric partial differential equations",
   ICLR 2021, arXiv:2010.08895 (Darcy data: sec. 5.2).
.. [2] G. J. Lord, C. E. Powell, T. Shardlow, *An Introduction to Computational Stochastic PDEs*,
   Cambridge University Press, 2014, ch. 7 (spectral sampling of random fields).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

__all__ = ["GaussianRandomField", "grf"]

Boundary = Literal["neumann", "dirichlet", "periodic"]


def _check_shape(shape, boundary: str) -> tuple[int, ...]:
    if isinstance(shape, int):
        shape = (shape,)
    shape = tuple(int(s) for s in shape)
    if not 1 <= len(shape) <= 3:
        raise ValueError(f"random fields have 1, 2 or 3 dimensions, got shape {shape}")
    minimum = {"neumann": 2, "dirichlet": 3}.get(boundary, 1)
    if min(shape) < minimum:
        raise ValueError(f"a {boundary} random field needs at least {minimum} nodes, got {shape}")
    return shape


@dataclass(frozen=True)
class GaussianRandomField:
    """The law ``N(0, sigma^2 (-lap + tau^2 I)^(-alpha))`` on the unit box; see the module notes.

    Parameters
    ----------
    alpha : float
        Smoothness exponent (FNO Darcy: 2). Samples are continuous for ``alpha > d/2``.
    tau : float
        Inverse length scale (FNO Darcy: 3).
    sigma : float
        Amplitude; with ``normalize=True`` the exact pointwise standard deviation.
    boundary : {"neumann", "dirichlet", "periodic"}
        Eigenfunctions of ``-lap`` used: cosines or sines on the node grid ``i/(n-1)`` (boundary
        nodes included), or Fourier modes on the periodic grid ``i/n``.
    zero_mean : bool
        Drop the constant mode (FNO convention).
    normalize : bool
        Scale every node to pointwise standard deviation ``sigma``.

    Examples
    --------
    >>> import torch
    >>> field = GaussianRandomField(alpha=2.0, tau=3.0, normalize=True)
    >>> g = field.sample(4, (16, 16), torch.Generator().manual_seed(0))
    >>> g.shape, g.dtype
    (torch.Size([4, 16, 16]), torch.float64)
    >>> bool(torch.allclose(field.pointwise_std((16, 16)), torch.ones(16, 16, dtype=torch.float64)))
    True
    """

    alpha: float = 2.0
    tau: float = 3.0
    sigma: float = 1.0
    boundary: Boundary = "neumann"
    zero_mean: bool = True
    normalize: bool = False

    def __post_init__(self):
        for name in ("alpha", "tau", "sigma"):
            v = float(getattr(self, name))
            if not math.isfinite(v) or v < 0 or (name != "tau" and v == 0):
                raise ValueError(f"GRF {name} must be finite and positive, got {v}")
        if self.boundary not in ("neumann", "dirichlet", "periodic"):
            raise ValueError(
                f"GRF boundary must be 'neumann', 'dirichlet' or 'periodic', got {self.boundary!r}"
            )
        if self.tau == 0 and self.zero_mean is False and self.boundary != "dirichlet":
            raise ValueError("tau = 0 needs zero_mean=True (the constant mode has infinite variance)")

    # ---------------------------------------------------------------- spectrum
    def mode_std(self, shape, *, dtype=torch.float64, device=None) -> torch.Tensor:
        """Standard deviation ``sigma (lambda_k + tau^2)^(-alpha/2)`` of every KL coefficient.

        Shape ``shape`` (Neumann: modes ``k_d = 0..n_d-1``), ``shape - 2`` (Dirichlet: modes
        ``k_d = 1..n_d-2``) or the rfft layout (periodic); the constant mode is 0 when
        ``zero_mean``. No ``normalize`` scaling is applied here.
        """
        shape = _check_shape(shape, self.boundary)
        nd = len(shape)
        lam = torch.zeros((), dtype=torch.float64, device=device)
        for d, n in enumerate(shape):
            if self.boundary == "neumann":
                k = torch.arange(n, dtype=torch.float64, device=device)
                w = (math.pi * k) ** 2
            elif self.boundary == "dirichlet":
                k = torch.arange(1, n - 1, dtype=torch.float64, device=device)
                w = (math.pi * k) ** 2
            else:
                last = d == nd - 1
                m = torch.arange(n // 2 + 1 if last else n, device=device)
                if not last:
                    m = torch.where(m < (n + 1) // 2, m, m - n)
                w = (2 * math.pi * m.to(torch.float64)) ** 2
            view = [1] * nd
            view[d] = -1
            lam = lam + w.reshape(view)
        std = self.sigma * (lam + self.tau**2) ** (-self.alpha / 2)
        if self.zero_mean and self.boundary != "dirichlet":
            std = std.clone()
            std[(0,) * nd] = 0.0
        return std.to(dtype)

    def pointwise_std(self, shape, *, dtype=torch.float64, device=None) -> torch.Tensor:
        """Exact standard deviation at every node of the fields :meth:`sample` draws.

        ``sigma`` wherever the field is not identically 0 when ``normalize``; otherwise computed
        from the spectrum (larger near Neumann boundaries, 0 on Dirichlet ones).
        """
        raw = self._raw_std(shape, device=device)
        if self.normalize:
            raw = torch.where(raw > 0, torch.full_like(raw, self.sigma), raw)
        return raw.to(dtype)

    def _raw_std(self, shape, *, device=None) -> torch.Tensor:
        shape = _check_shape(shape, self.boundary)
        s2 = self.mode_std(shape, device=device) ** 2
        if self.boundary == "periodic":
            # stationary: var = sum over all modes of |coef|^2 (rfft layout counts +-k once)
            n_last = shape[-1]
            weight = torch.full((n_last // 2 + 1,), 2.0, dtype=torch.float64, device=device)
            weight[0] = 1.0
            if n_last % 2 == 0:
                weight[-1] = 1.0
            var = (s2 * weight).sum()
            return var.sqrt().expand(shape).clone()
        letters = "ijk"[: len(shape)]
        mats = []
        for n in shape:  # phi_k(x_j)^2 for x_j = j/(n-1)
            x = torch.arange(n, dtype=torch.float64, device=device) / (n - 1)
            if self.boundary == "dirichlet":
                k = torch.arange(1, n - 1, dtype=torch.float64, device=device)
                phi2 = 2.0 * torch.sin(math.pi * x[:, None] * k[None, :]) ** 2
                phi2[[0, -1]] = 0.0
            else:
                k = torch.arange(n, dtype=torch.float64, device=device)
                phi2 = torch.cos(math.pi * x[:, None] * k[None, :]) ** 2
                phi2[:, 1:] *= 2.0
            mats.append(phi2)
        spec = ",".join(f"{c.upper()}{c}" for c in letters) + f",{letters}->" + letters.upper()
        var = torch.einsum(spec, *mats, s2)
        return var.clamp_min(0).sqrt()

    # ---------------------------------------------------------------- sampling
    def sample(
        self,
        n_samples: int,
        shape,
        generator: torch.Generator | None = None,
        *,
        dtype: torch.dtype = torch.float64,
        device=None,
    ) -> torch.Tensor:
        """Draw ``n_samples`` fields of shape ``shape``; returns ``(n_samples, *shape)``.

        Normals are drawn in float64 on the generator's device (CPU without a generator) and the
        result is moved to ``device`` (default: the generator's device) and cast to ``dtype``.
        """
        shape = _check_shape(shape, self.boundary)
        if int(n_samples) < 0 or int(n_samples) != n_samples:
            raise ValueError(f"n_samples must be a non-negative integer, got {n_samples}")
        n_samples = int(n_samples)
        gen_device = generator.device if generator is not None else torch.device("cpu")
        out_device = torch.device(device) if device is not None else gen_device
        nd = len(shape)
        std = self.mode_std(shape, device=gen_device)
        # one normal per KL coefficient (Neumann, Dirichlet) or per node (periodic white noise)
        n_normals = shape if self.boundary == "periodic" else tuple(std.shape)
        xi = torch.randn(
            (n_samples, *n_normals), generator=generator, dtype=torch.float64, device=gen_device
        )
        if self.boundary != "periodic":
            coef = xi * std
            synth = _dct1_synthesis if self.boundary == "neumann" else _dst1_synthesis
            for d, n in enumerate(shape):
                coef = synth(coef, n, dim=coef.dim() - nd + d)
        else:
            dims = tuple(range(-nd, 0))
            white = torch.fft.rfftn(xi, dim=dims)
            scale = math.sqrt(math.prod(shape))
            coef = torch.fft.irfftn(white * (std * scale), s=shape, dim=dims)
        if self.normalize:
            ps = self._raw_std(shape, device=gen_device)
            coef = coef * (self.sigma / torch.where(ps > 0, ps, torch.ones_like(ps)))
        return coef.to(device=out_device, dtype=dtype)


def _dct1_synthesis(c: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    """``y_j = sum_k s_k c_k cos(pi k j / (n-1))`` along ``dim`` (``s_0 = 1``, ``s_k = sqrt 2``)."""
    N = n - 1
    c = c.movedim(dim, -1)
    w = torch.full((n,), math.sqrt(2.0) / 2, dtype=c.dtype, device=c.device)
    w[0] = 1.0
    w[-1] = math.sqrt(2.0)  # irfft counts the first and last entries once, the others twice
    y = torch.fft.irfft(c * w, n=2 * N, dim=-1)[..., :n] * (2 * N)
    return y.movedim(-1, dim)


def _dst1_synthesis(c: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    """``y_j = sum_{k=1}^{n-2} sqrt(2) c_k sin(pi k j / (n-1))``, ``j = 0..n-1``, along ``dim``."""
    N = n - 1
    c = c.movedim(dim, -1)
    pad = c.new_zeros(*c.shape[:-1], 1)
    full = torch.cat([pad, c, pad], dim=-1) * (-1j * math.sqrt(2.0))
    y = torch.fft.irfft(full, n=2 * N, dim=-1)[..., :n] * N
    y[..., 0] = 0.0  # exactly (sin(pi k) is only ~1e-16 in floating point)
    y[..., -1] = 0.0
    return y.movedim(-1, dim)


def grf(
    n_samples: int,
    shape,
    *,
    alpha: float = 2.0,
    tau: float = 3.0,
    sigma: float = 1.0,
    boundary: Boundary = "neumann",
    zero_mean: bool = True,
    normalize: bool = False,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device=None,
) -> torch.Tensor:
    """Sample ``N(0, sigma^2 (-lap + tau^2 I)^(-alpha))`` fields; see :class:`GaussianRandomField`.

    Returns a tensor ``(n_samples, *shape)`` on ``device`` (default: the generator's device).

    Examples
    --------
    >>> import torch
    >>> g = grf(2, (8, 8), boundary="periodic", generator=torch.Generator().manual_seed(1))
    >>> g.shape
    torch.Size([2, 8, 8])
    >>> h = grf(2, (8, 8), boundary="periodic", generator=torch.Generator().manual_seed(1))
    >>> bool((g == h).all())
    True

    References
    ----------
    .. [1] Li et al., "Fourier neural operator for parametric partial differential equations",
       ICLR 2021 (GRF with ``alpha = 2``, ``tau = 3`` for the Darcy coefficients).
    """
    field = GaussianRandomField(alpha, tau, sigma, boundary, zero_mean, normalize)
    return field.sample(n_samples, shape, generator, dtype=dtype, device=device)
