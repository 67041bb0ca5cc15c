"""FNO and TFNO from neuraloperator 2.0, with pdekit's odd-grid-correct spectral convolution.

Both are thin :class:`~pdekit.models.registry.NeuralOperator` wrappers around
``neuralop.models.FNO`` (kept as ``model.operator``) that

* build from a frozen config (:class:`FNOConfig`, :class:`TFNOConfig`),
* pass :class:`pdekit.models.spectral_conv.SpectralConv` as ``conv_module`` (neuraloperator
  2.0.0 is wrong on odd grids such as the Darcy 85 and 421),
* check the input's channels and grid with one-line errors.

neuraloperator is imported when a model is built, not when this module is imported.

References
----------
.. [1] Z. Li, N. Kovachki, K. Azizzadenesheli, B. Liu, K. Bhattacharya, A. Stuart,
   A. Anandkumar, "Fourier neural operator for parametric partial differential equations",
   ICLR 2021, arXiv:2010.08895.
.. [2] J. Kossaifi, N. Kovachki, K. Azizzadenesheli, A. Anandkumar, "Multi-grid tensorized
   Fourier neural operator for high-resolution PDEs", TMLR 2024, arXiv:2310.00120.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch

from pdekit.errors import PdekitUserError
from pdekit.models.base import ConfigChecks, NeuralOperator
from pdekit.models.registry import register_model

__all__ = ["FNO", "FNOConfig", "TFNO", "TFNOConfig"]

Factorization = Literal["tucker", "cp", "tt"]


@dataclasses.dataclass(frozen=True)
class FNOConfig(ConfigChecks):
    """Configuration of a dense :class:`FNO` (defaults sized for 2D Darcy flow).

    Parameters
    ----------
    in_channels, out_channels : int
        Data channels in and out (the positional embedding's channels are added internally).
    n_modes : tuple of int
        Fourier modes kept per spatial dimension, *in total* (centred), as in neuraloperator
        2.0: ``(16, 16)`` keeps frequencies -8..7 in x and 0..8 in y. Its length is the spatial
        dimension (1, 2 or 3).
    hidden_channels : int
        Width of the Fourier layers.
    n_layers : int
        Number of Fourier layers.
    lifting_channel_ratio, projection_channel_ratio : int
        Hidden width of the lifting / projection MLPs, as a multiple of ``hidden_channels``.
    positional_embedding : bool
        Append the grid coordinates on [0, 1]^d as extra input channels (neuraloperator's
        ``"grid"`` embedding).
    domain_padding : float
        Fraction of each side zero-padded after lifting (0 disables); helps non-periodic
        problems such as Darcy.
    """

    in_channels: int = 1
    out_channels: int = 1
    n_modes: tuple[int, ...] = (16, 16)
    hidden_channels: int = 32
    n_layers: int = 4
    lifting_channel_ratio: int = 2
    projection_channel_ratio: int = 2
    positional_embedding: bool = True
    domain_padding: float = 0.0

    def __post_init__(self) -> None:
        n_modes = self._normalise_int_tuple("n_modes")
        if not 1 <= len(n_modes) <= 3:
            raise PdekitUserError(
                f"{type(self).__name__}.n_modes must have 1 to 3 entries, got {n_modes}"
            )
        self._check_positive_ints(
            "in_channels", "out_channels", "hidden_channels", "n_layers",
            "lifting_channel_ratio", "projection_channel_ratio",
        )
        self._check_flags("positional_embedding")
        self._check_fraction("domain_padding", include_high=False)

    @property
    def n_dim(self) -> int:
        """Number of spatial dimensions: ``len(n_modes)``."""
        return len(self.n_modes)


@dataclasses.dataclass(frozen=True)
class TFNOConfig(FNOConfig):
    """Configuration of a :class:`TFNO`: an :class:`FNOConfig` plus the weight factorization.

    Parameters
    ----------
    factorization : {"tucker", "cp", "tt"}
        Low-rank format of each layer's spectral weight (tensorly-torch).
    rank : float
        Fraction of the dense spectral weight's parameters each factorized weight keeps
        (neuraloperator 2.0's TFNO default is 0.1).
    """

    factorization: Factorization = "tucker"
    rank: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_choice("factorization", Factorization)
        self._check_fraction("rank", include_low=False)


@register_model("fno", FNOConfig)
class FNO(NeuralOperator):
    """Fourier neural operator (Li et al. 2021), neuraloperator's implementation.

    Accepts any grid with ``len(n_modes)`` axes (odd sizes included); the same weights run at
    every resolution.

    Parameters
    ----------
    config : FNOConfig, optional
        Defaults to ``FNOConfig()``.

    Attributes
    ----------
    operator : neuralop.models.FNO
        The wrapped neuraloperator model.

    Examples
    --------
    >>> import torch
    >>> model = FNO(FNOConfig(n_modes=(8, 8), hidden_channels=8))
    >>> [tuple(model(torch.randn(1, 1, n, n)).shape) for n in (64, 85)]
    [(1, 1, 64, 64), (1, 1, 85, 85)]

    References
    ----------
    .. [1] Z. Li et al., "Fourier neural operator for parametric partial differential
       equations", ICLR 2021, arXiv:2010.08895.
    """

    def __init__(self, config: FNOConfig | None = None) -> None:
        super().__init__(config)
        config = self.config
        from neuralop.models import FNO as NeuralopFNO

        from pdekit.models.spectral_conv import SpectralConv

        self.operator = NeuralopFNO(
            n_modes=config.n_modes,
            in_channels=config.in_channels,
            out_channels=config.out_channels,
            hidden_channels=config.hidden_channels,
            n_layers=config.n_layers,
            lifting_channel_ratio=config.lifting_channel_ratio,
            projection_channel_ratio=config.projection_channel_ratio,
            positional_embedding="grid" if config.positional_embedding else None,
            domain_padding=float(config.domain_padding) or None,
            conv_module=SpectralConv,
            **self._factorization_kwargs(),
        )

    def _factorization_kwargs(self) -> dict[str, Any]:
        return {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, in_channels, *grid)`` to ``(batch, out_channels, *grid)``."""
        self.check_input(x)
        return self.operator(x)


@register_model("tfno", TFNOConfig)
class TFNO(FNO):
    """Tensorized FNO: an :class:`FNO` whose spectral weights are low-rank (Tucker by default).

    Parameters
    ----------
    config : TFNOConfig, optional
        Defaults to ``TFNOConfig()``.

    Examples
    --------
    >>> import torch
    >>> from pdekit.models.registry import count_parameters
    >>> dense = FNO(FNOConfig(n_modes=(8, 8), hidden_channels=16))
    >>> tfno = TFNO(TFNOConfig(n_modes=(8, 8), hidden_channels=16, rank=0.1))
    >>> count_parameters(tfno) < count_parameters(dense)
    True
    >>> tfno(torch.randn(1, 1, 65, 65)).shape
    torch.Size([1, 1, 65, 65])

    References
    ----------
    .. [1] J. Kossaifi et al., "Multi-grid tensorized Fourier neural operator for
       high-resolution PDEs", TMLR 2024, arXiv:2310.00120.
    """

    def _factorization_kwargs(self) -> dict[str, Any]:
        return {
            "factorization": self.config.factorization,
            "rank": float(self.config.rank),
            "implementation": "factorized",
        }
