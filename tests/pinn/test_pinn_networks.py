"""deepxde wrapper: transforms are applied (hard BCs exact) and derivatives are right."""

import numpy as np
import pytest
import torch

from pdekit.pinn.networks import MLP, deepxde_net, import_deepxde, make_net, mlp_width_for

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.mark.parametrize("kind", ["kan_bspline", "kan_chebyshev", "mlp"])
def test_output_transform_imposes_hard_bc_exactly(kind):
    dde = import_deepxde()
    net = make_net(kind, [2, 6, 6, 1], input_range=(0.0, 1.0))
    assert isinstance(net, dde.nn.NN)
    x = torch.rand(50, 2)
    free = net(x).detach()
    net.apply_output_transform(lambda x, y: 3.0 + x[:, :1] * (1 - x[:, :1]) * y)
    edge = x.clone()
    edge[:, 0] = torch.where(torch.arange(50) % 2 == 0, 0.0, 1.0)
    assert torch.equal(net(edge), torch.full((50, 1), 3.0))
    inner = net(x).detach()
    assert torch.allclose(inner, 3.0 + x[:, :1] * (1 - x[:, :1]) * free, atol=1e-6)


def test_input_transform_and_deepxde_model_predict():
    dde = import_deepxde()
    net = deepxde_net(MLP([2, 5, 1]), input_transform=lambda x: x.flip(-1),
                      output_transform=lambda x, y: x[:, :1] * y)
    ref = net.module(torch.tensor([[0.3, 0.7]]).flip(-1)) * 0.3
    assert torch.allclose(net(torch.tensor([[0.3, 0.7]])), ref)
    data = dde.data.PDE(dde.geometry.Rectangle([0, 0], [1, 1]), lambda x, u: u, [], num_domain=8)
    model = dde.Model(data, net)
    model.compile("adam", lr=1e-3)
    pred = model.predict(np.array([[0.0, 0.4], [0.0, 0.9]], dtype=np.float32))
    assert np.array_equal(pred, np.zeros((2, 1), dtype=np.float32))


@pytest.mark.parametrize("kind", ["kan_bspline", "kan_chebyshev"])
def test_deepxde_hessian_matches_finite_differences(kind):
    dde = import_deepxde()
    torch.manual_seed(0)
    net = make_net(kind, [1, 5, 1], input_range=(-1.0, 1.0)).double()
    x = torch.linspace(-0.9, 0.9, 11, dtype=torch.float64)[:, None].requires_grad_()
    u = net(x)
    d2 = dde.grad.hessian(u, x).detach()
    dde.grad.clear()
    eps = 1e-4
    with torch.no_grad():
        fd = (net(x + eps) - 2 * net(x) + net(x - eps)) / eps**2
    assert torch.allclose(d2, fd, rtol=1e-4, atol=1e-5 * d2.abs().max())
    assert d2.abs().max() > 1e-4


def test_mlp_width_for_matches_target():
    w = mlp_width_for(1000, 2, 1, depth=3)
    assert MLP([2, w, w, w, 1]).n_params == 1009
