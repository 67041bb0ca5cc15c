"""LSM: Latent Spectral Models (Wu, Hu, Luo, Wang, Long 2023).

A U-Net with a *neural spectral block* (NSB) on every skip connection. The input (with the grid
coordinates appended) is lifted pointwise to ``width`` channels and zero-padded at the far end of
every axis to ``2**(n_scales - 1) * patch`` nodes; an encoder of ``n_scales`` scales (channels
``width * channel_multipliers``; 3x3 conv - norm - ReLU twice per scale, max-pooling between
scales) and a decoder (bilinear upsampling, concatenation with the skip, two conv blocks) follow;
the result is cropped back to the input grid and projected pointwise by a two-layer GELU MLP.

A neural spectral block on a map of ``C`` channels:

1. cuts the map into ``ph x pw`` patches;
2. projects each patch to ``n_tokens`` latent tokens by attention: the queries are learned tokens,
   keys and values a 1x1 convolution of the pixels (``n_heads`` heads, residual on the queries);
3. updates every token value ``t`` by a learned trigonometric expansion
   ``t <- t + sum_m w_cm sin(pi m t / M) + w'_cm cos(pi m t / M)``, ``m = 0..M-1``, ``M = n_basis``;
4. attends from the pixels (queries: a 1x1 convolution) back to the tokens and adds the patch.

The attention is unscaled (no ``1/sqrt(d)``), as in the reference code whose numbers the paper
reports.

Resolutions: the patch size is chosen per input as ``ceil(n / 2**(n_scales - 1))`` per axis (the
reference scripts' rule: the coarsest map is one patch, the finest ``2**(n_scales - 1)`` patches
per axis), so every grid is accepted and the weights are the same at every resolution. Unlike the
reference, which keeps its basis frequencies as a CUDA-only tensor outside the module, the
basis indices are a buffer that follows ``.to(device)`` and ``.double()``.

References
----------
.. [1] H. Wu, T. Hu, H. Luo, J. Wang, M. Long, "Solving high-dimensional PDEs with latent spectral
   models", ICML 2023, arXiv:2301.12664.
.. [2] O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional networks for biomedical image
   segmentation", MICCAI 2015, arXiv:1505.04597.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from pdekit.errors import PdekitUserError
from pdekit.models.base import ConfigChecks, NeuralOperator
from pdekit.models.registry import register_model

__all__ = ["LSM", "LSMConfig", "NeuralSpectralBlock", "Norm"]

Norm = Literal["batch", "instance"]


@dataclasses.dataclass(frozen=True)
class LSMConfig(ConfigChecks):
    """Configuration of an :class:`LSM`; the defaults are the paper's Darcy / Navier-Stokes model.

    Parameters
    ----------
    in_channels, out_channels : int
        Data channels in and out (the two coordinate channels are added internally).
    width : int
        Channels of the finest scale (``d_model``; 64 for Darcy and Navier-Stokes, 32-48 for the
        other benchmarks).
    n_basis : int
        Trigonometric basis functions per token (12 in the paper).
    n_tokens : int
        Latent tokens per patch (4 in the paper).
    n_heads : int
        Attention heads (8); ``width * m`` must be divisible by it for every multiplier ``m``.
    channel_multipliers : tuple of int
        Channels of each scale in units of ``width``; its length is the number of scales
        (reference: ``(1, 2, 4, 8, 8)``, five scales).
    projection_channels : int
        Hidden width of the output MLP (128).
    norm : {"batch", "instance"}
        Normalisation in the conv blocks: BatchNorm as in the paper, or affine InstanceNorm as
        the same group's Neural-Solver-Library uses for time-dependent problems.
    """

    in_channels: int = 1
    out_channels: int = 1
    width: int = 64
    n_basis: int = 12
    n_tokens: int = 4
    n_heads: int = 8
    channel_multipliers: tuple[int, ...] = (1, 2, 4, 8, 8)
    projection_channels: int = 128
    norm: Norm = "batch"

    def __post_init__(self) -> None:
        owner = type(self).__name__
        self._check_positive_ints(
            "in_channels", "out_channels", "width", "n_basis", "n_tokens", "n_heads",
            "projection_channels",
        )
        mults = self._normalise_int_tuple("channel_multipliers")
        if len(mults) < 2:
            raise PdekitUserError(
                f"{owner}.channel_multipliers needs >= 2 scales for the U-Net, got {mults}"
            )
        bad = [self.width * m for m in mults if (self.width * m) % self.n_heads]
        if bad:
            raise PdekitUserError(
                f"{owner}: every scale's channels must be divisible by n_heads={self.n_heads}, "
                f"got {bad[0]} (width={self.width}, channel_multipliers={mults})"
            )
        self._check_choice("norm", Norm)

    @property
    def n_scales(self) -> int:
        """Number of scales of the U-Net."""
        return len(self.channel_multipliers)


class NeuralSpectralBlock(nn.Module):
    """Patchwise attention to latent tokens, a trigonometric update of the tokens, attention back.

    Parameters
    ----------
    channels : int
        Channels ``C`` of the map (divisible by ``n_heads``).
    n_basis : int
        Number ``M`` of frequencies ``0, 1/M, ..., (M-1)/M`` (sine and cosine each).
    n_tokens : int
        Latent tokens per patch.
    n_heads : int
        Attention heads.

    Examples
    --------
    >>> import torch
    >>> block = NeuralSpectralBlock(16, n_basis=12, n_tokens=4, n_heads=8)
    >>> block(torch.randn(2, 16, 12, 8), patch_size=(3, 4)).shape
    torch.Size([2, 16, 12, 8])

    References
    ----------
    .. [1] H. Wu et al., "Solving high-dimensional PDEs with latent spectral models", ICML 2023,
       arXiv:2301.12664.
    """

    def __init__(self, channels: int, n_basis: int = 12, n_tokens: int = 4, n_heads: int = 8):
        super().__init__()
        if channels % n_heads:
            raise PdekitUserError(
                f"NeuralSpectralBlock: channels={channels} is not divisible by n_heads={n_heads}"
            )
        self.channels, self.n_heads, self.n_tokens = channels, n_heads, n_tokens
        scale = 1.0 / channels  # the reference initialises both as U[0, 1/C]
        self.latent = nn.Parameter(scale * torch.rand(n_heads, n_tokens, channels // n_heads))
        self.basis_weight = nn.Parameter(scale * torch.rand(channels, 2 * n_basis))
        self.to_key_value = nn.Conv2d(channels, 2 * channels, 1)
        self.to_query = nn.Conv2d(channels, channels, 1)
        # basis indices m = 0..M-1 (exact in every float dtype); frequency pi m / M in forward
        self.register_buffer("modes", torch.arange(n_basis, dtype=torch.float32), persistent=False)

    def forward(self, x: torch.Tensor, patch_size: Sequence[int]) -> torch.Tensor:
        """Apply the block to ``x`` of shape ``(B, C, H, W)``; ``H, W`` divisible by the patch."""
        b, c, h, w = x.shape
        ph, pw = int(patch_size[0]), int(patch_size[1])
        if h % ph or w % pw:
            raise PdekitUserError(
                f"NeuralSpectralBlock: grid {(h, w)} is not divisible by the patch {(ph, pw)}"
            )
        heads, d, n_pix = self.n_heads, c // self.n_heads, ph * pw

        def tokens(t: torch.Tensor, parts: int) -> torch.Tensor:
            # (B, parts * C, H, W) -> (parts, B * n_patches, heads, ph * pw, d)
            t = t.reshape(b, parts, heads, d, h // ph, ph, w // pw, pw)
            t = t.permute(1, 0, 4, 6, 2, 5, 7, 3)
            return t.reshape(parts, -1, heads, n_pix, d)

        key, value = tokens(self.to_key_value(x), 2)
        latent = self.latent.expand(key.shape[0], -1, -1, -1)
        latent = F.scaled_dot_product_attention(latent, key, value, scale=1.0) + latent
        # trigonometric update of every token value: (N, heads, K, d)
        angles = latent[..., None] * (self.modes * (math.pi / self.modes.numel()))
        basis = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
        weight = self.basis_weight.reshape(heads, 1, d, -1)
        latent = (basis * weight).sum(-1) + latent
        # pixels attend to the tokens (keys = values = tokens)
        (query,) = tokens(self.to_query(x), 1)
        out = F.scaled_dot_product_attention(query, latent, latent, scale=1.0)
        out = out.reshape(b, h // ph, w // pw, heads, ph, pw, d)
        out = out.permute(0, 3, 6, 1, 4, 2, 5).reshape(b, c, h, w)
        return out + x


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.InstanceNorm2d(channels, affine=True)


class _DoubleConv(nn.Sequential):
    """(3x3 conv without bias -> norm -> ReLU) twice."""

    def __init__(self, c_in: int, c_out: int, c_mid: int, norm: str) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_mid, 3, padding=1, bias=False), _norm(norm, c_mid), nn.ReLU(),
            nn.Conv2d(c_mid, c_out, 3, padding=1, bias=False), _norm(norm, c_out), nn.ReLU(),
        )


@register_model("lsm", LSMConfig)
class LSM(NeuralOperator):
    """Latent spectral model: a U-Net with a neural spectral block on every skip connection.

    With the defaults (width 64, five scales) the model has 19,187,457 parameters, the paper's
    19.2 M for Darcy and Navier-Stokes.

    Parameters
    ----------
    config : LSMConfig, optional
        Defaults to ``LSMConfig()``.

    Examples
    --------
    >>> import torch
    >>> model = LSM(LSMConfig(width=8, n_heads=4)).eval()
    >>> [tuple(model(torch.randn(2, 1, n, n)).shape) for n in (64, 85)]
    [(2, 1, 64, 64), (2, 1, 85, 85)]

    References
    ----------
    .. [1] H. Wu, T. Hu, H. Luo, J. Wang, M. Long, "Solving high-dimensional PDEs with latent
       spectral models", ICML 2023, arXiv:2301.12664.
    """

    def __init__(self, config: LSMConfig | None = None) -> None:
        super().__init__(config, n_dim=2)
        c = self.config
        widths = [c.width * m for m in c.channel_multipliers]
        self.lift = nn.Conv2d(c.in_channels + 2, c.width, 1)
        self.encoder = nn.ModuleList(
            _DoubleConv(c.width if k == 0 else widths[k - 1], widths[k], widths[k], c.norm)
            for k in range(c.n_scales)
        )
        self.spectral = nn.ModuleList(
            NeuralSpectralBlock(ch, c.n_basis, c.n_tokens, c.n_heads) for ch in widths
        )
        # decoder[k] merges scale k + 1 (upsampled) with the skip of scale k
        self.decoder = nn.ModuleList()
        below = widths[-1]
        for k in reversed(range(c.n_scales - 1)):
            c_in = below + widths[k]
            c_out = widths[k - 1] if k > 0 else c.width
            self.decoder.insert(0, _DoubleConv(c_in, c_out, c_in // 2, c.norm))
            below = c_out
        self.out_conv = nn.Conv2d(c.width, c.width, 1)
        self.project = nn.Sequential(
            nn.Conv2d(c.width, c.projection_channels, 1), nn.GELU(),
            nn.Conv2d(c.projection_channels, c.out_channels, 1),
        )

    def patch_size(self, spatial_shape: Sequence[int]) -> tuple[int, int]:
        """Patch size for a grid: ``ceil(n / 2**(n_scales - 1))`` per axis.

        Examples
        --------
        >>> LSM(LSMConfig(width=8)).patch_size((85, 64))
        (6, 4)
        """
        factor = 2 ** (self.config.n_scales - 1)
        return tuple(max(1, math.ceil(int(s) / factor)) for s in spatial_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, in_channels, H, W)`` to ``(batch, out_channels, H, W)``."""
        self.check_input(x)
        b, _, h, w = x.shape
        gy = torch.linspace(0, 1, h, device=x.device, dtype=x.dtype)
        gx = torch.linspace(0, 1, w, device=x.device, dtype=x.dtype)
        grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")).expand(b, -1, -1, -1)
        u = self.lift(torch.cat([x, grid], dim=1))
        patch = self.patch_size((h, w))
        factor = 2 ** (self.config.n_scales - 1)
        u = F.pad(u, (0, patch[1] * factor - w, 0, patch[0] * factor - h))
        skips = []
        for k, block in enumerate(self.encoder):
            u = block(u if k == 0 else F.max_pool2d(u, 2))
            skips.append(self.spectral[k](u, patch))
        u = skips[-1]
        for k in reversed(range(len(self.decoder))):
            u = F.interpolate(u, scale_factor=2, mode="bilinear", align_corners=True)
            u = self.decoder[k](torch.cat([skips[k], u], dim=1))
        u = self.out_conv(u)[..., :h, :w]
        return self.project(u)
