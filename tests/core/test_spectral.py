import math

import numpy as np
import pytest
import torch

from pdekit.core.grid import Grid
from pdekit.core.spectral import (
    dealias,
    dealias_mask,
    inverse_helmholtz,
    inverse_laplacian,
    spectral_derivative,
    spectral_gradient,
    spectral_laplacian,
    wavenumbers,
)

TWO_PI = 2 * math.pi


def mesh(shape, length=1.0, dtype=torch.float64):
    lengths = length if isinstance(length, tuple) else (length,) * len(shape)
    return Grid(tuple(shape), bc="periodic", length=lengths).mesh(dtype=dtype)


def trig_2d(X, Y, Lx, Ly):
    """u = sin(2 pi 3 x / Lx) cos(2 pi 2 y / Ly) + cos(2 pi x / Lx) and its exact derivatives."""
    a, b = TWO_PI * 3 / Lx, TWO_PI * 2 / Ly
    c = TWO_PI / Lx
    u = torch.sin(a * X) * torch.cos(b * Y) + torch.cos(c * X)
    ux = a * torch.cos(a * X) * torch.cos(b * Y) - c * torch.sin(c * X)
    uy = -b * torch.sin(a * X) * torch.sin(b * Y)
    uxy = -a * b * torch.cos(a * X) * torch.sin(b * Y)
    lap = -(a**2 + b**2) * torch.sin(a * X) * torch.cos(b * Y) - c**2 * torch.cos(c * X)
    return u, ux, uy, uxy, lap


