"""MG-TFNO: a TFNO applied to multi-grid patches of the domain (Kossaifi et al. 2024).

The domain is cut into ``2**levels`` patches per axis. Each patch is padded by
``round(N * padding_fraction)`` pixels of its surroundings, and the model also sees, as extra
channels, ``levels`` coarser views of the whole field (level ``L`` subsampled by ``2**L``) cut to
the same window size and centred on the patch, so a patch of ``1/2**levels`` of the domain still
has global context. Patches go through the TFNO as a larger batch; the outputs are cropped back to
their patch and stitched.

:class:`MultigridPatching` does the decomposition for 1, 2 or 3 spatial dimensions. Unlike
neuraloperator's ``MultigridPatching2D`` (periodic domains, 2D, broken at ``levels=0``), it
handles what lies outside the domain by ``boundary``:

``"periodic"``
    wrap around; identical to ``MultigridPatching2D`` (checked in the tests). Needs every axis
    divisible by ``2**levels``.
``"zeros"``
    zeros outside the domain (default; for Darcy the zeros mark where the boundary is, since the
    coefficient is positive inside).
``"reflect"``
    mirror about the boundary sample (numpy's ``"reflect"``).

For the non-periodic modes an axis need not be divisible by ``2**levels``: the grid is extended at
the far end by the boundary rule to the next multiple and the extension is cropped off after
stitching, so the Darcy grids 85 and 421 work. ``levels=0`` is the identity (the wrapped TFNO
alone; ``padding_fraction`` is then unused).

The coarse levels are strided subsamples (``x[..., ::2**L]``), as in neuraloperator; windows are
centred on their patch to within one coarse pixel.

References
----------
.. [1] J. Kossaifi, N. Kovachki, K. Azizzadenesheli, A. Anandkumar, "Multi-grid tensorized
   Fourier neural operator for high-resolution PDEs", TMLR 2024, arXiv:2310.00120.
.. [2] Z. Li et al., "Fourier neural operator for parametric partial differential equations",
   ICLR 2021, arXiv:2010.08895.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Literal

import torch

from pdekit.errors import PdekitUserError
from pdekit.models.base import NeuralOperator, check_config_choice, check_positive_int
from pdekit.models.fno import TFNO, TFNOConfig
from pdekit.models.registry import register_model

__all__ = ["Boundary", "MGTFNO", "MGTFNOConfig", "MultigridPatching", "PatchLayout"]

Boundary = Literal["zeros", "reflect", "periodic"]


@dataclasses.dataclass(frozen=True)
class PatchLayout:
    """How one grid is cut: sizes per spatial axis.

    Attributes
    ----------
    shape : tuple of int
        The input grid.
    n_patches : tuple of int
        Patches per axis (``2**levels``).
    patch_size : tuple of int
        Unpadded patch size (``ceil(N / 2**levels)``).
    padding : tuple of int
        Pixels of context on each side of a patch.
    """

    shape: tuple[int, ...]
    n_patches: tuple[int, ...]
    patch_size: tuple[int, ...]
    padding: tuple[int, ...]

    @property
    def window(self) -> tuple[int, ...]:
        """Padded patch size seen by the model."""
        return tuple(p + 2 * q for p, q in zip(self.patch_size, self.padding))

    @property
    def extended_shape(self) -> tuple[int, ...]:
        """Grid after extension to a multiple of ``n_patches`` (equals ``shape`` if divisible)."""
        return tuple(n * p for n, p in zip(self.n_patches, self.patch_size))


def _window_index(
    starts: torch.Tensor, width: int, size: int, boundary: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (n, width) into an axis of length ``size`` and the in-domain mask."""
    raw = starts[:, None] + torch.arange(width, device=starts.device)
    inside = (raw >= 0) & (raw < size)
    if boundary == "periodic":
        index = raw % size
    elif boundary == "reflect":
        period = 2 * (size - 1)
        folded = raw % period
        index = torch.where(folded >= size, period - folded, folded)
    else:
        index = raw.clamp(0, size - 1)
    return index, inside


def _gather_windows(x: torch.Tensor, axes: list[tuple[torch.Tensor, torch.Tensor]], boundary: str):
    """Cut ``x`` (B, C, *grid) into windows; ``axes[d]`` = (index, inside) of shape (n_d, w_d).

    Returns (B * prod(n_d), C, *w_d), patches ordered batch-major then row-major over patches.
    """
    batch, channels = x.shape[:2]
    n_dim = len(axes)
    for d in reversed(range(n_dim)):
        index, inside = axes[d]
        n, w = index.shape
        axis = 2 + d
        x = x.index_select(axis, index.reshape(-1))
        x = x.reshape(*x.shape[:axis], n, w, *x.shape[axis + 1 :])
        if boundary == "zeros" and not bool(inside.all()):
            view = [1] * x.ndim
            view[axis], view[axis + 1] = n, w
            x = x * inside.reshape(view).to(x.dtype)
    # (B, C, n_0, w_0, n_1, w_1, ...) -> (B, n_0, n_1, ..., C, w_0, w_1, ...)
    perm = [0] + [2 + 2 * d for d in range(n_dim)] + [1] + [3 + 2 * d for d in range(n_dim)]
    x = x.permute(perm)
    n_total = math.prod(index.shape[0] for index, _ in axes)
    return x.reshape(batch * n_total, channels, *x.shape[2 + n_dim :])


