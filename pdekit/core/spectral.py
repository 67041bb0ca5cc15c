"""Fourier spectral operators for periodic fields.

Fields live on the periodic nodes ``x_i = i L / n`` of a :class:`~pdekit.core.grid.Grid` with
:class:`~pdekit.core.grid.Periodic` dimensions. A field has shape ``(*batch, *spatial)``: the
spatial dimensions are the *last* ``ndim`` dimensions and any leading dimensions are a batch.
Transforms use :func:`torch.fft.rfftn` over the spatial dimensions, so spectra are in the rfft
layout ``(n_1, ..., n_{d-1}, n_d // 2 + 1)``. Everything runs on the input's device; float32 and
float64 are computed natively, float16/bfloat16 are computed in float32 and cast back.

The Nyquist mode of an even-sized dimension (integer wavenumber ``-n/2``) is the one mode whose
``i k`` multiplier cannot be represented by a real field: odd-order derivatives along that
dimension set it to zero (Trefethen 2000, ch. 3), even-order ones keep it (``(i k)^2 = -k^2`` is
symmetric in ``k``).

References
----------
.. [1] L. N. Trefethen, *Spectral Methods in MATLAB*, SIAM, 2000, ch. 3-4.
.. [2] C. Canuto, M. Y. Hussaini, A. Quarteroni, T. A. Zang, *Spectral Methods: Fundamentals in
   Single Domains*, Springer, 2006, sec. 2.1-2.3.
.. [3] S. A. Orszag, "On the elimination of aliasing in finite-difference schemes by filtering
   high-wavenumber components", *J. Atmos. Sci.* 28 (1971) 1074.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "wavenumbers",
    "spectral_derivative",
    "spectral_gradient",
    "spectral_laplacian",
    "inverse_laplacian",
    "inverse_helmholtz",
    "dealias_mask",
    "dealias",
]


def _integer_wavenumbers(n: int, last: bool, device) -> torch.Tensor:
    """Integer wavenumbers of one dimension in fft (or, for the last one, rfft) order."""
    m = torch.arange(n // 2 + 1 if last else n, device=device)
    if last:
        return m
    return torch.where(m < (n + 1) // 2, m, m - n)


def _broadcast(v: torch.Tensor, axis: int, ndim: int) -> torch.Tensor:
    shape = [1] * ndim
    shape[axis] = v.numel()
    return v.reshape(shape)


def _lengths(length: float | Sequence[float], ndim: int) -> tuple[float, ...]:
    if isinstance(length, (int, float)):
        return (float(length),) * ndim
    out = tuple(float(v) for v in length)
    if len(out) != ndim:
        raise ValueError(f"{len(out)} lengths given for {ndim} spatial dimensions")
    return out


def wavenumbers(
    shape: Sequence[int],
    length: float | Sequence[float] = 1.0,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, ...]:
    """Angular wavenumbers ``k_j = 2 pi m_j / L_j`` of a periodic grid, in rfft layout.

    Parameters
    ----------
    shape : sequence of int
        Spatial shape ``(n_1, ..., n_d)`` (nodes per dimension).
    length : float or sequence of float
        Period ``L_j`` of each dimension.
    dtype, device
        Of the returned tensors.

    Returns
    -------
    tuple of torch.Tensor
        One tensor per dimension, broadcastable to ``(n_1, ..., n_{d-1}, n_d // 2 + 1)``. The
        integer wavenumbers ``m_j`` follow :func:`torch.fft.fftfreq` order
        (``0, 1, ..., -2, -1``; for even ``n`` the Nyquist mode is ``-n/2``) and, in the last
        dimension, :func:`torch.fft.rfftfreq` order (``0, ..., n // 2``).

    Examples
    --------
    >>> kx, ky = wavenumbers((4, 4), length=2 * math.pi)
    >>> kx.flatten().tolist(), ky.flatten().tolist()
    ([0.0, 1.0, -2.0, -1.0], [0.0, 1.0, 2.0])
    """
    shape = tuple(int(s) for s in shape)
    ndim = len(shape)
    if ndim == 0 or min(shape) < 1:
        raise ValueError(f"wavenumbers needs a non-empty spatial shape, got {shape}")
    lengths = _lengths(length, ndim)
    out = []
    for j, (n, L) in enumerate(zip(shape, lengths)):
        m = _integer_wavenumbers(n, last=j == ndim - 1, device=device)
        out.append(_broadcast(m.to(dtype) * (2 * math.pi / L), j, ndim))
    return tuple(out)


def _nyquist(n: int, last: bool, ndim: int, axis: int, device) -> torch.Tensor:
    """Bool mask (broadcastable) of the Nyquist mode of an even-sized dimension."""
    m = _integer_wavenumbers(n, last, device)
    return _broadcast(2 * m.abs() == n, axis, ndim)


def _work_dtype(u: torch.Tensor) -> torch.dtype:
    if u.is_complex() or not u.is_floating_point():
        raise TypeError(f"spectral operators take real floating-point fields, got {u.dtype}")
    return u.dtype if u.dtype in (torch.float32, torch.float64) else torch.float32


def _check_ndim(u: torch.Tensor, ndim: int) -> None:
    if not 1 <= ndim <= u.dim():
        raise ValueError(f"ndim={ndim} spatial dimensions for a field of shape {tuple(u.shape)}")


def _apply(u: torch.Tensor, ndim: int, multiplier) -> torch.Tensor:
    """``irfftn(multiplier(k...) * rfftn(u))`` over the last ``ndim`` dimensions."""
    dtype = _work_dtype(u)
    spatial = tuple(u.shape[-ndim:])
    dims = tuple(range(-ndim, 0))
    u_hat = torch.fft.rfftn(u.to(dtype), dim=dims)
    out = torch.fft.irfftn(multiplier(u_hat), s=spatial, dim=dims)
    return out.to(u.dtype)


def spectral_derivative(
    u: torch.Tensor,
    order: int | Sequence[int],
    axis: int | None = None,
    *,
    length: float | Sequence[float] = 1.0,
) -> torch.Tensor:
    """Partial derivative of a periodic field by Fourier differentiation.

    Parameters
    ----------
    u : torch.Tensor
        Real field, shape ``(*batch, *spatial)``.
    order : int or sequence of int
        Either one derivative order along ``axis``, or a tuple ``(m_1, ..., m_d)`` of orders along
        each of the last ``d`` dimensions (then ``axis`` must be omitted):
        ``order=(1, 2)`` is ``d^3 u / dx dy^2`` of a 2-D field.
    axis : int, optional
        The dimension to differentiate when ``order`` is an int (default ``-1``).
    length : float or sequence of float
        Period of the differentiated dimension(s).

    Returns
    -------
    torch.Tensor
        Same shape and dtype as ``u``. For even ``n`` the Nyquist mode is dropped along every
        dimension differentiated an odd number of times.

    Examples
    --------
    >>> x = torch.arange(8, dtype=torch.float64) / 8
    >>> du = spectral_derivative(torch.sin(2 * math.pi * x), 1)
    >>> torch.allclose(du, 2 * math.pi * torch.cos(2 * math.pi * x))
    True
    """
    if isinstance(order, int):
        axis = -1 if axis is None else axis
        if not -u.dim() <= axis < u.dim():
            raise ValueError(f"axis {axis} out of range for a field of shape {tuple(u.shape)}")
        moved = torch.movedim(u, axis, -1)
        if not isinstance(length, (int, float)):
            raise ValueError("with an int order, length is the period of that one axis")
        return torch.movedim(spectral_derivative(moved, (order,), length=length), -1, axis)
    if axis is not None:
        raise ValueError("give either order=(m_1, ..., m_d) or an int order with axis, not both")
    orders = tuple(int(m) for m in order)
    ndim = len(orders)
    _check_ndim(u, ndim)
    if min(orders) < 0:
        raise ValueError(f"derivative orders must be >= 0, got {orders}")
    if sum(orders) == 0:
        return u.clone()
    spatial = tuple(u.shape[-ndim:])
    lengths = _lengths(length, ndim)
    dtype = _work_dtype(u)

    def multiplier(u_hat: torch.Tensor) -> torch.Tensor:
        ks = wavenumbers(spatial, lengths, dtype=dtype, device=u.device)
        for j, (m, k) in enumerate(zip(orders, ks)):
            if m == 0:
                continue
            factor = k**m * (1j**m)  # 1j**m is exact: 1, 1j, -1, -1j
            if m % 2 == 1:
                drop = _nyquist(spatial[j], j == ndim - 1, ndim, j, u.device)
                factor = factor.masked_fill(drop, 0)
            u_hat = u_hat * factor
        return u_hat

    return _apply(u, ndim, multiplier)


def spectral_gradient(
    u: torch.Tensor, ndim: int, *, length: float | Sequence[float] = 1.0
) -> torch.Tensor:
    """Gradient of a periodic field, stacked on a new component dimension.

    Parameters
    ----------
    u : torch.Tensor
        Real field, shape ``(*batch, *spatial)`` with ``ndim`` spatial dimensions.
    ndim : int
        Number of trailing spatial dimensions.
    length : float or sequence of float

    Returns
    -------
    torch.Tensor
        Shape ``(*batch, ndim, *spatial)``: component ``j`` is ``du/dx_j`` (Nyquist dropped along
        ``x_j``). One forward and one batched inverse transform.

    Examples
    --------
    >>> x = torch.arange(8, dtype=torch.float64) / 8
    >>> X, Y = torch.meshgrid(x, x, indexing="ij")
    >>> g = spectral_gradient(torch.sin(2 * math.pi * X), ndim=2)
    >>> g.shape, torch.allclose(g[1], torch.zeros_like(X))
    (torch.Size([2, 8, 8]), True)
    """
    _check_ndim(u, ndim)
    spatial = tuple(u.shape[-ndim:])
    lengths = _lengths(length, ndim)
    dtype = _work_dtype(u)

    def multiplier(u_hat: torch.Tensor) -> torch.Tensor:
        ks = wavenumbers(spatial, lengths, dtype=dtype, device=u.device)
        parts = []
        for j, k in enumerate(ks):
            drop = _nyquist(spatial[j], j == ndim - 1, ndim, j, u.device)
            parts.append(u_hat * (1j * k).masked_fill(drop, 0))
        return torch.stack(parts, dim=-ndim - 1)

    return _apply(u, ndim, multiplier)


def _k_squared(spatial, length, dtype, device) -> torch.Tensor:
    ks = wavenumbers(spatial, _lengths(length, len(spatial)), dtype=dtype, device=device)
    return sum(k**2 for k in ks)


def spectral_laplacian(
    u: torch.Tensor, ndim: int, *, length: float | Sequence[float] = 1.0
) -> torch.Tensor:
    """Laplacian of a periodic field: multiplication by ``-|k|^2`` (Nyquist kept).

    Examples
    --------
    >>> x = torch.arange(16, dtype=torch.float64) / 16
    >>> u = torch.cos(2 * math.pi * 3 * x)
    >>> torch.allclose(spectral_laplacian(u, 1), -(6 * math.pi) ** 2 * u)
    True
    """
    _check_ndim(u, ndim)
    spatial = tuple(u.shape[-ndim:])
    k2 = _k_squared(spatial, length, _work_dtype(u), u.device)
    return _apply(u, ndim, lambda u_hat: u_hat * (-k2))


def inverse_laplacian(
    f: torch.Tensor, ndim: int, *, length: float | Sequence[float] = 1.0
) -> torch.Tensor:
    """Zero-mean periodic solution ``u`` of ``lap u = f``.

    A periodic Poisson problem is solvable only for zero-mean ``f`` and its solution is unique only
    up to a constant. This function divides every non-constant Fourier mode by ``-|k|^2`` and sets
    the mean (``k = 0``) mode of ``u`` to zero: it returns the zero-mean solution of
    ``lap u = f - mean(f)``, i.e. the mean of ``f`` is silently projected out. Check
    ``f.mean()`` yourself when a non-zero mean would signal an error.

    Examples
    --------
    >>> x = torch.arange(16, dtype=torch.float64) / 16
    >>> u = torch.sin(2 * math.pi * x)
    >>> torch.allclose(inverse_laplacian(spectral_laplacian(u, 1) + 5.0, 1), u)
    True
    """
    _check_ndim(f, ndim)
    spatial = tuple(f.shape[-ndim:])
    k2 = _k_squared(spatial, length, _work_dtype(f), f.device)
    zero = k2 == 0  # only the mean mode
    inv = torch.where(zero, torch.zeros_like(k2), -1.0 / torch.where(zero, 1.0, k2))
    return _apply(f, ndim, lambda f_hat: f_hat * inv)


def inverse_helmholtz(
    f: torch.Tensor,
    shift: float,
    ndim: int,
    *,
    length: float | Sequence[float] = 1.0,
) -> torch.Tensor:
    """Periodic solution ``u`` of ``(-lap + shift) u = f``, one division per Fourier mode.

    Parameters
    ----------
    f : torch.Tensor
        Right-hand side, shape ``(*batch, *spatial)``.
    shift : float
        The constant ``c``. Any real value is accepted unless ``|k|^2 + c`` vanishes for a mode of
        the grid (a resonance: ``c = 0`` is the Laplacian, use :func:`inverse_laplacian`), which
        raises ``ValueError``. ``c > 0`` gives the SPD (screened Poisson / implicit diffusion
        step) case.
    ndim : int
    length : float or sequence of float

    Examples
    --------
    >>> x = torch.arange(16, dtype=torch.float64) / 16
    >>> u = torch.cos(2 * math.pi * x)
    >>> f = -spectral_laplacian(u, 1) + 2.0 * u
    >>> torch.allclose(inverse_helmholtz(f, 2.0, 1), u)
    True
    """
    _check_ndim(f, ndim)
    spatial = tuple(f.shape[-ndim:])
    k2 = _k_squared(spatial, length, _work_dtype(f), f.device)
    denom = k2 + float(shift)
    tiny = torch.finfo(denom.dtype).eps * 16 * max(float(k2.max()), abs(float(shift)), 1.0)
    if bool((denom.abs() <= tiny).any()):
        raise ValueError(
            f"(-lap + {shift}) is singular on this grid: shift = -|k|^2 for some mode"
            + (" (use inverse_laplacian for shift = 0)" if shift == 0 else "")
        )
    return _apply(f, ndim, lambda f_hat: f_hat / denom)


def dealias_mask(shape: Sequence[int], *, device: torch.device | str | None = None) -> torch.Tensor:
    """Orszag's 2/3-rule mask in rfft layout.

    Keeps a mode iff its integer wavenumber satisfies ``3 |m_j| < n_j`` in *every* dimension (the
    exact condition under which the product of two kept modes never aliases onto a kept mode);
    for ``n`` divisible by 3 this is ``|m_j| <= n_j / 3 - 1``. The Nyquist mode ``|m_j| = n_j/2``
    is always removed.

    Parameters
    ----------
    shape : sequence of int
        The *physical* spatial shape ``(n_1, ..., n_d)`` (the rfft size of the last dimension
        alone does not tell an even ``n_d`` from an odd one).
    device
        Of the returned mask.

    Returns
    -------
    torch.Tensor
        Bool tensor of shape ``(n_1, ..., n_{d-1}, n_d // 2 + 1)``.

    Examples
    --------
    >>> dealias_mask((8,)).tolist()
    [True, True, True, False, False]
    """
    shape = tuple(int(s) for s in shape)
    ndim = len(shape)
    mask = None
    for j, n in enumerate(shape):
        m = _integer_wavenumbers(n, last=j == ndim - 1, device=device)
        keep = _broadcast(3 * m.abs() < n, j, ndim)
        mask = keep if mask is None else mask & keep
    if mask is None:
        raise ValueError("dealias_mask needs a non-empty spatial shape")
    return mask


def dealias(u_hat: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Zero the modes of an rfft-layout spectrum that the 2/3 rule removes.

    Parameters
    ----------
    u_hat : torch.Tensor
        Spectrum ``torch.fft.rfftn(u, dim=spatial dims)``, shape
        ``(*batch, n_1, ..., n_{d-1}, n_d // 2 + 1)``.
    shape : sequence of int
        Physical spatial shape ``(n_1, ..., n_d)``.

    Returns
    -------
    torch.Tensor
        A new tensor; ``u_hat`` is not modified.

    Examples
    --------
    >>> x = torch.arange(9, dtype=torch.float64) / 9
    >>> u_hat = torch.fft.rfft(torch.cos(2 * math.pi * x) + torch.cos(8 * math.pi * x))
    >>> v = torch.fft.irfft(dealias(u_hat, (9,)), n=9)
    >>> torch.allclose(v, torch.cos(2 * math.pi * x))
    True
    """
    shape = tuple(int(s) for s in shape)
    ndim = len(shape)
    expected = (*shape[:-1], shape[-1] // 2 + 1)
    if tuple(u_hat.shape[-ndim:]) != expected:
        raise ValueError(
            f"spectrum of shape {tuple(u_hat.shape)} does not end with the rfft layout {expected} "
            f"of a {shape} grid"
        )
    mask = dealias_mask(shape, device=u_hat.device)
    return u_hat * mask
