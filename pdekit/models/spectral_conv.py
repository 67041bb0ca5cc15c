"""A spectral convolution that is correct on every grid size, for neuraloperator's FNO.

neuraloperator 2.0.0's ``SpectralConv.forward`` centres the spectrum with ``fftshift`` and then
"undoes" the centring with a second ``fftshift``. ``fftshift`` rolls by ``n // 2``; twice that is a
roll by ``2 * (n // 2)``, which is the identity only when ``n`` is even. On an odd grid (the classic
Darcy grids 85, 141, 211 and 421) every kept Fourier mode of every non-last dimension is written one
bin off, so an FNO layer computes a different operator at 85 than at 64. The last dimension is
unaffected for real data (it uses ``rfft`` and is never shifted), and so is 1D.

:class:`SpectralConv` here keeps the parent's parameters, factorisations and contraction (so its
``state_dict`` is interchangeable with neuraloperator's) and replaces ``forward``:

* the inverse of ``fftshift`` is ``ifftshift``;
* the kept modes are chosen *by frequency*: frequency ``f`` always meets weight index
  ``f + E // 2`` (``E`` the weight's extent), clipped to what the input grid, the output grid and
  the current ``n_modes`` can hold. This also fixes two smaller upstream slips: an odd number of
  kept modes below an even weight extent was paired one weight index off, and ``complex_data``
  never undid the shift of its last dimension;
* a different output shape (``output_shape`` or ``resolution_scaling_factor``) places the kept
  modes in an output-sized spectrum, which is Fourier interpolation; upstream zero-pads the
  *shifted-back* input spectrum, which scrambles the negative frequencies.

On grids of even size (all dims) and for real data the result equals upstream's bit for bit.

Importing this module imports neuraloperator (a few seconds); :mod:`pdekit.models` imports it only
when a model is built. The papers are cited in :class:`SpectralConv` and :mod:`pdekit.models.fno`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from neuralop.layers.spectral_convolution import SpectralConv as _UpstreamSpectralConv

__all__ = ["SpectralConv", "kept_frequencies"]


def kept_frequencies(
    weight_extent: int, n_modes: int, in_size: int, out_size: int, *, centred: bool
) -> tuple[int, int]:
    """Inclusive range ``(lo, hi)`` of the frequencies one dimension of the layer keeps.

    Parameters
    ----------
    weight_extent : int
        Size of the spectral weight along this dimension.
    n_modes : int
        Modes currently in use along this dimension (at most ``weight_extent``); for the ``rfft``
        dimension this is the stored ``m // 2 + 1``.
    in_size, out_size : int
        Grid sizes of the input and of the output along this dimension.
    centred : bool
        True for a full-FFT dimension (frequencies ``-E//2 .. E-1-E//2`` meet weight indices
        ``0 .. E-1``); False for the ``rfft`` dimension (frequencies ``0 .. E-1``).

    Returns
    -------
    tuple of int
        ``(lo, hi)``; weight index is ``f + weight_extent // 2`` when centred, else ``f``.

    Examples
    --------
    >>> kept_frequencies(16, 16, 85, 85, centred=True)
    (-8, 7)
    >>> kept_frequencies(16, 16, 7, 7, centred=True)
    (-3, 3)
    >>> kept_frequencies(9, 9, 85, 85, centred=False)
    (0, 8)
    """
    if centred:
        lo = max(-(weight_extent // 2), -(n_modes // 2), -(in_size // 2), -(out_size // 2))
        hi = min(
            weight_extent - 1 - weight_extent // 2,
            n_modes - 1 - n_modes // 2,
            (in_size - 1) // 2,
            (out_size - 1) // 2,
        )
    else:
        lo = 0
        hi = min(weight_extent - 1, n_modes - 1, in_size // 2, out_size // 2)
    return lo, hi


class SpectralConv(_UpstreamSpectralConv):
    """Fourier-space convolution of an FNO layer, correct on odd grids.

    Same constructor, parameters and ``state_dict`` as
    ``neuralop.layers.spectral_convolution.SpectralConv`` (2.0.0); pass the class as
    ``conv_module`` to ``neuralop.models.FNO``. Only ``forward`` differs (see the module notes).

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and output.
    n_modes : tuple of int
        Total modes kept per dimension (centred; the last is stored as ``m // 2 + 1`` for real
        data), as in neuraloperator.
    **kwargs
        Any other argument of the upstream class (``factorization``, ``rank``, ``bias``,
        ``separable``, ``complex_data``, ``max_n_modes``, ``fno_block_precision`` ...).

    Examples
    --------
    >>> import torch
    >>> conv = SpectralConv(1, 1, n_modes=(8, 8), bias=False)
    >>> _ = conv.weight.tensor.data.fill_(1.0)          # identity on the kept modes
    >>> k = torch.arange(85) / 85
    >>> u = (torch.cos(2 * torch.pi * 2 * k)[:, None] * torch.sin(2 * torch.pi * k)).reshape(1, 1, 85, 85)
    >>> bool(torch.allclose(conv(u), u, atol=1e-5))
    True

    References
    ----------
    .. [1] Z. Li et al., "Fourier neural operator for parametric partial differential
       equations", ICLR 2021, arXiv:2010.08895.
    .. [2] J. Kossaifi et al., "Multi-grid tensorized Fourier neural operator for
       high-resolution PDEs", TMLR 2024, arXiv:2310.00120.
    """

    def _output_shape(
        self, in_shape: Sequence[int], output_shape: Sequence[int] | None
    ) -> list[int]:
        if output_shape is not None:
            return [int(s) for s in output_shape]
        if self.resolution_scaling_factor is not None:
            return [round(s * r) for s, r in zip(in_shape, self.resolution_scaling_factor)]
        return list(in_shape)

    def forward(self, x: torch.Tensor, output_shape: Sequence[int] | None = None) -> torch.Tensor:
        """Apply the spectral convolution.

        Parameters
        ----------
        x : torch.Tensor
            Shape ``(batch, in_channels, d_1, ..., d_n)``.
        output_shape : sequence of int, optional
            Spatial shape of the output (Fourier interpolation); default: the input's shape, or
            the one given by ``resolution_scaling_factor``.

        Returns
        -------
        torch.Tensor
            Shape ``(batch, out_channels, *output_shape)``.
        """
        batch = x.shape[0]
        in_shape = list(x.shape[2:])
        out_shape = self._output_shape(in_shape, output_shape)
        order = self.order
        fft_dims = list(range(-order, 0))
        # Real data: the last dim is an rfft (non-negative frequencies, never shifted).
        centred = [True] * order if self.complex_data else [True] * (order - 1) + [False]
        shift_dims = [d for d, c in zip(fft_dims, centred) if c]

        if self.fno_block_precision == "half":
            x = x.half()
        if self.complex_data:
            x_hat = torch.fft.fftn(x, dim=fft_dims, norm=self.fft_norm)
        else:
            x_hat = torch.fft.rfftn(x, dim=fft_dims, norm=self.fft_norm)
        if shift_dims:
            x_hat = torch.fft.fftshift(x_hat, dim=shift_dims)
        if self.fno_block_precision == "mixed":
            x_hat = x_hat.chalf()

        w_offset = 1 if self.separable else 2
        weight_extents = self.weight.shape[w_offset:]
        slices_w: list[slice] = [slice(None)] * w_offset
        slices_x: list[slice] = [slice(None), slice(None)]
        slices_out: list[slice] = [slice(None), slice(None)]
        out_fft_shape = list(out_shape)
        for d in range(order):
            extent = weight_extents[d]
            lo, hi = kept_frequencies(
                extent, self.n_modes[d], in_shape[d], out_shape[d], centred=centred[d]
            )
            if centred[d]:
                w0, x0, o0 = extent // 2, in_shape[d] // 2, out_shape[d] // 2
            else:
                w0 = x0 = o0 = 0
                out_fft_shape[d] = out_shape[d] // 2 + 1
            slices_w.append(slice(lo + w0, hi + w0 + 1))
            slices_x.append(slice(lo + x0, hi + x0 + 1))
            slices_out.append(slice(lo + o0, hi + o0 + 1))

        weight = self.weight[tuple(slices_w)]
        contracted = self._contract(x_hat[tuple(slices_x)], weight, separable=self.separable)
        out_fft = torch.zeros(
            [batch, self.out_channels, *out_fft_shape], device=x.device, dtype=contracted.dtype
        )
        out_fft[tuple(slices_out)] = contracted

        if shift_dims:
            out_fft = torch.fft.ifftshift(out_fft, dim=shift_dims)
        if self.complex_data:
            y = torch.fft.ifftn(out_fft, s=out_shape, dim=fft_dims, norm=self.fft_norm)
        else:
            y = torch.fft.irfftn(out_fft, s=out_shape, dim=fft_dims, norm=self.fft_norm)
        if self.bias is not None:
            y = y + self.bias
        return y