class MultigridPatching:
    """Multi-grid domain decomposition: patch, then crop and stitch back.

    Parameters
    ----------
    levels : int
        ``2**levels`` patches per axis and ``levels`` coarse context levels; 0 is the identity.
    padding_fraction : float or sequence of float
        Context on each side of a patch, as a fraction of the full axis length.
    boundary : {"zeros", "reflect", "periodic"}
        What lies outside the domain (see the module notes).

    Examples
    --------
    >>> import torch
    >>> mg = MultigridPatching(levels=1, padding_fraction=0.0625, boundary="zeros")
    >>> x = torch.randn(3, 1, 85, 85)
    >>> patches = mg.patch(x)
    >>> tuple(patches.shape)          # 4 patches of 43 + 2 * 5, fine + 1 coarse channel
    (12, 2, 53, 53)
    >>> bool(torch.equal(mg.unpatch(patches[:, :1], x.shape[2:]), x))
    True

    References
    ----------
    .. [1] J. Kossaifi et al., "Multi-grid tensorized Fourier neural operator for
       high-resolution PDEs", TMLR 2024, arXiv:2310.00120.
    """

    def __init__(
        self,
        levels: int,
        padding_fraction: float | Sequence[float] = 0.0,
        boundary: Boundary = "zeros",
    ) -> None:
        self.levels = check_positive_int("MultigridPatching", "levels", levels, minimum=0)
        self.boundary = check_config_choice("MultigridPatching", "boundary", boundary, Boundary)
        fractions = (
            (padding_fraction,) if isinstance(padding_fraction, (int, float)) else padding_fraction
        )
        for f in fractions:
            if not 0.0 <= float(f) <= 1.0:
                raise PdekitUserError(
                    f"padding_fraction must be in [0, 1], got {padding_fraction!r}"
                )
        self.padding_fraction = tuple(float(f) for f in fractions)

    def _fractions(self, n_dim: int) -> tuple[float, ...]:
        if len(self.padding_fraction) == 1:
            return self.padding_fraction * n_dim
        if len(self.padding_fraction) != n_dim:
            raise PdekitUserError(
                f"padding_fraction has {len(self.padding_fraction)} entries for a {n_dim}D grid"
            )
        return self.padding_fraction

    def layout(self, spatial_shape: Sequence[int]) -> PatchLayout:
        """The :class:`PatchLayout` of a grid; one-line ``ValueError`` if it cannot be cut."""
        shape = tuple(int(s) for s in spatial_shape)
        n = 2**self.levels
        for size in shape:
            if self.boundary == "periodic" and size % n:
                raise PdekitUserError(
                    f"periodic multigrid patching with levels={self.levels} needs every axis "
                    f"divisible by {n}, got grid {shape}"
                )
            if math.ceil(size / n) < n:
                raise PdekitUserError(
                    f"multigrid patching with levels={self.levels} needs every axis >= "
                    f"{n * (n - 1) + 1} (patches of at least {n} pixels), got grid {shape}"
                )
        return PatchLayout(
            shape=shape,
            n_patches=(n,) * len(shape),
            patch_size=tuple(math.ceil(size / n) for size in shape),
            padding=tuple(int(round(s * f)) for s, f in zip(shape, self._fractions(len(shape)))),
        )

    def patch(self, x: torch.Tensor) -> torch.Tensor:
        """Cut ``x`` of shape ``(B, C, *grid)`` into padded multi-grid patches.

        Returns
        -------
        torch.Tensor
            Shape ``(B * 2**(levels * d), C * (levels + 1), *window)``: channels are the fine
            patch followed by levels 1..``levels``; patches are batch-major, then row-major.
        """
        if self.levels == 0:
            return x
        layout = self.layout(x.shape[2:])
        device = x.device
        fine = []
        for n, size, p, q in zip(layout.n_patches, layout.shape, layout.patch_size, layout.padding):
            starts = torch.arange(n, device=device) * p - q
            fine.append(_window_index(starts, p + 2 * q, size, self.boundary))
        channels = [_gather_windows(x, fine, self.boundary)]
        for level in range(1, self.levels + 1):
            step = 2**level
            coarse_x = x[(slice(None), slice(None)) + (slice(None, None, step),) * (x.ndim - 2)]
            axes = []
            for d, (n, p, q) in enumerate(zip(layout.n_patches, layout.patch_size, layout.padding)):
                stride = p // step
                ideal = n * p // step  # coarse length of the (extended) domain
                shift = math.ceil((p + (n - 1) * stride - ideal) / 2) + q
                starts = torch.arange(n, device=device) * stride - shift
                axes.append(_window_index(starts, p + 2 * q, coarse_x.shape[2 + d], self.boundary))
            channels.append(_gather_windows(coarse_x, axes, self.boundary))
        return torch.cat(channels, dim=1)

    def unpatch(self, y: torch.Tensor, spatial_shape: Sequence[int]) -> torch.Tensor:
        """Crop the padding off patch outputs and stitch them into ``(B, C', *spatial_shape)``.

        Parameters
        ----------
        y : torch.Tensor
            ``(B * 2**(levels * d), C', *window)``, e.g. the model's output on :meth:`patch`.
        spatial_shape : sequence of int
            The grid that was patched.
        """
        if self.levels == 0:
            return y
        layout = self.layout(spatial_shape)
        n_dim = len(layout.shape)
        crop = tuple(slice(q, q + p) for p, q in zip(layout.patch_size, layout.padding))
        y = y[(slice(None), slice(None)) + crop]
        n_total = math.prod(layout.n_patches)
        batch, channels = y.shape[0] // n_total, y.shape[1]
        y = y.reshape(batch, *layout.n_patches, channels, *layout.patch_size)
        # (B, n_0, .., C, p_0, ..) -> (B, C, n_0, p_0, n_1, p_1, ..)
        perm = [0, 1 + n_dim]
        for d in range(n_dim):
            perm += [1 + d, 2 + n_dim + d]
        y = y.permute(perm).reshape(batch, channels, *layout.extended_shape)
        return y[(slice(None), slice(None)) + tuple(slice(0, s) for s in layout.shape)]


