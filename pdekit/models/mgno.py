"""MgNO: a neural operator whose linear operators are multigrid V-cycles (He, Liu, Xu 2024).

Every layer is ``u <- gelu(MgConv(u) + W u)``. ``MgConv`` is one multi-channel V-cycle with no
nonlinearity inside: learned 3x3 smoothers, learned stride-2 3x3 restrictions and learned 4x4
stride-2 transposed-convolution prolongations; ``W`` is a 1x1 convolution with bias. There is no
lifting or projection network: the input field is the right-hand side ``f`` of the first V-cycle
and the output is read out by a 1x1 convolution.

The V-cycle, for the per-level smoothing counts ``n_iterations = ((pre_0, post_0), ...)`` (finest
level first; the number of levels is its length)::

    level 0:  u = S(f)                 (the first step), then u <- u + S(f - A u)  (pre_0 - 1 times)
    level l:  u <- Pi u, f <- R f, then u <- u + S(f - A u)                        (pre_l times)
    upwards:  u_l <- u_l + P u_{l+1}, then u_l <- u_l + S(f_l - A u_l)             (post_l times)

Every step has its own ``A`` (``hidden -> data`` channels) and ``S`` (``data -> hidden``), every
level its own ``Pi``, ``R`` and ``P``, and every layer its own V-cycle (no weight sharing, as in
the reference code). The data ``f`` has ``in_channels`` channels in the first layer and
``hidden_channels`` after.

Boundary conditions enter through ``padding_mode`` of ``A``, ``S``, ``Pi`` and ``R``: ``"zeros"``
(Dirichlet; Darcy), ``"circular"`` (periodic; Navier-Stokes on the torus) or ``"reflect"``
(Neumann-like). The transposed convolutions zero-pad, as in the reference, except with
``"circular"``: there the contributions that fall beyond one end of an axis wrap around to the
other, so the whole network commutes with periodic shifts by ``2**(levels - 1)`` nodes (the
reference NS model zero-pads them too, so it is not exactly periodic).
``zero_boundary=True`` imposes ``u = 0`` on the boundary nodes exactly: the network runs on the
interior nodes with zero padding, so every convolution sees the boundary values 0 as its ghost
nodes, and the output is padded back with zeros.

Resolutions: a restriction maps ``n`` nodes to ``ceil(n / 2)`` and a prolongation maps them back
to ``2 ceil(n / 2)``, cropped to ``n`` (the odd-size handling of the PKU-CMEGroup port), so
``"zeros"`` accepts every grid and ``"reflect"`` every grid whose coarsest level has at least 2
nodes per axis. ``"circular"`` needs every axis divisible by ``2**(levels - 1)``: only then are the
coarse grids periodic grids themselves. Anything else is a one-line ``ValueError``.

References
----------
.. [1] J. He, X. Liu, J. Xu, "MgNO: Efficient parameterization of linear operators via multigrid",
   ICLR 2024, arXiv:2310.19809.
.. [2] J. He, J. Xu, "MgNet: A unified framework of multigrid and convolutional neural network",
   Sci. China Math. 62 (2019) 1331-1354.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from pdekit.errors import PdekitUserError
from pdekit.models.base import ConfigChecks, NeuralOperator
from pdekit.models.registry import register_model

__all__ = ["MgConv", "MgNO", "MgNOConfig", "PaddingMode"]

PaddingMode = Literal["zeros", "circular", "reflect"]

#: The reference Darcy V-cycle: one pre-smoothing step on levels 0-4, two on level 5.
DARCY_ITERATIONS: tuple[tuple[int, int], ...] = ((1, 0),) * 5 + ((2, 0),)


def _as_iterations(owner: str, value: Any) -> tuple[tuple[int, int], ...]:
    """``[[pre, post], ...]`` (a bare int ``k`` meaning ``[k, 0]``) as a tuple of int pairs."""
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) == 0:
        raise PdekitUserError(
            f"{owner}.n_iterations must be a non-empty list of [pre, post] pairs, got {value!r}"
        )
    levels = []
    for level in value:
        pair = (level, 0) if isinstance(level, int) else level
        if (
            not isinstance(pair, Sequence)
            or isinstance(pair, str)
            or len(pair) not in (1, 2)
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in pair)
        ):
            raise PdekitUserError(
                f"{owner}.n_iterations entries must be [pre, post] with ints >= 0, got {value!r}"
            )
        levels.append((int(pair[0]), int(pair[1]) if len(pair) == 2 else 0))
    if levels[0][0] < 1:
        raise PdekitUserError(
            f"{owner}.n_iterations: the finest level needs >= 1 pre-smoothing step, got {value!r}"
        )
    if levels[-1][1] != 0:
        raise PdekitUserError(
            f"{owner}.n_iterations: the coarsest level has no coarse-grid correction, so no "
            f"post-smoothing; put its steps in pre, got {value!r}"
        )
    return tuple(levels)


@dataclasses.dataclass(frozen=True)
class MgNOConfig(ConfigChecks):
    """Configuration of an :class:`MgNO`; the defaults are the reference Darcy model.

    Parameters
    ----------
    in_channels, out_channels : int
        Data channels in and out.
    hidden_channels : int
        Channels of the state ``u`` (the reference uses 24 for Darcy, 32 for Navier-Stokes).
    n_layers : int
        Number of ``gelu(MgConv(u) + W u)`` layers.
    n_iterations : tuple of (int, int)
        ``(pre, post)`` smoothing steps per level, finest first; its length is the number of
        levels. Default ``((1, 0),) * 5 + ((2, 0),)``: 6 levels, the reference Darcy cycle (its
        command line ``10 10 10 10 10 20``). A bare int ``k`` in a list means ``(k, 0)``.
    padding_mode : {"zeros", "circular", "reflect"}
        Padding of the smoothers and restrictions: the boundary condition (Dirichlet, periodic,
        Neumann-like).
    bias : bool
        Biases on the smoothers' convolutions ``A`` and ``S`` (the reference NS model's
        ``--bias``); restrictions and prolongations never have one.
    linear_branch : bool
        Add the 1x1 convolution ``W u`` (with bias) to every layer (reference Darcy model); the
        reference NS model has none.
    norm : bool
        Group normalisation with one group (a size-agnostic LayerNorm over channels and grid,
        per-channel affine) after every coarse-grid correction. The reference NS model uses a
        ``LayerNorm([C, H, W])``, which ties it to one grid; this one runs at any resolution.
    residual : bool
        Add the last ``out_channels`` input channels to the output, so the network predicts an
        increment (reference NS model). Needs ``in_channels >= out_channels``.
    zero_boundary : bool
        Impose ``u = 0`` on the boundary nodes (see the module notes); needs ``"zeros"`` padding
        and grids of at least 3 nodes per axis.
    """

    in_channels: int = 1
    out_channels: int = 1
    hidden_channels: int = 24
    n_layers: int = 4
    n_iterations: tuple[tuple[int, int], ...] = DARCY_ITERATIONS
    padding_mode: PaddingMode = "zeros"
    bias: bool = False
    linear_branch: bool = True
    norm: bool = False
    residual: bool = False
    zero_boundary: bool = False

    def __post_init__(self) -> None:
        owner = type(self).__name__
        self._check_positive_ints("in_channels", "out_channels", "hidden_channels", "n_layers")
        object.__setattr__(self, "n_iterations", _as_iterations(owner, self.n_iterations))
        self._check_choice("padding_mode", PaddingMode)
        self._check_flags("bias", "linear_branch", "norm", "residual", "zero_boundary")
        if self.residual and self.in_channels < self.out_channels:
            raise PdekitUserError(
                f"{owner}.residual needs in_channels >= out_channels, got "
                f"{self.in_channels} < {self.out_channels}"
            )
        if self.zero_boundary and self.padding_mode != "zeros":
            raise PdekitUserError(
                f"{owner}.zero_boundary needs padding_mode='zeros', got {self.padding_mode!r}"
            )

    @property
    def n_levels(self) -> int:
        """Number of grid levels of each V-cycle."""
        return len(self.n_iterations)


class _SmoothingStep(nn.Module):
    """``u <- u + S(f - A u)``; the initial step of a cycle (no ``A``) is ``u = S(f)``."""

    def __init__(self, c_u: int, c_f: int, padding_mode: str, bias: bool, initial: bool) -> None:
        super().__init__()
        conv = {"kernel_size": 3, "padding": 1, "padding_mode": padding_mode, "bias": bias}
        self.A = None if initial else nn.Conv2d(c_u, c_f, **conv)
        self.S = nn.Conv2d(c_f, c_u, **conv)

    def forward(self, u: torch.Tensor | None, f: torch.Tensor) -> torch.Tensor:
        if self.A is None:
            return self.S(f)
        return u + self.S(f - self.A(u))


class _Prolongation(nn.ConvTranspose2d):
    """4x4 stride-2 transposed convolution from a coarse grid to a fine grid of given size.

    Zero-padded (the reference) except for periodic grids, where the two contributions that
    fall beyond either end of an axis wrap around, so the prolongation commutes with shifts.
    """

    def __init__(self, channels: int, periodic: bool) -> None:
        super().__init__(channels, channels, kernel_size=4, stride=2, padding=0, bias=False)
        self.periodic = periodic

    def forward(self, u: torch.Tensor, size: Sequence[int]) -> torch.Tensor:  # type: ignore[override]
        y = F.conv_transpose2d(u, self.weight, stride=2)  # 2 m + 2 nodes per axis: -1 .. 2 m
        if not self.periodic:
            return y[..., 1 : 1 + size[0], 1 : 1 + size[1]]
        return _fold_periodic(_fold_periodic(y, -2), -1)


def _fold_periodic(y: torch.Tensor, dim: int) -> torch.Tensor:
    """Nodes ``-1 .. n`` of an axis -> nodes ``0 .. n-1``, adding node ``-1`` to ``n-1``, ``n`` to 0."""
    n = y.shape[dim] - 2
    inner = y.narrow(dim, 1, n)
    wrapped = torch.cat(
        [y.narrow(dim, n + 1, 1), torch.zeros_like(inner.narrow(dim, 0, n - 2)), y.narrow(dim, 0, 1)],
        dim=dim,
    )
    return inner + wrapped


class MgConv(nn.Module):
    """One multi-channel multigrid V-cycle ``f -> u`` with learned smoothers and transfers.

    Parameters
    ----------
    data_channels : int
        Channels of the right-hand side ``f``.
    state_channels : int
        Channels of the solution ``u``.
    n_iterations : sequence of (int, int)
        ``(pre, post)`` smoothing steps per level, finest first (see :class:`MgNOConfig`).
    padding_mode : {"zeros", "circular", "reflect"}
        Padding of smoothers and restrictions.
    bias : bool
        Biases on the smoothers.
    norm : bool
        One-group GroupNorm after every coarse-grid correction.

    Examples
    --------
    >>> import torch
    >>> cycle = MgConv(1, 8, [(1, 1), (1, 1), (2, 0)])
    >>> cycle(torch.randn(2, 1, 37, 20)).shape
    torch.Size([2, 8, 37, 20])

    References
    ----------
    .. [1] J. He, J. Xu, "MgNet: A unified framework of multigrid and convolutional neural
       network", Sci. China Math. 62 (2019) 1331-1354 (the V-cycle as convolutions).
    .. [2] J. He, X. Liu, J. Xu, "MgNO", ICLR 2024, arXiv:2310.19809 (its use as an operator).
    """

    def __init__(
        self,
        data_channels: int,
        state_channels: int,
        n_iterations: Sequence[tuple[int, int]],
        padding_mode: PaddingMode = "zeros",
        bias: bool = False,
        norm: bool = False,
    ) -> None:
        super().__init__()
        its = _as_iterations("MgConv", n_iterations)
        self.n_iterations = its
        c_f, c_u = int(data_channels), int(state_channels)
        step = {"padding_mode": padding_mode, "bias": bias}
        self.pre = nn.ModuleList(
            nn.ModuleList(
                _SmoothingStep(c_u, c_f, initial=(level == 0 and i == 0), **step)
                for i in range(pre)
            )
            for level, (pre, _) in enumerate(its)
        )
        self.post = nn.ModuleList(
            nn.ModuleList(_SmoothingStep(c_u, c_f, initial=False, **step) for _ in range(post))
            for _, post in its[:-1]
        )
        down = {"kernel_size": 3, "stride": 2, "padding": 1, "padding_mode": padding_mode,
                "bias": False}
        # restrict_*[l] maps level l to level l + 1; prolong[l] maps level l + 1 to level l.
        self.restrict_u = nn.ModuleList(nn.Conv2d(c_u, c_u, **down) for _ in its[1:])
        self.restrict_f = nn.ModuleList(nn.Conv2d(c_f, c_f, **down) for _ in its[1:])
        self.prolong = nn.ModuleList(
            _Prolongation(c_u, periodic=padding_mode == "circular") for _ in its[1:]
        )
        self.norms = nn.ModuleList(
            nn.GroupNorm(1, c_u) if norm else nn.Identity() for _ in its[1:]
        )

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """Run the V-cycle on ``f`` of shape ``(B, data_channels, H, W)``."""
        u: torch.Tensor | None = None
        states, data = [], []
        for level, steps in enumerate(self.pre):
            if level > 0:
                u, f = self.restrict_u[level - 1](u), self.restrict_f[level - 1](f)
            for step in steps:
                u = step(u, f)
            states.append(u)
            data.append(f)
        u = states[-1]
        for level in reversed(range(len(self.pre) - 1)):
            fine = states[level]
            coarse = self.prolong[level](u, fine.shape[-2:])
            u = self.norms[level](fine + coarse)
            for step in self.post[level]:
                u = step(u, data[level])
        return u


@register_model("mgno", MgNOConfig)
class MgNO(NeuralOperator):
    """Multigrid neural operator: layers ``u <- gelu(MgConv(u) + W u)``, then a 1x1 readout.

    The defaults are the reference Darcy model (``MgNO_DC``: 4 layers, 24 channels, 6 levels,
    zero padding; 572,661 parameters). Set ``padding_mode="circular"``, ``linear_branch=False``,
    ``bias=True``, ``norm=True``, ``residual=True``, ``n_iterations=((1, 0),) * 3 + ((2, 0),) * 2``
    and ``hidden_channels=32``, ``n_layers=5`` for the reference Navier-Stokes model (with a
    size-agnostic normalisation).

    Parameters
    ----------
    config : MgNOConfig, optional
        Defaults to ``MgNOConfig()``.

    Examples
    --------
    >>> import torch
    >>> from pdekit.models.registry import count_parameters
    >>> count_parameters(MgNO())
    572661
    >>> model = MgNO(MgNOConfig(hidden_channels=8, n_layers=2, n_iterations=[(1, 1), (2, 0)]))
    >>> model(torch.randn(2, 1, 85, 85)).shape
    torch.Size([2, 1, 85, 85])

    References
    ----------
    .. [1] J. He, X. Liu, J. Xu, "MgNO: Efficient parameterization of linear operators via
       multigrid", ICLR 2024, arXiv:2310.19809.
    """

    def __init__(self, config: MgNOConfig | None = None) -> None:
        super().__init__(config, n_dim=2)
        c = self.config
        self.cycles = nn.ModuleList(
            MgConv(c.in_channels if k == 0 else c.hidden_channels, c.hidden_channels,
                   c.n_iterations, c.padding_mode, c.bias, c.norm)
            for k in range(c.n_layers)
        )
        self.linear = nn.ModuleList(
            nn.Conv2d(c.in_channels if k == 0 else c.hidden_channels, c.hidden_channels, 1)
            for k in range(c.n_layers if c.linear_branch else 0)
        )
        self.readout = nn.Conv2d(c.hidden_channels, c.out_channels, 1, bias=False)

    def check_resolution(self, spatial_shape: Sequence[int]) -> None:
        """Any grid for ``"zeros"``; see the module notes for ``"reflect"`` and ``"circular"``."""
        super().check_resolution(spatial_shape)
        c = self.config
        shape = tuple(int(s) for s in spatial_shape)
        factor = 2 ** (c.n_levels - 1)
        if c.zero_boundary and min(shape) < 3:
            raise PdekitUserError(
                f"mgno with zero_boundary needs at least 3 nodes per axis, got grid {shape}"
            )
        inner = tuple(s - 2 for s in shape) if c.zero_boundary else shape
        if c.padding_mode == "circular" and any(s % factor for s in inner):
            raise PdekitUserError(
                f"mgno with circular padding and {c.n_levels} levels needs every axis divisible "
                f"by {factor}, got grid {shape}"
            )
        if c.padding_mode == "reflect" and min(math.ceil(s / factor) for s in inner) < 2:
            raise PdekitUserError(
                f"mgno with reflect padding and {c.n_levels} levels needs every axis >= "
                f"{factor + 1} (2 nodes on the coarsest level), got grid {shape}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, in_channels, H, W)`` to ``(batch, out_channels, H, W)``."""
        self.check_input(x)
        c = self.config
        u = x[..., 1:-1, 1:-1] if c.zero_boundary else x
        for k, cycle in enumerate(self.cycles):
            v = cycle(u)
            if c.linear_branch:
                v = v + self.linear[k](u)
            u = F.gelu(v)
        out = self.readout(u)
        if c.residual:
            inner = x[..., 1:-1, 1:-1] if c.zero_boundary else x
            out = out + inner[:, x.shape[1] - c.out_channels :]
        return F.pad(out, (1, 1, 1, 1)) if c.zero_boundary else out
