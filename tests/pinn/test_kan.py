"""KAN layers: B-spline basis vs scipy, smoothness (second derivatives), grid update."""

import numpy as np
import pytest
import torch
from scipy.interpolate import BSpline

from pdekit.pinn.kan import KAN, BSplineKANLayer, ChebyshevKANLayer, bspline_basis, uniform_knots

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.mark.parametrize("G, k", [(3, 1), (5, 2), (7, 3), (10, 3)])
def test_partition_of_unity_and_support(G, k):
    t = uniform_knots(G, k, (-2.0, 1.0), dtype=F64)
    x = torch.linspace(-2.0, 1.0, 301, dtype=F64)[:-1, None]
    B = bspline_basis(x, t, k)
    assert B.shape == (300, 1, G + k)
    assert torch.allclose(B.sum(-1), torch.ones(300, 1, dtype=F64), atol=1e-12)
    assert (B >= 0).all()
    h = 3.0 / G
    outside = torch.tensor([[-2.0 - k * h - 1e-9], [1.0 + k * h], [5.0]], dtype=F64)
    assert bspline_basis(outside, t, k).abs().max() == 0


@pytest.mark.parametrize("k", [1, 2, 3])
def test_basis_matches_scipy(k):
    t = uniform_knots(6, k, (0.0, 1.0), dtype=F64)
    x = np.random.default_rng(0).uniform(float(t[0]), float(t[-1]), 400)
    x = x[(x > t[0].item()) & (x < t[-1].item())]
    ref = BSpline.design_matrix(x, t.numpy(), k, extrapolate=True).toarray()
    ours = bspline_basis(torch.from_numpy(x)[:, None], t, k)[:, 0, :].numpy()
    # scipy only defines the basis where k+1 knots are on each side; compare there.
    inside = (x >= t[k].item()) & (x < t[-k - 1].item())
    np.testing.assert_allclose(ours[inside], ref[inside], atol=1e-12)


def test_layer_parameter_count_and_gradcheck():
    torch.manual_seed(0)
    layer = BSplineKANLayer(3, 2, grid_size=4, spline_order=3, dtype=F64)
    assert sum(p.numel() for p in layer.parameters()) == 2 * 3 * (4 + 3 + 2)
    x = (torch.rand(5, 3, dtype=F64) * 1.8 - 0.9).requires_grad_()
    assert torch.autograd.gradcheck(layer, (x,))


def test_chebyshev_layer_matches_cosine_formula():
    torch.manual_seed(0)
    layer = ChebyshevKANLayer(2, 3, degree=5, dtype=F64)
    x = torch.randn(7, 2, dtype=F64)
    d = torch.arange(6, dtype=F64)
    T = torch.cos(d * torch.arccos(torch.tanh(x))[..., None])  # (7, 2, 6)
    ref = torch.einsum("nid,iod->no", T, layer.coefficients)
    assert torch.allclose(layer(x), ref, atol=1e-12)


def _derivatives(net, x):
    x = x.clone().requires_grad_()
    u = net(x)[:, 0]
    g = torch.autograd.grad(u.sum(), x, create_graph=True)[0]
    H = torch.stack([torch.autograd.grad(g[:, j].sum(), x, retain_graph=True)[0] for j in range(2)], 1)
    return g.detach(), H.detach()


@pytest.mark.parametrize("basis", ["bspline", "chebyshev"])
def test_second_derivatives_match_finite_differences(basis):
    torch.manual_seed(1)
    net = KAN([2, 4, 3, 1], basis=basis, grid_size=6, degree=5, input_range=(0.0, 1.0), dtype=F64)
    x = torch.rand(20, 2, dtype=F64)
    g, H = _derivatives(net, x)
    eps = 1e-5
    for j in range(2):
        e = torch.zeros(2, dtype=F64)
        e[j] = eps
        gp, _ = _derivatives(net, x + e)
        gm, _ = _derivatives(net, x - e)
        fd = (gp - gm) / (2 * eps)  # column i: d2u / dx_i dx_j
        assert torch.allclose(H[:, :, j].T, fd.T, rtol=1e-5, atol=1e-7 * H.abs().max())
        up, um = net(x + e)[:, 0], net(x - e)[:, 0]
        assert torch.allclose(g[:, j], ((up - um) / (2 * eps)).detach(), rtol=1e-6, atol=1e-9)
    assert H.abs().max() > 1e-3  # the check is not vacuous


def test_cubic_spline_second_derivative_is_continuous_at_knots():
    torch.manual_seed(2)
    layer = BSplineKANLayer(1, 1, grid_size=4, spline_order=3, dtype=F64)
    knot = layer.knots[0, 5].item()  # an interior knot
    vals = []
    for x0 in (knot - 1e-9, knot + 1e-9):
        x = torch.tensor([[x0]], dtype=F64, requires_grad=True)
        (d1,) = torch.autograd.grad(layer(x).sum(), x, create_graph=True)
        (d2,) = torch.autograd.grad(d1.sum(), x)
        vals.append(d2.item())
    assert abs(vals[0] - vals[1]) < 1e-6 * (1 + abs(vals[0]))


def test_grid_update_keeps_function():
    torch.manual_seed(3)
    net = KAN([1, 5, 1], grid_size=5, hidden_activation="identity", dtype=F64)
    for layer in net.layers:  # a non-trivial spline branch
        layer.spline_weight.data.normal_(0, 1)
    x = torch.rand(500, 1, dtype=F64) * 0.6 - 0.5  # data in [-0.5, 0.1]
    before = net(x).detach()
    net.update_grid(x)
    after = net(x).detach()
    first = net.layers[0].knots[0]
    assert -0.52 < first[3].item() < -0.49 and 0.09 < first[-4].item() < 0.12  # knots moved to data
    assert (after - before).abs().max() < 0.01 * before.abs().max()
    net.update_grid(x, grid_size=12)  # refinement: closer still, new parameter shape
    assert net.layers[0].spline_weight.shape == (5, 1, 15)
    assert (net(x).detach() - before).abs().max() < 0.01 * before.abs().max()


def test_grid_update_is_accurate_in_float32():
    # The least-squares refit runs in float64: in float32 it used to change the network by ~10%.
    torch.manual_seed(0)
    net = KAN([1, 4, 1], grid_size=4, hidden_activation="identity")
    x = torch.rand(256, 1) * 0.5
    with torch.no_grad():
        before = net(x)
        net.update_grid(x, grid_size=8)
        after = net(x)
    assert after.dtype == torch.float32
    assert float((after - before).abs().max()) < 1e-4 * float(before.abs().max())