@dataclasses.dataclass(frozen=True)
class MGTFNOConfig(TFNOConfig):
    """Configuration of an :class:`MGTFNO`: a :class:`~pdekit.models.fno.TFNOConfig` plus patching.

    Parameters
    ----------
    levels : int
        ``2**levels`` patches per axis; 0 gives the plain TFNO.
    padding_fraction : float
        Context around each patch as a fraction of the full axis (neuraloperator's presets use
        0.0625-0.125).
    boundary : {"zeros", "reflect", "periodic"}
        Outside-the-domain rule; "zeros" (default) suits Darcy, "periodic" suits Navier-Stokes
        on the torus.
    """

    levels: int = 1
    padding_fraction: float = 0.0625
    boundary: Boundary = "zeros"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_positive_ints("levels", minimum=0)
        self._check_choice("boundary", Boundary)
        self._check_fraction("padding_fraction")


@register_model("mgtfno", MGTFNOConfig)
class MGTFNO(NeuralOperator):
    """Multi-grid tensorized FNO: a :class:`~pdekit.models.fno.TFNO` on multi-grid patches.

    The wrapped TFNO (``model.tfno``) takes ``in_channels * (levels + 1)`` channels (the fine
    patch and the coarse levels); the model itself takes and returns full grids.

    Parameters
    ----------
    config : MGTFNOConfig, optional
        Defaults to ``MGTFNOConfig()``.

    Examples
    --------
    >>> import torch
    >>> model = MGTFNO(MGTFNOConfig(n_modes=(8, 8), hidden_channels=8, levels=1))
    >>> model(torch.randn(2, 1, 85, 85)).shape
    torch.Size([2, 1, 85, 85])

    References
    ----------
    .. [1] J. Kossaifi, N. Kovachki, K. Azizzadenesheli, A. Anandkumar, "Multi-grid tensorized
       Fourier neural operator for high-resolution PDEs", TMLR 2024, arXiv:2310.00120.
    """

    def __init__(self, config: MGTFNOConfig | None = None) -> None:
        super().__init__(config)
        config = self.config
        tfno_fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(TFNOConfig)}
        tfno_fields["in_channels"] = config.in_channels * (config.levels + 1)
        self.tfno = TFNO(TFNOConfig(**tfno_fields))
        self.patching = MultigridPatching(config.levels, config.padding_fraction, config.boundary)

    def check_resolution(self, spatial_shape: Sequence[int]) -> None:
        """Any grid the patching can cut (see :meth:`MultigridPatching.layout`)."""
        super().check_resolution(spatial_shape)
        self.patching.layout(spatial_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, in_channels, *grid)`` to ``(batch, out_channels, *grid)``."""
        self.check_input(x)
        if self.patching.levels == 0:
            return self.tfno(x)
        return self.patching.unpatch(self.tfno(self.patching.patch(x)), x.shape[2:])
