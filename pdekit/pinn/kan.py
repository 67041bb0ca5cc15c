"""Kolmogorov-Arnold network layers for physics-informed learning (B-spline and Chebyshev).

A KAN layer maps ``x`` of shape ``(..., n_in)`` to ``(..., n_out)`` with one learnable univariate
function per edge, ``y_o = sum_i phi_oi(x_i)``. Two edge families are provided:

* :class:`BSplineKANLayer` -- the "efficient-KAN" formulation used by KINN: a SiLU base branch
  plus a B-spline branch (Cox-de Boor basis on a uniform extended knot vector),
  ``phi_oi(x) = w_oi SiLU(x) + s_oi sum_j c_oij B_j(x)``, with an optional data-driven grid update.
  Order ``k`` gives ``C^(k-1)`` edges, so a second-order PDE residual needs ``spline_order >= 2``.
* :class:`ChebyshevKANLayer` -- ``phi_oi(x) = sum_d c_oid T_d(tanh x)`` (smooth, no base branch).

:class:`KAN` stacks layers into a plain point-wise torch module (each output depends only on its own
input row, so autograd derivatives are exact PDE derivatives). Wrap it with
:func:`pdekit.pinn.networks.deepxde_net` to train it with deepxde, or train it directly with
:func:`pdekit.pinn.second_order.train_pinn_second_order`.

These are *not* neural operators and are not in the model registry (:mod:`pdekit.models`): they
act on coordinates, not on fields on a grid, so they live with the PINNs that use them.

References
----------
Liu, Wang, Vaidya, Ruehle, Halverson, Soljacic, Hou & Tegmark (2024), "KAN: Kolmogorov-Arnold
Networks", arXiv:2404.19756.
Wang, Sun, Bai, Anitescu, Eshaghi, Zhuang, Rabczuk & Liu (2024), "Kolmogorov Arnold Informed neural
network: a physics-informed deep learning framework for solving forward and inverse problems based
on Kolmogorov Arnold Networks", arXiv:2406.11045.
de Boor (1972), "On calculating with B-splines", J. Approx. Theory 6(1), 50-62.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from pdekit.errors import PdekitUserError
from pdekit.pinn._pointwise import input_affine_map, layer_widths

__all__ = ["KAN", "BSplineKANLayer", "ChebyshevKANLayer", "bspline_basis", "uniform_knots"]


def uniform_knots(
    grid_size: int,
    spline_order: int,
    grid_range: tuple[float, float] = (-1.0, 1.0),
    *,
    dtype: torch.dtype = torch.float32,
    device=None,
) -> torch.Tensor:
    """Uniform knot vector on ``grid_range`` extended by ``spline_order`` cells on both sides.

    Returns ``t_j = a + (j - k) h`` for ``j = 0..G+2k`` (``G + 2k + 1`` knots, ``h = (b - a)/G``),
    which carries ``G + k`` B-splines of order ``k`` that sum to one on ``[a, b)``.

    Examples
    --------
    >>> uniform_knots(2, 1, (0.0, 1.0), dtype=torch.float64).tolist()
    [-0.5, 0.0, 0.5, 1.0, 1.5]
    """
    if grid_size < 1 or spline_order < 0:
        raise PdekitUserError(
            f"need grid_size >= 1 and spline_order >= 0, got {grid_size}, {spline_order}"
        )
    a, b = map(float, grid_range)
    if not b > a:
        raise PdekitUserError(f"grid_range must be increasing, got {grid_range}")
    h = (b - a) / grid_size
    j = torch.arange(-spline_order, grid_size + spline_order + 1, dtype=dtype, device=device)
    return a + j * h


def bspline_basis(x: torch.Tensor, knots: torch.Tensor, spline_order: int) -> torch.Tensor:
    """All B-splines of order ``spline_order`` on per-feature knot vectors (Cox-de Boor recursion).

    Parameters
    ----------
    x : Tensor, shape ``(..., n_in)``
    knots : Tensor, shape ``(n_in, m)`` or ``(m,)``
        Non-decreasing knots per input feature (strictly increasing where the recursion divides).
    spline_order : int
        Polynomial degree ``k`` (3 = cubic).

    Returns
    -------
    Tensor, shape ``(..., n_in, m - 1 - k)``
        ``B_j^k(x_i)``. The order-0 indicators are constants for autograd, so derivatives are the
        exact piecewise polynomial derivatives. All bases vanish outside ``[t_0, t_{m-1})``.

    Examples
    --------
    >>> t = uniform_knots(4, 3, dtype=torch.float64)
    >>> B = bspline_basis(torch.linspace(-1, 0.99, 7, dtype=torch.float64)[:, None], t, 3)
    >>> B.shape, bool(torch.allclose(B.sum(-1), torch.ones(7, 1, dtype=torch.float64)))
    (torch.Size([7, 1, 7]), True)
    """
    t = knots if knots.dim() == 2 else knots.unsqueeze(0)
    x = x.unsqueeze(-1)
    bases = ((x >= t[:, :-1]) & (x < t[:, 1:])).to(x.dtype)
    for p in range(1, spline_order + 1):
        left = (x - t[:, : -(p + 1)]) / (t[:, p:-1] - t[:, : -(p + 1)]) * bases[..., :-1]
        right = (t[:, p + 1 :] - x) / (t[:, p + 1 :] - t[:, 1:-p]) * bases[..., 1:]
        bases = left + right
    return bases


class _EdgeLayer(nn.Module):
    """What every KAN layer shares: the feature counts, the input check and the repr."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise PdekitUserError(
                f"features must be positive, got {in_features}, {out_features}"
            )
        self.in_features, self.out_features = in_features, out_features

    def _check_features(self, x: torch.Tensor) -> None:
        if x.shape[-1] != self.in_features:
            raise PdekitUserError(
                f"expected {self.in_features} input features, got shape {tuple(x.shape)}"
            )

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class BSplineKANLayer(_EdgeLayer):
    """Efficient-KAN layer: ``y = SiLU(x) W_b^T + B(x) (C * S)^T`` (KINN's ``KANLinear``).

    Parameters
    ----------
    in_features, out_features : int
    grid_size : int
        Number of grid cells ``G`` on ``grid_range``.
    spline_order : int
        B-spline degree ``k`` (3 = cubic, ``C^2`` edges).
    grid_range : (float, float)
        Interval the knots cover; the spline branch vanishes outside ``[a - k h, b + k h)``, so
        inputs should be mapped into it (see :class:`KAN`).
    scale_noise, scale_base, scale_spline : float
        Initialisation scales (efficient-KAN defaults).
    grid_eps : float
        Blend used by :meth:`update_grid`: ``0`` = knots at data quantiles, ``1`` = uniform.
    dtype, device : optional

    Attributes
    ----------
    knots : Tensor buffer, shape ``(in_features, G + 2k + 1)``
    base_weight : Parameter ``(out, in)``
    spline_weight : Parameter ``(out, in, G + k)``
    spline_scaler : Parameter ``(out, in)``

    Notes
    -----
    Parameter count ``out * in * (G + k + 2)``.

    References
    ----------
    Liu et al. (2024), arXiv:2404.19756; Wang et al. (2024) KINN, arXiv:2406.11045.

    Examples
    --------
    >>> layer = BSplineKANLayer(2, 3, grid_size=5)
    >>> layer(torch.rand(10, 2)).shape, sum(p.numel() for p in layer.parameters())
    (torch.Size([10, 3]), 60)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        grid_size: int = 5,
        spline_order: int = 3,
        grid_range: tuple[float, float] = (-1.0, 1.0),
        scale_noise: float = 0.1,
        scale_base: float = 1.0,
        scale_spline: float = 1.0,
        grid_eps: float = 0.02,
        dtype: torch.dtype | None = None,
        device=None,
    ):
        super().__init__(in_features, out_features)
        if spline_order < 1:
            raise PdekitUserError(f"spline_order must be >= 1, got {spline_order}")
        if not 0.0 <= grid_eps <= 1.0:
            raise PdekitUserError(f"grid_eps must lie in [0, 1], got {grid_eps}")
        dtype = dtype or torch.get_default_dtype()
        self.grid_size, self.spline_order = grid_size, spline_order
        self.grid_eps = grid_eps
        knots = uniform_knots(grid_size, spline_order, grid_range, dtype=dtype, device=device)
        self.register_buffer("knots", knots.expand(in_features, -1).contiguous())
        n_basis = grid_size + spline_order
        kw = {"dtype": dtype, "device": device}
        self.base_weight = nn.Parameter(torch.empty(out_features, in_features, **kw))
        self.spline_weight = nn.Parameter(torch.empty(out_features, in_features, n_basis, **kw))
        self.spline_scaler = nn.Parameter(torch.empty(out_features, in_features, **kw))
        with torch.no_grad():
            nn.init.kaiming_uniform_(self.base_weight, a=math.sqrt(5) * scale_base)
            nn.init.kaiming_uniform_(self.spline_scaler, a=math.sqrt(5) * scale_spline)
            # Small random spline: least-squares fit of noise at the G + 1 grid points.
            x = self.knots[:, spline_order:-spline_order].T  # (G + 1, in)
            noise = (torch.rand(grid_size + 1, in_features, out_features, **kw) - 0.5)
            self.spline_weight.copy_(self._fit(x, noise * scale_noise / grid_size))

    @property
    def grid_range(self) -> tuple[float, float]:
        """Range ``[a, b]`` of the (first feature's) grid, extension excluded."""
        k = self.spline_order
        return float(self.knots[0, k]), float(self.knots[0, -k - 1])

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        """B-spline basis ``(..., in, G + k)`` of the inputs ``(..., in)``."""
        return bspline_basis(x, self.knots, self.spline_order)

    def _fit(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Least-squares coefficients ``(out, in, G + k)`` with ``sum_j c_oij B_j(x_ni) = y_nio``."""
        A = self.basis(x).transpose(0, 1)  # (in, N, G + k)
        # float64 whatever the layer's dtype: in float32 the refit error reached ~10% of the output
        rhs = y.transpose(0, 1).to(torch.float64)
        sol = torch.linalg.lstsq(A.to(torch.float64), rhs, driver="gelsd" if A.device.type == "cpu" else None)
        return sol.solution.permute(2, 0, 1).to(y.dtype).contiguous()  # (out, in, G + k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(..., in_features)`` to ``(..., out_features)``."""
        self._check_features(x)
        lead = x.shape[:-1]
        x = x.reshape(-1, self.in_features)
        base = F.linear(F.silu(x), self.base_weight)
        coeff = (self.spline_weight * self.spline_scaler.unsqueeze(-1)).flatten(1)
        spline = F.linear(self.basis(x).flatten(1), coeff)
        return (base + spline).reshape(*lead, self.out_features)

    @torch.no_grad()
    def update_grid(
        self, x: torch.Tensor, *, margin: float = 0.01, grid_size: int | None = None
    ) -> None:
        """Move (and optionally refine) the knots to the distribution of ``x``, keeping the function.

        The new knots blend data quantiles and a uniform grid over ``[min - margin, max + margin]``
        per feature (weight ``grid_eps`` on the uniform part), are extended by ``k`` cells on both
        sides, and the spline coefficients are refit by least squares to the current spline outputs
        at ``x``, so the layer changes only by the refit error (zero for a pure refinement of the
        same knots, small otherwise). The scaler is folded into the new coefficients (set to 1).

        ``grid_size`` larger than the current one refines the grid; it replaces ``spline_weight`` by
        a new parameter, so build the optimizer afterwards. In place, an optimizer's moments for
        ``spline_weight`` are kept although the basis changed.

        Parameters
        ----------
        x : Tensor, shape ``(N, in)``
            Typical inputs of this layer (``N`` should exceed ``G + k``).
        margin : float
        grid_size : int, optional
        """
        x = x.reshape(-1, self.in_features).to(self.knots)
        n = x.shape[0]
        G = self.grid_size if grid_size is None else int(grid_size)
        k = self.spline_order
        # Current per-edge spline outputs (in, N, out).
        coeff = self.spline_weight * self.spline_scaler.unsqueeze(-1)
        target = torch.einsum("nij,oij->nio", self.basis(x), coeff)
        xs = torch.sort(x, dim=0).values
        idx = torch.linspace(0, n - 1, G + 1, device=x.device).round().long()
        adaptive = xs[idx]  # (G + 1, in)
        lo, hi = xs[0] - margin, xs[-1] + margin
        step = (hi - lo) / G
        uniform = lo + torch.arange(G + 1, dtype=x.dtype, device=x.device)[:, None] * step
        inner = self.grid_eps * uniform + (1 - self.grid_eps) * adaptive
        ext = torch.arange(1, k + 1, dtype=x.dtype, device=x.device)[:, None] * step
        knots = torch.cat([inner[:1] - ext.flip(0), inner, inner[-1:] + ext], dim=0).T
        self.knots = knots.contiguous()
        new = self._fit(x, target)
        if G != self.grid_size:
            self.spline_weight = nn.Parameter(new)
            self.grid_size = G
        else:
            self.spline_weight.copy_(new)
        self.spline_scaler.fill_(1.0)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, grid_size={self.grid_size}, spline_order={self.spline_order}"


class ChebyshevKANLayer(_EdgeLayer):
    """Chebyshev KAN layer: ``y_o = sum_i sum_{d=0..D} c_iod T_d(tanh x_i)``.

    Parameters
    ----------
    in_features, out_features : int
    degree : int
        Highest Chebyshev degree ``D``; parameters ``in * out * (D + 1)``.
    dtype, device : optional

    Notes
    -----
    ``T_0 = 1`` gives every edge a constant (a bias). High degrees can make training unstable
    (Shukla et al. 2024, cPIKAN).

    References
    ----------
    Shukla, Toscano, Wang, Zou & Karniadakis (2024), "A comprehensive and FAIR comparison between
    MLP and KAN representations for differential equations and operator networks",
    CMAME 431, 117290.

    Examples
    --------
    >>> layer = ChebyshevKANLayer(2, 4, degree=3)
    >>> layer(torch.zeros(5, 2)).shape, sum(p.numel() for p in layer.parameters())
    (torch.Size([5, 4]), 32)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        degree: int = 4,
        dtype: torch.dtype | None = None,
        device=None,
    ):
        super().__init__(in_features, out_features)
        if degree < 1:
            raise PdekitUserError(f"degree must be >= 1, got {degree}")
        self.degree = degree
        dtype = dtype or torch.get_default_dtype()
        std = 1.0 / math.sqrt(in_features * (degree + 1))
        self.coefficients = nn.Parameter(
            torch.randn(in_features, out_features, degree + 1, dtype=dtype, device=device) * std
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(..., in_features)`` to ``(..., out_features)``."""
        self._check_features(x)
        z = torch.tanh(x)
        T = [torch.ones_like(z), z]
        for _ in range(2, self.degree + 1):
            T.append(2 * z * T[-1] - T[-2])
        return torch.einsum("...id,iod->...o", torch.stack(T[: self.degree + 1], -1), self.coefficients)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, degree={self.degree}"


class KAN(nn.Module):
    """A stack of KAN layers, used as a point-wise network ``(..., n_in) -> (..., n_out)``.

    Parameters
    ----------
    layer_sizes : sequence of int
        Widths including input and output, e.g. ``[2, 5, 5, 1]``.
    basis : {"bspline", "chebyshev"}
    grid_size, spline_order, grid_range, grid_eps
        B-spline options (see :class:`BSplineKANLayer`).
    degree : int
        Chebyshev degree (see :class:`ChebyshevKANLayer`).
    input_range : (float, float) or ((lo_1, ..), (hi_1, ..)), optional
        Box the raw inputs live in; it is mapped affinely onto ``grid_range`` (B-spline) or
        ``[-1, 1]`` (Chebyshev) before the first layer, as KINN scales its coordinates.
    hidden_activation : {"tanh", "identity"}, optional
        Applied between layers. Default ``"tanh"`` for B-splines (KINN keeps hidden values in the
        grid this way) and ``"identity"`` for Chebyshev (its layers already apply tanh).
    dtype, device : optional

    References
    ----------
    Liu et al. (2024), arXiv:2404.19756; Wang et al. (2024) KINN, arXiv:2406.11045.

    Examples
    --------
    >>> net = KAN([2, 5, 1], grid_size=5, input_range=(0.0, 1.0))
    >>> net(torch.rand(8, 2)).shape, net.n_params
    (torch.Size([8, 1]), 150)
    >>> KAN([2, 5, 1], basis="chebyshev", degree=4).n_params
    75
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        *,
        basis: Literal["bspline", "chebyshev"] = "bspline",
        grid_size: int = 5,
        spline_order: int = 3,
        grid_range: tuple[float, float] = (-1.0, 1.0),
        grid_eps: float = 0.02,
        degree: int = 4,
        input_range: tuple | None = None,
        hidden_activation: Literal["tanh", "identity"] | None = None,
        dtype: torch.dtype | None = None,
        device=None,
    ):
        super().__init__()
        sizes = layer_widths(layer_sizes)
        if basis not in ("bspline", "chebyshev"):
            raise PdekitUserError(f"basis must be 'bspline' or 'chebyshev', got {basis!r}")
        if hidden_activation is None:
            hidden_activation = "tanh" if basis == "bspline" else "identity"
        if hidden_activation not in ("tanh", "identity"):
            raise PdekitUserError(
                f"hidden_activation must be 'tanh' or 'identity', got {hidden_activation!r}"
            )
        self.layer_sizes, self.basis, self.hidden_activation = sizes, basis, hidden_activation
        dtype = dtype or torch.get_default_dtype()
        layers = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            if basis == "bspline":
                layers.append(
                    BSplineKANLayer(
                        n_in, n_out, grid_size=grid_size, spline_order=spline_order,
                        grid_range=grid_range, grid_eps=grid_eps, dtype=dtype, device=device,
                    )
                )
            else:
                layers.append(ChebyshevKANLayer(n_in, n_out, degree=degree, dtype=dtype, device=device))
        self.layers = nn.ModuleList(layers)
        target = grid_range if basis == "bspline" else (-1.0, 1.0)
        scale, shift = input_affine_map(input_range, sizes[0], target, dtype)
        self.register_buffer("input_scale", scale.to(device))
        self.register_buffer("input_shift", shift.to(device))

    @property
    def n_params(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def _hidden(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(h) if self.hidden_activation == "tanh" else h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x * self.input_scale + self.input_shift
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = self._hidden(h)
        return h

    @torch.no_grad()
    def update_grid(
        self, x: torch.Tensor, *, margin: float = 0.01, grid_size: int | None = None
    ) -> None:
        """Update every B-spline layer's grid to the activations that ``x`` produces.

        Layer by layer, front to back (see :meth:`BSplineKANLayer.update_grid`); a no-op for
        Chebyshev networks.

        Examples
        --------
        >>> _ = torch.manual_seed(0)
        >>> net = KAN([1, 4, 1], grid_size=4, hidden_activation="identity")
        >>> x = torch.rand(256, 1) * 0.5
        >>> before = net(x)
        >>> net.update_grid(x, grid_size=8)
        >>> bool((net(x) - before).abs().max() < 1e-2 * before.abs().max())
        True
        """
        h = x.reshape(-1, self.layer_sizes[0]) * self.input_scale + self.input_shift
        for i, layer in enumerate(self.layers):
            if isinstance(layer, BSplineKANLayer):
                layer.update_grid(h, margin=margin, grid_size=grid_size)
            h = layer(h)
            if i < len(self.layers) - 1:
                h = self._hidden(h)