# -- wavenumbers ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [7, 8])
def test_wavenumbers_match_numpy_fftfreq(n):
    kx, ky = wavenumbers((n, n), length=(2.0, 3.0))
    assert kx.shape == (n, 1) and ky.shape == (1, n // 2 + 1)
    np.testing.assert_allclose(kx.flatten().numpy(), TWO_PI * np.fft.fftfreq(n, d=2.0 / n))
    np.testing.assert_allclose(ky.flatten().numpy(), TWO_PI * np.fft.rfftfreq(n, d=3.0 / n))


# -- derivatives ----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(16, 12), (15, 9)])
def test_exact_derivatives_of_trig_polynomial_2d(shape):
    Lx, Ly = 2.0, 0.5
    X, Y = mesh(shape, (Lx, Ly))
    u, ux, uy, uxy, lap = trig_2d(X, Y, Lx, Ly)
    u = torch.stack([u, 2 * u])  # a batch of two fields
    L = (Lx, Ly)
    tol = dict(rtol=0, atol=1e-12 * float(lap.abs().max()))
    torch.testing.assert_close(spectral_derivative(u, (1, 0), length=L)[1], 2 * ux, **tol)
    torch.testing.assert_close(spectral_derivative(u, (0, 1), length=L)[0], uy, **tol)
    torch.testing.assert_close(spectral_derivative(u, (1, 1), length=L)[0], uxy, **tol)
    torch.testing.assert_close(spectral_derivative(u, 1, axis=-2, length=Lx)[0], ux, **tol)
    torch.testing.assert_close(spectral_derivative(u, 1, axis=2, length=Ly)[0], uy, **tol)
    grad = spectral_gradient(u, 2, length=L)
    assert grad.shape == (2, 2, *shape)
    torch.testing.assert_close(grad[0, 0], ux, **tol)
    torch.testing.assert_close(grad[1, 1], 2 * uy, **tol)
    torch.testing.assert_close(spectral_laplacian(u, 2, length=L)[0], lap, **tol)


def test_exact_derivatives_1d_high_order():
    n, L = 32, 3.0
    (x,) = mesh((n,), L)
    k = TWO_PI * 5 / L
    u = torch.sin(k * x)
    exact = {1: k * torch.cos(k * x), 2: -(k**2) * u, 3: -(k**3) * torch.cos(k * x), 4: k**4 * u}
    for order, ref in exact.items():
        torch.testing.assert_close(
            spectral_derivative(u, order, length=L), ref, rtol=0, atol=1e-12 * k**order
        )


def test_exact_derivatives_3d():
    shape = (8, 10, 6)
    X, Y, Z = mesh(shape)
    u = torch.cos(TWO_PI * X) * torch.sin(TWO_PI * 2 * Y) * torch.cos(TWO_PI * 2 * Z)
    uz = -TWO_PI * 2 * torch.cos(TWO_PI * X) * torch.sin(TWO_PI * 2 * Y) * torch.sin(TWO_PI * 2 * Z)
    torch.testing.assert_close(spectral_derivative(u, (0, 0, 1)), uz, rtol=0, atol=1e-11)
    k2 = TWO_PI**2 * (1 + 4 + 4)
    torch.testing.assert_close(spectral_laplacian(u, 3), -k2 * u, rtol=0, atol=1e-11)
    torch.testing.assert_close(inverse_laplacian(-k2 * u, 3), u, rtol=0, atol=1e-13)
    assert spectral_gradient(u, 3).shape == (3, *shape)


def test_nyquist_mode_is_dropped_by_odd_and_kept_by_even_derivatives():
    n = 8
    (x,) = mesh((n,))
    nyq = torch.cos(math.pi * n * x)  # (-1)^i: the Nyquist mode, whose derivative is ambiguous
    torch.testing.assert_close(spectral_derivative(nyq, 1), torch.zeros(n, dtype=torch.float64))
    torch.testing.assert_close(spectral_derivative(nyq, 3), torch.zeros(n, dtype=torch.float64))
    k = math.pi * n
    torch.testing.assert_close(spectral_derivative(nyq, 2), -(k**2) * nyq)
    # In 2-D the Nyquist row of a non-last dimension must be dropped too (else the result is
    # complex-inconsistent); along the other dimension it is an ordinary mode.
    X, Y = mesh((n, n))
    v = torch.cos(math.pi * n * X) * torch.sin(TWO_PI * Y)
    torch.testing.assert_close(spectral_derivative(v, (1, 0)), torch.zeros_like(v))
    torch.testing.assert_close(
        spectral_derivative(v, (0, 1)), TWO_PI * torch.cos(math.pi * n * X) * torch.cos(TWO_PI * Y)
    )


def test_spectral_convergence_for_smooth_periodic_function():
    errors = []
    for n in (8, 16, 32, 64):
        (x,) = mesh((n,))
        u = torch.exp(torch.sin(TWO_PI * x))
        du = TWO_PI * torch.cos(TWO_PI * x) * u
        errors.append(float((spectral_derivative(u, 1) - du).abs().max()))
    assert errors[0] > 1e-3  # not a trigonometric polynomial: coarse grids see real error
    assert all(e1 < 1e-2 * e0 for e0, e1 in zip(errors[:2], errors[1:3]))  # faster than algebraic
    assert errors[2] < 1e-10 and errors[3] < 1e-10


# -- inverses -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(32,), (12, 9), (6, 8, 5)])
def test_inverse_laplacian_inverts_laplacian_on_zero_mean_fields(shape):
    g = torch.Generator().manual_seed(0)
    u = torch.randn(3, *shape, generator=g, dtype=torch.float64)
    u = u - u.mean(dim=tuple(range(1, u.dim())), keepdim=True)
    L = tuple(1.0 + 0.5 * j for j in range(len(shape)))
    f = spectral_laplacian(u, len(shape), length=L)
    back = inverse_laplacian(f, len(shape), length=L)
    # random fields carry the Nyquist mode, which the Laplacian keeps, so the round trip is exact
    torch.testing.assert_close(back, u, rtol=0, atol=1e-12)


def test_inverse_laplacian_projects_out_the_mean():
    (x,) = mesh((16,))
    f = torch.sin(TWO_PI * x) + 3.0
    u = inverse_laplacian(f, 1)
    assert abs(float(u.mean())) < 1e-14
    torch.testing.assert_close(u, -torch.sin(TWO_PI * x) / TWO_PI**2, rtol=0, atol=1e-14)


def test_inverse_helmholtz_solves_shifted_problem_and_rejects_resonance():
    g = torch.Generator().manual_seed(1)
    u = torch.randn(2, 10, 12, generator=g, dtype=torch.float64)
    for c in (3.0, -0.5):
        f = -spectral_laplacian(u, 2) + c * u
        torch.testing.assert_close(inverse_helmholtz(f, c, 2), u, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="singular"):
        inverse_helmholtz(u, 0.0, 2)
    with pytest.raises(ValueError, match="singular"):
        inverse_helmholtz(u, -(TWO_PI**2), 2)  # resonance with |k| = 2 pi


# -- dealiasing -----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(12,), (9, 10), (8, 7, 6)])
def test_dealias_mask_keeps_exactly_modes_below_two_thirds(shape):
    mask = dealias_mask(shape)
    assert mask.shape == (*shape[:-1], shape[-1] // 2 + 1)
    # reference: integer wavenumbers from numpy, keep iff 3|m| < n in every dimension
    freqs = [np.fft.fftfreq(n, 1.0 / n) for n in shape[:-1]] + [
        np.fft.rfftfreq(shape[-1], 1 / shape[-1])
    ]
    grids = np.meshgrid(*freqs, indexing="ij")
    ref = np.ones(mask.shape, dtype=bool)
    for m, n in zip(grids, shape):
        ref &= 3 * np.abs(m) < n
    np.testing.assert_array_equal(mask.numpy(), ref)
    if len(shape) > 1:  # along a full (non-rfft) dimension: m = 0, +-1, ..., +-(n - 1) // 3
        n = shape[0]
        assert int(mask.reshape(n, -1)[:, 0].sum()) == 2 * ((n - 1) // 3) + 1


def test_dealias_removes_high_modes_and_keeps_low_modes():
    n = 12  # keeps |m| <= 3, removes 4 .. 6 (6 is Nyquist)
    X, Y = mesh((n, n))
    low = torch.cos(TWO_PI * 3 * X) * torch.sin(TWO_PI * 2 * Y) + 0.5
    high = torch.cos(TWO_PI * 4 * X) + torch.sin(TWO_PI * 5 * Y) + torch.cos(math.pi * n * X)
    u_hat = torch.fft.rfftn(low + high)
    before = u_hat.clone()
    out = torch.fft.irfftn(dealias(u_hat, (n, n)), s=(n, n))
    torch.testing.assert_close(out, low, rtol=0, atol=1e-13)
    assert torch.equal(u_hat, before)  # not mutated
    with pytest.raises(ValueError, match="rfft layout"):
        dealias(u_hat, (n, n + 2))


def test_dealiased_product_has_no_aliasing_error():
    """The product of two dealiased fields, computed on the grid, equals the exact product's
    modes within the kept band (Orszag's argument)."""
    n, fine = 12, 48
    g = torch.Generator().manual_seed(2)
    mask = dealias_mask((n,))
    a_hat = torch.complex(*torch.randn(2, n // 2 + 1, generator=g, dtype=torch.float64)) * mask
    b_hat = torch.complex(*torch.randn(2, n // 2 + 1, generator=g, dtype=torch.float64)) * mask
    # (irfft ignores the imaginary part of the mean mode, as for any real field)

    def on(grid_n, c_hat):  # evaluate the band-limited field on a grid of grid_n points
        return torch.fft.irfft(c_hat * grid_n / n, n=grid_n)

    coarse = torch.fft.rfft(on(n, a_hat) * on(n, b_hat)) * mask
    exact = torch.fft.rfft(on(fine, a_hat) * on(fine, b_hat))[: n // 2 + 1] * n / fine * mask
    torch.testing.assert_close(coarse, exact, rtol=0, atol=1e-12)


# -- dtypes, devices, errors ----------------------------------------------------------------


def test_float32_and_half_inputs_keep_their_dtype():
    X, Y = mesh((16, 16), dtype=torch.float32)
    u, ux, _, _, lap = trig_2d(X, Y, 1.0, 1.0)
    du = spectral_derivative(u, (1, 0))
    assert du.dtype == torch.float32
    torch.testing.assert_close(du, ux, rtol=0, atol=1e-4 * float(ux.abs().max()))
    torch.testing.assert_close(
        spectral_laplacian(u, 2), lap, rtol=0, atol=1e-4 * float(lap.abs().max())
    )
    zero_mean = u - u.mean()
    torch.testing.assert_close(
        inverse_laplacian(spectral_laplacian(zero_mean, 2), 2), zero_mean, rtol=0, atol=1e-5
    )
    half = spectral_derivative(u.to(torch.bfloat16), (0, 1))
    assert half.dtype == torch.bfloat16


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_the_input_device():
    X, Y = mesh((16, 16))
    u, ux, *_ = trig_2d(X, Y, 1.0, 1.0)
    out = spectral_derivative(u.cuda(), (1, 0))
    assert out.is_cuda
    torch.testing.assert_close(out.cpu(), ux, rtol=0, atol=1e-11)


def test_input_validation():
    u = torch.zeros(8, dtype=torch.float64)
    with pytest.raises(TypeError):
        spectral_derivative(u.to(torch.complex128), 1)
    with pytest.raises(ValueError):
        spectral_derivative(u, (1, 0))  # 2 orders for a 1-D tensor
    with pytest.raises(ValueError):
        spectral_derivative(u, (1,), axis=0)
    with pytest.raises(ValueError):
        spectral_laplacian(u, 2)
    assert spectral_derivative(u, 0) is not u


@pytest.mark.parametrize("shape", [(6, 5), (5, 6)])
def test_operators_are_differentiable(shape):
    g = torch.Generator().manual_seed(3)
    u = torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: spectral_derivative(v, (1, 1)), (u,))
    assert torch.autograd.gradcheck(lambda v: spectral_gradient(v, 2), (u,))
    assert torch.autograd.gradcheck(lambda v: inverse_helmholtz(v, 2.0, 2), (u,))
