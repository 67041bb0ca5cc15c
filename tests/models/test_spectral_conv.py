"""pdekit's SpectralConv against analytic band-limited fields and against neuraloperator 2.0.0.

neuraloperator's own layer undoes its fftshift with a second fftshift, which is the identity only
on even sizes: the tests marked "upstream behaviour" document exactly where it is wrong (odd size
in a non-last axis) and where it is right (even sizes, odd last axis, 1D).
"""

import itertools
import math

import pytest
import torch
from neuralop.layers.spectral_convolution import SpectralConv as UpstreamSpectralConv

from pdekit.models.spectral_conv import SpectralConv, kept_frequencies


def band_limited(shape, band=4, seed=0):
    """Real trigonometric polynomial with all |k_i| <= band, sampled on a periodic grid."""
    gen = torch.Generator().manual_seed(seed)
    axes = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) / n for n in shape], indexing="ij")
    u = torch.zeros(shape, dtype=torch.float64)
    for k in itertools.product(range(-band, band + 1), repeat=len(shape)):
        phase = 2 * math.pi * sum(ki * xi for ki, xi in zip(k, axes))
        a, b = torch.randn(2, generator=gen, dtype=torch.float64)
        u += a * torch.cos(phase) + b * torch.sin(phase)
    return u.float()[None, None]


def identity_conv(cls, n_modes, **kwargs):
    conv = cls(1, 1, n_modes=n_modes, bias=False, **kwargs)
    with torch.no_grad():
        conv.weight.tensor.fill_(1.0)
    return conv


def rel_err(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize(
    "shape",
    [(64, 64), (65, 65), (85, 85), (85, 64), (64,), (65,), (85,), (17, 16, 15)],
)
def test_identity_weights_return_band_limited_input(shape):
    conv = identity_conv(SpectralConv, (12,) * len(shape))
    u = band_limited(shape, band=4 if len(shape) < 3 else 2)
    with torch.no_grad():
        assert rel_err(conv(u), u) < 1e-5


@pytest.mark.parametrize("shape", [(65, 65), (85, 85), (85, 64), (7, 7)])
def test_upstream_fails_identity_on_odd_non_last_axis(shape):
    # Documents neuraloperator 2.0.0 behaviour (fftshift used as its own inverse; fixed upstream
    # in PR #688, in no release). If this starts failing, upstream was fixed: update the note.
    conv = identity_conv(UpstreamSpectralConv, (12, 12))
    u = band_limited(shape, band=3)
    with torch.no_grad():
        assert rel_err(conv(u), u) > 1.0


@pytest.mark.parametrize("shape", [(64, 64), (64, 85), (85,), (64,)])
def test_upstream_is_right_on_even_grids_odd_last_axis_and_1d(shape):
    # Documents where neuraloperator 2.0.0 is correct: even sizes, the rfft (last) axis, 1D.
    conv = identity_conv(UpstreamSpectralConv, (12,) * len(shape))
    u = band_limited(shape)
    with torch.no_grad():
        assert rel_err(conv(u), u) < 1e-5


@pytest.mark.parametrize("factorization", [None, "tucker", "cp"])
def test_equals_upstream_exactly_where_upstream_is_right(factorization):
    torch.manual_seed(0)
    upstream = UpstreamSpectralConv(3, 4, n_modes=(12, 10), factorization=factorization, rank=0.5)
    ours = SpectralConv(3, 4, n_modes=(12, 10), factorization=factorization, rank=0.5)
    ours.load_state_dict(upstream.state_dict())
    with torch.no_grad():
        for shape in [(64, 32), (32, 85)]:
            x = torch.randn(2, 3, *shape)
            assert torch.equal(ours(x), upstream(x))
        x = torch.randn(2, 3, 85, 32)
        assert rel_err(upstream(x), ours(x)) > 0.1


@pytest.mark.parametrize("n", [65, 85, 7])
def test_random_weights_are_discretisation_invariant(n):
    # Band 3 is exactly representable on every grid here (7 > 2*3); the layer is diagonal in
    # Fourier space, so the output's Fourier coefficients must not depend on the grid.
    torch.manual_seed(1)
    conv = SpectralConv(2, 3, n_modes=(16, 16))
    band = 3

    def coefficients(size):
        x = torch.cat([band_limited((size, size), band, seed=s) for s in (2, 3)], dim=1)
        with torch.no_grad():
            y = conv(x) - conv.bias
        c = torch.fft.rfft2(y, norm="forward")
        rows = list(range(band + 1)) + list(range(-band, 0))
        return c[:, :, rows, : band + 1]

    ref = coefficients(64)
    assert torch.allclose(coefficients(n), ref, atol=1e-5 * float(ref.abs().max()))


def test_output_shape_is_fourier_interpolation():
    conv = identity_conv(SpectralConv, (16, 16))
    with torch.no_grad():
        y = conv(band_limited((64, 64), seed=4), output_shape=(85, 85))
    assert y.shape == (1, 1, 85, 85)
    assert rel_err(y, band_limited((85, 85), seed=4)) < 1e-5


@pytest.mark.parametrize("shape", [(64, 64), (65, 65)])
def test_complex_data_identity(shape):
    torch.manual_seed(2)
    conv = identity_conv(SpectralConv, shape, complex_data=True)
    u = torch.randn(1, 1, *shape, dtype=torch.cfloat)
    with torch.no_grad():
        assert rel_err(conv(u), u) < 1e-5
    # Upstream never undoes the shift of the last axis for complex data (even sizes too).
    upstream = identity_conv(UpstreamSpectralConv, shape, complex_data=True)
    with torch.no_grad():
        assert rel_err(upstream(u), u) > 1.0


def test_kept_frequencies_pairs_weights_by_frequency():
    assert kept_frequencies(16, 16, 85, 85, centred=True) == (-8, 7)
    assert kept_frequencies(16, 16, 64, 64, centred=True) == (-8, 7)
    assert kept_frequencies(16, 16, 7, 7, centred=True) == (-3, 3)
    assert kept_frequencies(16, 12, 85, 85, centred=True) == (-6, 5)
    assert kept_frequencies(9, 9, 85, 85, centred=False) == (0, 8)
    assert kept_frequencies(9, 9, 10, 10, centred=False) == (0, 5)
